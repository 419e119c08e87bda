"""The scheduler's lifecycle duties with frozen time: approved erasures run on their date, and the
audit log's own entries are redacted after AUDIT_RETENTION_DAYS, never earlier than the
minimum age; the log still verifies across daily runs."""

from __future__ import annotations

import datetime as dt
import json
import uuid

import pytest
from sqlalchemy import func, select

from avhopp import scheduler
from avhopp.audit import services as audit_services
from avhopp.audit.models import AuditEvent
from avhopp.audit.policy import AuditSettings
from avhopp.casework.models import Person, Track
from avhopp.config import ConfigError
from avhopp.crypto.errors import KeyDestroyed
from avhopp.db import get_database
from avhopp.privacy import erasure, jobs, retention
from tests.audit.conftest import verify
from tests.conftest import audit_actions, database_bytes, make_user

OLD = dt.datetime(2023, 6, 1, 12, 0, tzinfo=dt.UTC)
KEPT = dt.datetime(2024, 6, 1, 12, 0, tzinfo=dt.UTC)


def test_the_scheduler_runs_retention_and_the_audit_logs_retention_daily(app):
    jobs_by_id = {job.id: job for job in scheduler.build(app).get_jobs()}
    for name in ("retention", "audit_retention"):
        assert jobs_by_id[name].trigger.interval == dt.timedelta(days=1)
        assert jobs_by_id[name].next_run_time is not None


def _approved_for_retention(app, db, clock):
    """A closed track whose erasure is proposed and approved, due in three days; its person."""
    first, second = make_user(app, role="coordinator"), make_user(app, role="coordinator")
    track = db.scalars(select(Track).order_by(Track.code)).first()
    track.status, track.closure_reason = "closed", "goal_reached"
    track.closed_at = clock() - dt.timedelta(days=1100)
    track.retention_until = clock().date() + dt.timedelta(days=3)
    db.commit()
    track_id, person_id = track.id, track.person_id
    request = retention.propose_erasure(db, actor=first, track_id=track_id, now=clock())
    erasure.approve_erasure(db, actor=second, request_id=request.id,
                            reauthenticated_at=clock(), now=clock())
    db.commit()
    return person_id


@pytest.mark.usefixtures("seeded")
def test_the_retention_duty_erases_an_approved_request_on_its_date_not_before(app, db, clock):
    person_id = _approved_for_retention(app, db, clock)

    duties = scheduler.duties(app)
    duties["retention"]()
    db.expire_all()
    assert db.get(Person, person_id).name  # approved, but its date has not come
    db.rollback()

    clock.advance(days=3)
    assert jobs.retention_tick(app) == 1
    db.expire_all()
    with pytest.raises(KeyDestroyed):
        _ = db.get(Person, person_id).name
    runs = [d for a, _o, d in audit_actions(db) if a == "retention.run"]
    assert [r["erased"] for r in runs] == [0, 1]
    assert any(a == "erasure.executed" and d["ground"] == "retention"
               for a, _o, d in audit_actions(db))
    db.rollback()  # SQLite: the app's writers begin IMMEDIATE, so end this read first
    # The next day there is nothing left to erase.
    clock.advance(days=1)
    assert jobs.retention_tick(app) == 0


@pytest.mark.usefixtures("seeded")
def test_two_schedulers_at_once_run_an_erasure_once(app, db, clock):
    if db.get_bind().dialect.name == "sqlite":
        pytest.skip("SQLite serialises the two runs with BEGIN IMMEDIATE")
    _approved_for_retention(app, db, clock)
    db.rollback()
    clock.advance(days=3)
    factory = get_database(app).factory
    one, two = factory(), factory()
    try:
        assert len(erasure.run_due_erasures(one, now=clock())) == 1
        # The first has not committed: the second skips the request it holds.
        assert erasure.run_due_erasures(two, now=clock()) == []
        one.commit()
        two.commit()
    finally:
        one.close()
        two.close()
    assert [a for a, _o, _d in audit_actions(db) if a == "erasure.executed"] == [
        "erasure.executed"]


def _record(app, when, object_id):
    actor = type("Staff", (), {"id": uuid.uuid4(), "role": "coordinator"})()
    with get_database(app).scope() as session:
        audit_services.record(session, action="user.listed", actor=actor, object_type="user",
                              object_id=object_id, details={"count": 1}, now=when)


def _redactions(db):
    """Details of the recorded redactions still whole (audit_actions cannot read redacted rows)."""
    db.expire_all()
    found = [json.loads(d) for d in db.scalars(select(AuditEvent.details).where(
        AuditEvent.action == "audit.redacted", AuditEvent.redacted_at.is_(None))
        .order_by(AuditEvent.seq))]
    db.rollback()
    return found


def test_the_audit_retention_duty_redacts_entries_past_the_retention_period(app, db, clock):
    assert app.extensions["avhopp.audit"].retention_days == 1095  # config/default.toml
    canary = f"canary-{uuid.uuid4().hex[:8]}"
    _record(app, OLD, canary)
    _record(app, KEPT, "kept-object")

    assert scheduler.duties(app)["audit_retention"]() == 1
    db.expire_all()
    rows = {r.object_id: r for r in db.scalars(select(AuditEvent).where(
        AuditEvent.occurred_at < clock() - dt.timedelta(days=1))).all()}
    assert canary not in rows and "kept-object" in rows
    assert [(d["count"], d["before"]) for d in _redactions(db)] == [
        (1, (clock() - dt.timedelta(days=1095)).date().isoformat())]
    db.rollback()
    assert canary.encode() not in database_bytes(db)
    db.rollback()

    # The next day nothing is due: no redaction, and no entry saying so.
    clock.advance(days=1)
    assert jobs.audit_retention_tick(app) == 0
    assert len(_redactions(db)) == 1

    # Three years on the kept entry and the first redaction's own entry go too; the log still
    # verifies, because the new redaction entry covers everything redacted before.
    clock.advance(days=1096)
    assert jobs.audit_retention_tick(app) == 2
    report = verify(app)
    assert report.ok, report.problems
    assert report.redacted == 3


def test_audit_retention_off_redacts_nothing(make_app, clock):
    app = make_app(AUDIT_RETENTION_DAYS=0)
    _record(app, OLD, "old-object")
    assert jobs.audit_retention_tick(app) == 0
    with get_database(app).scope() as session:
        assert session.scalar(select(func.count()).select_from(AuditEvent).where(
            AuditEvent.redacted_at.is_not(None))) == 0


def test_audit_retention_shorter_than_the_minimum_age_is_refused_at_start():
    with pytest.raises(ConfigError, match="AUDIT_RETENTION_DAYS"):
        AuditSettings.from_config({"AUDIT_RETENTION_DAYS": 100, "AUDIT_REDACT_MIN_AGE_DAYS": 730})
    with pytest.raises(ConfigError, match="AUDIT_RETENTION_DAYS"):
        AuditSettings.from_config({"AUDIT_RETENTION_DAYS": -1})
    assert AuditSettings.from_config({"AUDIT_RETENTION_DAYS": 730,
                                      "AUDIT_REDACT_MIN_AGE_DAYS": 730}).retention_days == 730
