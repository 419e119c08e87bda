"""Schedule, complete with a journal entry and the next occurrence, reschedule, cancel: access
through the track policy, audited, kind-agnostic; generated follow-ups are idempotent."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select

from avhopp.cases import services as cases
from avhopp.casework.models import JournalEntry
from avhopp.errors import Conflict, NotFound, ValidationError
from avhopp.followups import services as followups
from avhopp.followups import sources  # noqa: F401  registers the casework sources
from avhopp.followups.models import FollowUp
from tests.casework.helpers import events, refused
from tests.conftest import START
from tests.followups.conftest import CANARY_NOTE, actor_of, make_world

DUE = START + dt.timedelta(days=2)


def outcome(**changes):
    values = {"occurred_at": START, "contact_type": "phone", "contact_achieved": True,
              "note": CANARY_NOTE}
    values.update(changes)
    return followups.OutcomeInput(**values)


def schedule(db, world, **changes):
    values = {"actor": actor_of(db, world.worker), "track_id": world.track.id,
              "kind": "contact", "assignee_id": world.worker.id, "due_at": DUE, "now": START}
    values.update(changes)
    row = followups.schedule(db, **values)
    db.commit()
    return row


def test_scheduling_is_audited_and_takes_the_cadence_of_the_risk_level(app, db):
    world = make_world(app, db, emails=False)
    cases.add_risk_assessment(
        db, actor=actor_of(db, world.worker), track_id=world.track.id,
        assessed_on=START.date(), now=START,
        levels=dict.fromkeys(("threat_from_environment", "violence_to_others", "re_engagement",
                              "self_harm", "threat_to_relatives"), "high"))
    db.commit()
    row = schedule(db, world)
    assert row.recurrence == "weekly"
    assert row.remind_at == DUE - dt.timedelta(days=1)
    assert events(db, "followup.scheduled") == [("success", {
        "follow_up_id": str(row.id), "kind": "contact", "recurrence": "weekly",
        "generated": False})]


def test_a_track_without_a_risk_level_proposes_no_recurrence(app, db):
    world = make_world(app, db, emails=False)
    assert schedule(db, world).recurrence == "none"


def test_completing_writes_the_journal_entry_and_plans_the_next_occurrence(app, db):
    world = make_world(app, db, emails=False)
    row = schedule(db, world, recurrence="weekly")
    done, following = followups.complete(db, actor=actor_of(db, world.worker),
                                         follow_up_id=row.id, outcome=outcome(), now=START)
    db.commit()
    entry = db.get(JournalEntry, done.outcome_entry_id)
    assert entry.note == CANARY_NOTE and entry.track_id == world.track.id
    assert done.status == "done"
    assert following.occurrence == 2 and following.series_id == row.series_id
    assert following.due_at == DUE + dt.timedelta(weeks=1)
    assert [o for o, _d in events(db, "journal.added")] == ["success"]
    assert events(db, "followup.completed")[0][1]["next_id"] == str(following.id)


def test_a_follow_up_is_completed_once(app, db):
    world = make_world(app, db, emails=False)
    row = schedule(db, world)
    followups.complete(db, actor=actor_of(db, world.worker), follow_up_id=row.id,
                       outcome=outcome(), now=START)
    db.commit()
    with pytest.raises(Conflict):
        followups.complete(db, actor=actor_of(db, world.worker), follow_up_id=row.id,
                           outcome=outcome(), now=START)


def test_rescheduling_moves_one_occurrence_and_keeps_the_reason_encrypted(app, db):
    world = make_world(app, db, emails=False)
    row = schedule(db, world, recurrence="weekly")
    later = DUE + dt.timedelta(days=1)
    moved = followups.reschedule(db, actor=actor_of(db, world.worker), follow_up_id=row.id,
                                 due_at=later, reason="Kanarieorsak", now=START)
    db.commit()
    assert moved.due_at == later and moved.revision == 2 and moved.anchor_at == DUE
    assert moved.change_reason == "Kanarieorsak"
    assert events(db, "followup.rescheduled") == [("success", {
        "follow_up_id": str(row.id), "revision": 2})]


def test_cancel_needs_a_reason_and_ends_the_series_unless_asked_to_continue(app, db):
    world = make_world(app, db, emails=False)
    row = schedule(db, world, recurrence="biweekly")
    with pytest.raises(ValidationError):
        followups.cancel(db, actor=actor_of(db, world.worker), follow_up_id=row.id,
                         reason="  ", now=START)
    db.rollback()
    following = followups.cancel(db, actor=actor_of(db, world.worker), follow_up_id=row.id,
                                 reason="Flyttat", continue_series=True, now=START)
    db.commit()
    assert following.due_at == DUE + dt.timedelta(weeks=2)
    last = followups.cancel(db, actor=actor_of(db, world.worker), follow_up_id=following.id,
                            reason="Avslutat", now=START)
    db.commit()
    assert last is None
    assert [d["continue_series"] for _o, d in events(db, "followup.cancelled")] == [True, False]


def test_someone_off_the_team_can_do_nothing_and_is_recorded(app, db):
    world = make_world(app, db, emails=False)
    row = schedule(db, world)
    stranger = actor_of(db, world.colleague)
    for call, kwargs in (
        (followups.schedule, {"track_id": world.track.id, "kind": "contact",
                              "assignee_id": world.colleague.id, "due_at": DUE}),
        (followups.complete, {"follow_up_id": row.id, "outcome": outcome()}),
        (followups.reschedule, {"follow_up_id": row.id, "due_at": DUE, "reason": "x"}),
        (followups.cancel, {"follow_up_id": row.id, "reason": "x"}),
    ):
        refused(db, NotFound, call, actor=stranger, now=START, **kwargs)
    assert len(events(db, "track.access_denied")) == 4
    db.expire_all()
    assert db.get(FollowUp, row.id).status == "open"


def test_an_unknown_follow_up_id_is_not_found_and_recorded(app, db):
    import uuid

    world = make_world(app, db, emails=False)
    refused(db, NotFound, followups.cancel, actor=actor_of(db, world.worker),
            follow_up_id=uuid.uuid4(), reason="x", now=START)
    assert events(db, "track.access_denied")[0][1]["rule"] == "unknown_follow_up"


def test_the_assignee_must_be_on_the_team(app, db):
    world = make_world(app, db, emails=False)
    with pytest.raises(ValidationError) as caught:
        followups.schedule(db, actor=actor_of(db, world.worker), track_id=world.track.id,
                           kind="contact", assignee_id=world.colleague.id, due_at=DUE,
                           now=START)
    assert caught.value.code == "assignee"


@pytest.mark.parametrize("changes", [
    {"kind": "party"}, {"due_at": dt.datetime(2026, 11, 5, 10, 0)},  # noqa: DTZ001  naive
    {"due_at": START + dt.timedelta(days=4000)}, {"recurrence": "hourly"},
    {"recurrence": "custom", "recurrence_rule": "FREQ=MINUTELY"},
    {"reminder_lead_minutes": -1}, {"escalation_delay_minutes": 10**9},
    {"reminder_lead_minutes": True},
])
def test_bad_input_is_refused_with_a_code(app, db, changes):
    world = make_world(app, db, emails=False)
    values = {"actor": actor_of(db, world.worker), "track_id": world.track.id,
              "kind": "contact", "assignee_id": world.worker.id, "due_at": DUE, "now": START}
    values.update(changes)
    with pytest.raises(ValidationError):
        followups.schedule(db, **values)


def test_generated_follow_ups_are_derived_once(app, db):
    world = make_world(app, db, emails=False)
    from avhopp.casework import services as casework

    casework.add_journal_entry(
        db, actor=actor_of(db, world.worker), track_id=world.track.id, occurred_at=START,
        contact_type="meeting", contact_achieved=True, note="x",
        next_contact_at=START + dt.timedelta(days=5), now=START)
    casework.add_plan_goal(db, actor=actor_of(db, world.worker), track_id=world.track.id,
                           goal=casework.GoalInput(life_domain="housing", goal="Bostad",
                                                   target_on=START.date()
                                                   + dt.timedelta(days=40)), now=START)
    db.commit()
    assert followups.derive_generated(db, now=START) == 2
    db.commit()
    assert followups.derive_generated(db, now=START) == 0
    rows = db.scalars(select(FollowUp).order_by(FollowUp.due_at)).all()
    assert [(r.kind, r.assignee_id) for r in rows] == [
        ("contact", world.worker.id), ("plan_target", world.worker.id)]
    assert [d["generated"] for _o, d in events(db, "followup.scheduled")] == [True, True]
