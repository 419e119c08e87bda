"""Crash proof of the reminder outbox (issue 9, item 5): the real `avhopp scheduler` process
sends due reminders to a local SMTP server (STARTTLS, throw-away CA) and is killed with SIGKILL
again and again while it sends, then restarted.

Delivery is at least once by design (avhopp/followups/outbox.py): a sender killed after the
SMTP server accepted a mail but before it marked the row sent leaves the row to be sent again
when its lease runs out, with the same Message-ID so mail systems can drop the copy. So the
test asserts: every due reminder arrives; a Message-ID arrives twice only if it was the mail in
flight at a kill, at most once more per such kill; every row is recorded as sent exactly once
in the audit log; and `avhopp audit verify` passes afterwards."""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import random
import signal
import ssl
import subprocess  # nosec B404  we start our own program with fixed argv
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from email import message_from_bytes
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import select

from avhopp.accounts.models import User
from avhopp.app import create_app
from avhopp.audit.models import AuditEvent
from avhopp.db import get_database, utcnow
from avhopp.followups import services as followups
from avhopp.followups import ticks
from avhopp.followups.models import OutboxMessage
from tests.conftest import ENGINES, PG_ADMIN_URL
from tests.followups.conftest import make_certificates
from tests.proof.harness import BIN, ROOT, Instance, free_port

pytestmark = pytest.mark.proof

TRACKS = 6
PER_TRACK = 8  # 48 reminders
KILLS = 6
LEASE_SECONDS = 3
SMTP_DELAY = 0.12  # seconds the server takes per mail, so that kills land mid-send
ADDRESS = "kontakt.worker@example.org"


@pytest.fixture(params=ENGINES)
def instance(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Instance]:
    made = Instance(tmp_path / "instance", request.param, PG_ADMIN_URL)
    made.work.mkdir()
    try:
        made.create(tracks=TRACKS, users=1)
        yield made
    finally:
        made.drop()


class KillingRecorder:
    """aiosmtpd handler: records the Message-ID of every accepted mail. When armed with a pid,
    it kills that process after accepting a mail and before the sender hears "250": the one
    window in which a mail is delivered but not marked sent."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.received: list[str] = []
        self.recipients: list[str] = []
        self.victim: int | None = None

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        await asyncio.sleep(SMTP_DELAY)
        message = message_from_bytes(envelope.content)
        with self.lock:
            self.received.append(str(message["Message-ID"]))
            self.recipients.extend(envelope.rcpt_tos)
            victim, self.victim = self.victim, None
        if victim is not None:
            os.kill(victim, signal.SIGKILL)
        return "250 OK"

    def count(self) -> int:
        with self.lock:
            return len(self.received)

    def last(self) -> str | None:
        with self.lock:
            return self.received[-1] if self.received else None


@pytest.fixture
def smtp(tmp_path: Path) -> Iterator[tuple[KillingRecorder, int, Path]]:
    folder = tmp_path / "certs"
    folder.mkdir()
    certificates = make_certificates(folder)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(certificates.cert_file, certificates.key_file)
    recorder = KillingRecorder()
    port = free_port()
    controller = Controller(recorder, hostname="127.0.0.1", port=port, tls_context=context,
                            require_starttls=True, server_hostname="localhost")
    controller.start()
    try:
        yield recorder, port, certificates.ca_file
    finally:
        controller.stop()


def _arrange(instance: Instance) -> tuple[list[uuid.UUID], set[str]]:
    """Follow-ups whose reminder time has passed, queued as the enqueue tick does; returns the
    follow-up ids and the Message-IDs of the queued mails."""
    account = instance.plan["users"][0]
    app = create_app(instance.overrides())
    database = get_database(app)
    now = utcnow()
    ids: list[uuid.UUID] = []
    try:
        with database.scope() as session:
            worker = session.scalars(
                select(User).where(User.username == account["username"])).one()
            followups.set_preference(session, actor=worker, mode="immediate", email=ADDRESS,
                                     now=now)
            for track in account["tracks"]:
                for n in range(PER_TRACK):
                    row = followups.schedule(
                        session, actor=worker, track_id=uuid.UUID(track), kind="contact",
                        assignee_id=worker.id, due_at=now + dt.timedelta(hours=2, minutes=n),
                        recurrence="none", reminder_lead_minutes=180, now=now)
                    ids.append(row.id)
        ticks.enqueue_tick(app)
        with database.scope() as session:
            message_ids = {row.message_id for row in session.scalars(select(OutboxMessage))}
        assert len(message_ids) == len(ids) == TRACKS * PER_TRACK
    finally:
        database.engine.dispose()
    return ids, message_ids


def _outbox(instance: Instance) -> tuple[list[OutboxMessage], list[AuditEvent]]:
    app = create_app(instance.overrides())
    database = get_database(app)
    try:
        with database.scope() as session:
            rows = list(session.scalars(select(OutboxMessage)))
            sent = list(session.scalars(select(AuditEvent).where(
                AuditEvent.action == "mail.sent")))
            session.expunge_all()
            return rows, sent
    finally:
        database.engine.dispose()


def _wait(condition: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def test_killing_the_scheduler_while_it_sends_loses_no_reminder_and_doubles_only_in_flight_mail(
    instance: Instance, smtp: tuple[KillingRecorder, int, Path], tmp_path: Path
) -> None:
    recorder, port, ca_file = smtp
    follow_ups, expected = _arrange(instance)
    env = dict(instance.env, AVHOPP_SMTP_HOST="localhost", AVHOPP_SMTP_PORT=str(port),
               AVHOPP_SMTP_SECURITY="starttls", AVHOPP_SMTP_CA_FILE=str(ca_file),
               AVHOPP_MAIL_FROM="avhopp@example.org",
               AVHOPP_BASE_URL="https://avhopp.example.org",
               AVHOPP_OUTBOX_LEASE_SECONDS=str(LEASE_SECONDS), AVHOPP_OUTBOX_BATCH_SIZE="8")
    runs = 0

    def start() -> subprocess.Popen[bytes]:
        nonlocal runs
        runs += 1
        log = (tmp_path / f"scheduler-{runs}.log").open("wb")
        try:
            return subprocess.Popen(  # nosec B603
                [str(BIN / "avhopp"), "scheduler"], env=env, cwd=ROOT, stdout=log,
                stderr=subprocess.STDOUT)
        finally:
            log.close()

    rng = random.Random(9)  # noqa: S311  # nosec B311  kill timing only
    in_flight: list[str | None] = []  # per kill: the last mail the server had accepted
    handler_kills: list[str] = []
    proc = start()
    try:
        for kill in range(KILLS):
            baseline = recorder.count()
            _wait(lambda b=baseline: recorder.count() >= b + 2, 120, "the scheduler to send")
            if kill % 2 == 0:
                # Killed inside the window: the server has the mail, the sender never learns.
                with recorder.lock:
                    recorder.victim = proc.pid
                proc.wait(timeout=60)
                handler_kills.append(recorder.last() or "")
            else:
                # Killed wherever it happens to be: claiming, sending, settling, auditing.
                time.sleep(rng.uniform(0.0, 0.4))
                proc.send_signal(signal.SIGKILL)
                proc.wait(timeout=60)
            assert proc.returncode == -signal.SIGKILL
            # A restarted sender takes over the dead one's rows once their lease has run out.
            time.sleep(LEASE_SECONDS + 0.5)
            # By now the server has finished any mail whose sender died mid-reply: the last
            # one it accepted is the only one that can have been delivered and not settled.
            in_flight.append(recorder.last())
            proc = start()
        _wait(lambda: set(recorder.received) >= expected, 180, "every reminder to arrive")
        # Let the last run settle what it sent.
        _wait(lambda: all(r.status == "sent" for r in _outbox(instance)[0]), 60,
              "every outbox row to be marked sent")
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    rows, sent_events = _outbox(instance)
    # Every due reminder went out, to the assignee, once per follow-up and revision.
    assert sorted(r.follow_up_id for r in rows) == sorted(follow_ups)
    assert {r.message_id for r in rows} == expected
    assert all(r.status == "sent" and r.kind == "reminder" for r in rows)
    assert set(recorder.recipients) == {ADDRESS}
    assert set(recorder.received) == expected

    # Duplicates: only a mail in flight at a kill, at most one extra copy per such kill, and
    # with the same Message-ID (that is what is counted).
    copies = Counter(recorder.received)
    kills_on = Counter(in_flight)
    extra = {mid: n - 1 for mid, n in copies.items() if n > 1}
    assert all(extra[mid] <= kills_on[mid] for mid in extra), (extra, in_flight)
    assert sum(extra.values()) <= KILLS
    # A kill inside the window always leads to a second delivery of that very mail.
    assert handler_kills and all(copies[mid] >= 2 for mid in handler_kills), handler_kills

    # Each row is recorded as sent exactly once, however often it was sent.
    assert Counter(e.object_id for e in sent_events) == Counter(str(r.id) for r in rows)
    verify = instance.cli("audit", "verify", check=False)
    assert verify.returncode == 0, verify.stdout + verify.stderr
