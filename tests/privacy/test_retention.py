"""Retention (gallring) with frozen time: dates from rules, the monthly review list, extending
with a reason, approved erasures run by the job on their date; dry run changes nothing."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select

from avhopp.casework.models import Person, Track
from avhopp.config import ConfigError
from avhopp.crypto.errors import KeyDestroyed
from avhopp.errors import ValidationError
from avhopp.privacy import erasure, retention
from tests.conftest import audit_actions, make_user
from tests.privacy.conftest import run_cli


def _close(db, track, when, reason="goal_reached"):
    track.status = "closed"
    track.closed_at = when
    track.closure_reason = reason
    track.retention_until = None


def test_rules_take_the_longest_applicable_period_and_refuse_bad_config():
    rules = retention.RetentionRules.from_config({
        "RETENTION_DAYS_AFTER_CLOSURE": 365,
        "RETENTION_DAYS_BY_CLOSURE_REASON": "returned_to_environment=1825, contact_lost=200",
        "RETENTION_DAYS_BY_KIND": "relative=400"})
    closed = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    track = Track(kind="defector", status="closed", closed_at=closed,
                  closure_reason="returned_to_environment")
    assert rules.date_for(track) == dt.date(2030, 12, 31)
    track.closure_reason = "contact_lost"
    assert rules.days_for(track) == 200
    track.kind = "relative"
    assert rules.days_for(track) == 400
    with pytest.raises(ConfigError):
        retention.RetentionRules.from_config({"RETENTION_DAYS_BY_KIND": "martian=3"})


@pytest.mark.usefixtures("seeded")
def test_review_extend_propose_approve_and_the_job_erases_on_the_date(app, db, clock):
    first, second = make_user(app, role="coordinator"), make_user(app, role="coordinator")
    tracks = db.scalars(select(Track).order_by(Track.code)).all()
    closed = clock() - dt.timedelta(days=400)
    for track in tracks[:2]:
        _close(db, track, closed)
    db.commit()
    rules = retention.RetentionRules(default_days=365 + 40)
    # Dry run: nothing dated, nothing erased, nothing recorded.
    before = len(audit_actions(db))
    dry = retention.run_due_erasures(db, rules=rules, now=clock(), dry_run=True)
    db.rollback()
    assert dry.erased == [] and len(audit_actions(db)) == before
    # The job dates closed tracks: closed 400 days ago + 405 = in five days, this month.
    run = retention.run_due_erasures(db, rules=rules, now=clock())
    db.commit()
    assert run.dated == 2 and run.erased == []
    listed = retention.review_list(db, now=clock())
    assert [r.code for r in listed] == sorted(t.code for t in tracks[:2])
    due = listed[0].retention_until
    assert due == (closed + dt.timedelta(days=405)).date()

    keep, drop = listed
    retention.extend(db, actor=first, track_id=keep.track_id, until=due + dt.timedelta(days=365),
                     reason="ongoing_matter", now=clock())
    with pytest.raises(ValidationError):
        retention.extend(db, actor=first, track_id=keep.track_id, until=due, reason="other",
                         now=clock())
    request = retention.propose_erasure(db, actor=first, track_id=drop.track_id, now=clock())
    erasure.approve_erasure(db, actor=second, request_id=request.id,
                            reauthenticated_at=clock(), now=clock())
    db.commit()
    assert [r.code for r in retention.review_list(db, now=clock())] == [drop.code]
    person_id = db.get(Track, drop.track_id).person_id
    assert db.get(Person, person_id).name  # approved, not yet due

    # Dry run on the day lists it; the run erases it.
    day = dt.datetime.combine(due, dt.time(2), tzinfo=dt.UTC)
    assert [r.id for r in retention.run_due_erasures(db, rules=rules, now=day,
                                                     dry_run=True).erased] == [request.id]
    db.rollback()
    clock.now = day
    app.config["CLOCK"] = clock
    result = run_cli(app, "retention", "run")
    assert result.exit_code == 0, result.output
    assert "erased 1 person(s)" in result.output
    db.expire_all()
    with pytest.raises(KeyDestroyed):
        _ = db.get(Person, person_id).name
    assert db.get(Person, db.get(Track, keep.track_id).person_id).name
    actions = audit_actions(db)
    assert ("retention.extended", "success") in {(a, o) for a, o, _d in actions}
    assert any(a == "erasure.executed" and d["ground"] == "retention" for a, _o, d in actions)
    assert retention.review_list(db, now=day) == []


@pytest.mark.usefixtures("seeded")
def test_retention_cli_dry_run_lists_tracks_awaiting_review_and_changes_nothing(app, db, clock):
    track = db.scalars(select(Track).order_by(Track.code)).first()
    _close(db, track, clock() - dt.timedelta(days=2000))
    track.retention_until = (clock() - dt.timedelta(days=10)).date()
    db.commit()
    before = len(audit_actions(db))
    db.rollback()
    result = run_cli(app, "retention", "run", "--dry-run")
    assert result.exit_code == 0, result.output
    assert "would erase 0 person(s)" in result.output
    assert track.code in result.output
    assert len(audit_actions(db)) == before
