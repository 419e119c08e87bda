"""Reminders through a real SMTP server (aiosmtpd, STARTTLS, a throw-away CA) on both engines:
exactly once, also with two schedulers at once and after downtime; 4xx retried, 5xx failed and
visible; a certificate that does not verify refused and reported; nothing personal in a mail."""

from __future__ import annotations

import datetime as dt
import threading
from types import SimpleNamespace

from sqlalchemy import select

from avhopp.db import get_database
from avhopp.followups import ticks
from avhopp.followups.models import OutboxMessage
from tests.casework.helpers import events
from tests.conftest import START
from tests.followups.conftest import ALL_MAIL, assert_no_canary, make_world, set_address
from tests.followups.test_services import outcome, schedule

DUE = START + dt.timedelta(hours=30)  # reminder (a day ahead) due six hours after START


def body(mail):
    return mail.get_payload(decode=True).decode("utf-8")


def outbox_rows(db):
    db.expire_all()
    rows = [SimpleNamespace(message_id=r.message_id, **{
        c.key: getattr(r, c.key) for c in OutboxMessage.__table__.columns})
        for r in db.scalars(select(OutboxMessage).order_by(OutboxMessage.created_at))]
    # End the read at once: on SQLite an open transaction holds the write lock.
    db.rollback()
    return rows


def mail_app(make_app, smtp_server, **changes):
    return make_app(**smtp_server.overrides(**changes))


def test_a_due_follow_up_produces_exactly_one_email(make_app, db, clock, smtp_server):
    app = mail_app(make_app, smtp_server)
    world = make_world(app, db)
    schedule(db, world, due_at=DUE)
    ticks.run_all(app)
    assert smtp_server.messages == []  # not yet: the reminder is due a day ahead
    clock.advance(hours=6)
    ticks.run_all(app)
    ticks.run_all(app)
    assert len(smtp_server.messages) == 1
    mail = smtp_server.messages[0]
    assert mail["To"] == "worker@example.org"
    assert mail["Auto-Submitted"] == "auto-generated"
    assert world.track.code in body(mail)
    assert "https://avhopp.example.org/followups/my-day" in body(mail)
    row = outbox_rows(db)[0]
    assert mail["Message-ID"] == row.message_id and row.status == "sent"
    assert [d["kind"] for _o, d in events(db, "mail.sent")] == ["reminder"]


def test_two_schedulers_at_once_still_send_one(make_app, db, clock, smtp_server):
    first = mail_app(make_app, smtp_server)
    second = mail_app(make_app, smtp_server)  # a second process: its own engine and pool
    world = make_world(first, db)
    for hours in (1, 2, 3):
        schedule(db, world, due_at=START + dt.timedelta(hours=hours))
    barrier = threading.Barrier(2)
    failures: list[BaseException] = []

    def scheduler(app):
        try:
            barrier.wait()
            for _ in range(3):
                ticks.run_all(app)
        except BaseException as exc:  # reported below, not lost in the thread
            failures.append(exc)

    threads = [threading.Thread(target=scheduler, args=(app,)) for app in (first, second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not failures
    assert len(smtp_server.messages) == 3
    assert len({m["Message-ID"] for m in smtp_server.messages}) == 3
    assert [r.status for r in outbox_rows(db)] == ["sent"] * 3


def test_a_scheduler_stopped_two_hours_catches_up_once(make_app, db, clock, smtp_server):
    app = mail_app(make_app, smtp_server)
    world = make_world(app, db)
    schedule(db, world, due_at=START + dt.timedelta(hours=25))
    schedule(db, world, due_at=START + dt.timedelta(hours=26))
    ticks.run_all(app)
    assert smtp_server.messages == []
    clock.advance(hours=2, minutes=5)  # stopped; both reminders fell due meanwhile
    ticks.run_all(app)
    ticks.run_all(app)
    assert len(smtp_server.messages) == 2


def test_a_temporary_refusal_is_retried_later(make_app, db, clock, smtp_server):
    app = mail_app(make_app, smtp_server)
    world = make_world(app, db)
    schedule(db, world, due_at=START + dt.timedelta(hours=1))
    smtp_server.recorder.reply = "451 4.3.0 try again later"
    ticks.run_all(app)
    row = outbox_rows(db)[0]
    assert (row.status, row.attempts, row.last_error) == ("pending", 1, "reply_451")
    assert row.next_attempt_at == clock() + dt.timedelta(seconds=60)
    ticks.run_all(app)  # too early for the retry
    assert outbox_rows(db)[0].attempts == 1
    smtp_server.recorder.reply = None
    clock.advance(seconds=61)
    ticks.run_all(app)
    assert len(smtp_server.messages) == 1
    assert outbox_rows(db)[0].status == "sent"
    assert [d["error"] for _o, d in events(db, "mail.retry")] == ["reply_451"]


def test_a_permanent_refusal_is_marked_failed_and_shown_to_the_coordinator(
        make_app, db, clock, smtp_server):
    from tests.conftest import login

    app = mail_app(make_app, smtp_server)
    world = make_world(app, db)
    schedule(db, world, due_at=START + dt.timedelta(hours=1))
    smtp_server.recorder.reply = "554 5.7.1 rejected"
    ticks.run_all(app)
    clock.advance(hours=1)
    ticks.run_all(app)
    row = outbox_rows(db)[0]
    assert (row.status, row.attempts, row.last_error) == ("failed", 1, "reply_554")
    assert [o for o, _d in events(db, "mail.failed")] == ["error"]
    client = app.test_client()
    login(client, world.coordinator, clock)
    page = client.get("/followups/overview").get_data(as_text=True)
    assert "reply_554" in page and world.track.code in page


def test_a_certificate_that_does_not_verify_is_refused_and_reported(
        make_app, db, clock, smtp_server, caplog):
    app = mail_app(make_app, smtp_server,
                   SMTP_CA_FILE=str(smtp_server.certificates.other_ca_file))
    world = make_world(app, db)
    schedule(db, world, due_at=START + dt.timedelta(hours=1))
    report = ticks.run_all(app)
    assert smtp_server.messages == []
    assert report.errors == ["tls_verify_failed"]
    row = outbox_rows(db)[0]
    assert (row.status, row.last_error) == ("pending", "tls_verify_failed")
    assert "certificate does not verify" in caplog.text


def test_plain_smtp_is_refused_by_a_server_that_requires_starttls(
        make_app, db, clock, smtp_server):
    app = mail_app(make_app, smtp_server, SMTP_SECURITY="none")
    world = make_world(app, db)
    schedule(db, world, due_at=START + dt.timedelta(hours=1))
    report = ticks.run_all(app)
    assert smtp_server.messages == [] and report.sent == 0


def test_a_digest_user_gets_one_digest_a_day_and_no_single_reminders(
        make_app, db, clock, smtp_server):
    app = mail_app(make_app, smtp_server)
    world = make_world(app, db)
    set_address(app, world.worker, "worker@example.org", mode="digest")
    schedule(db, world, due_at=START + dt.timedelta(hours=1))  # today
    schedule(db, world, due_at=START + dt.timedelta(days=3))  # this week
    ticks.run_all(app)  # START is 10:00 in Stockholm, after the digest hour
    ticks.run_all(app)
    assert len(smtp_server.messages) == 1
    text = body(smtp_server.messages[0])
    assert "i dag: 1" in text and "kommande sju dagar: 1" in text
    clock.advance(days=1)
    ticks.run_all(app)
    kinds = [d["kind"] for _o, d in events(db, "mail.sent")]
    assert kinds.count("digest") == 2 and "reminder" not in kinds


def test_an_overdue_follow_up_escalates_to_the_coordinators_once(
        make_app, db, clock, smtp_server):
    app = mail_app(make_app, smtp_server)
    world = make_world(app, db)
    schedule(db, world, due_at=START + dt.timedelta(hours=1), escalation_delay_minutes=60)
    clock.advance(hours=2, minutes=1)
    ticks.run_all(app)
    ticks.run_all(app)
    recipients = sorted(m["To"] for m in smtp_server.messages)
    assert recipients == ["coordinator@example.org", "worker@example.org"]


def test_completing_withdraws_a_reminder_not_yet_sent(make_app, db, clock, smtp_server):
    from avhopp.followups import services as followups
    from tests.followups.conftest import actor_of

    app = mail_app(make_app, smtp_server)
    world = make_world(app, db)
    row = schedule(db, world, due_at=START + dt.timedelta(hours=1))
    ticks.enqueue_tick(app)
    followups.complete(db, actor=actor_of(db, world.worker), follow_up_id=row.id,
                       outcome=outcome(), now=clock())
    db.commit()
    ticks.send_tick(app)
    assert smtp_server.messages == []
    assert [r.status for r in outbox_rows(db)] == ["cancelled"]


def test_the_whole_flow_mails_nothing_personal(make_app, db, clock, smtp_server):
    """Reminders, escalations, digests and the next occurrence of a track full of canaries;
    the fixture also scans every mail of every test here when its server stops."""
    from avhopp.followups import services as followups
    from tests.followups.conftest import actor_of

    app = mail_app(make_app, smtp_server)
    world = make_world(app, db)
    set_address(app, world.coordinator, "coordinator@example.org", mode="digest")
    first = schedule(db, world, due_at=START + dt.timedelta(hours=1), recurrence="weekly",
                     escalation_delay_minutes=30)
    followups.reschedule(db, actor=actor_of(db, world.worker), follow_up_id=first.id,
                         due_at=START + dt.timedelta(minutes=30), reason="Kanarieorsak",
                         now=clock())
    db.commit()
    clock.advance(hours=2)
    ticks.run_all(app)
    followups.complete(db, actor=actor_of(db, world.worker), follow_up_id=first.id,
                       outcome=outcome(), now=clock())
    db.commit()
    clock.advance(days=7)
    ticks.run_all(app)
    assert len(smtp_server.messages) >= 3
    assert_no_canary(smtp_server.recorder.raw)
    assert_no_canary(ALL_MAIL)
    with get_database(app).scope() as session:
        bodies = [r.body + r.subject for r in session.scalars(select(OutboxMessage))]
    assert_no_canary([b.encode() for b in bodies])


def test_a_closed_track_gets_no_reminders_except_after_care(make_app, db, clock, smtp_server):
    from avhopp.casework import services as casework
    from avhopp.followups import services as followups
    from tests.followups.conftest import actor_of

    app = mail_app(make_app, smtp_server)
    world = make_world(app, db)
    schedule(db, world, due_at=START + dt.timedelta(hours=1))
    followups.schedule(db, actor=actor_of(db, world.worker), track_id=world.track.id,
                       kind="after_care", assignee_id=world.worker.id,
                       due_at=START + dt.timedelta(hours=2), now=START)
    casework.change_status(db, actor=actor_of(db, world.worker), track_id=world.track.id,
                           to_status="closed", closure_reason="goal_reached", now=START)
    db.commit()
    ticks.run_all(app)
    ticks.run_all(app)
    assert len(smtp_server.messages) == 1
    assert [r.follow_up_id is not None for r in outbox_rows(db)] == [True]


def test_a_server_that_cannot_be_reached_holds_back_the_whole_batch(
        make_app, db, clock, smtp_server):
    import socket

    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    app = mail_app(make_app, smtp_server, SMTP_PORT=port)  # nothing listens there
    world = make_world(app, db)
    for hours in (1, 2, 3):
        schedule(db, world, due_at=START + dt.timedelta(hours=hours))
    report = ticks.run_all(app)
    assert report.errors == ["unreachable"]
    rows = outbox_rows(db)
    assert sorted(r.attempts for r in rows) == [0, 0, 1]
    assert {r.lease_owner for r in rows} == {None}
    assert {r.next_attempt_at for r in rows} == {clock() + dt.timedelta(seconds=60)}


def test_a_backlog_larger_than_a_batch_drains_in_one_tick(make_app, db, clock, smtp_server):
    from avhopp.followups import services as followups
    from tests.followups.conftest import actor_of

    app = mail_app(make_app, smtp_server, OUTBOX_BATCH_SIZE=2)
    world = make_world(app, db)
    for hours in range(1, 6):
        followups.schedule(db, actor=actor_of(db, world.worker), track_id=world.track.id,
                           kind="contact", assignee_id=world.worker.id,
                           due_at=START + dt.timedelta(hours=hours), now=START)
    db.commit()
    report = ticks.run_all(app)
    assert report.sent == 5 and len(smtp_server.messages) == 5
