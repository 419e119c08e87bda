"""Status workflow, closure and reopening; team and owner changes."""

from __future__ import annotations

import datetime as dt

import pytest

from avhopp.casework import services as casework
from avhopp.casework.models import TeamMember, Track
from avhopp.errors import Conflict, Forbidden, NotFound, ValidationError
from tests.casework.helpers import NOW, World, events, refused


@pytest.fixture
def world(app, db):
    return World(app, db)


def move(db, world, to_status, **kwargs):
    track = casework.change_status(db, actor=world.worker, track_id=world.a,
                                   to_status=to_status, now=NOW, **kwargs)
    db.commit()
    return track


def test_intake_to_active_is_audited(world, db):
    assert move(db, world, "active").status == "active"
    assert events(db, "track.status_changed") == [
        ("success", {"from_status": "intake", "to_status": "active"})]


@pytest.mark.parametrize("to_status", ["inquiry", "dormant", "after_care", "intake"])
def test_invalid_transitions_are_refused_with_a_code(world, db, to_status):
    with pytest.raises(ValidationError) as err:
        move(db, world, to_status)
    assert err.value.code == "invalid_transition"
    db.rollback()
    assert db.get(Track, world.a).status == "intake"
    db.rollback()


def test_active_and_dormant_go_both_ways(world, db):
    move(db, world, "active")
    move(db, world, "dormant")
    assert move(db, world, "active").status == "active"


def test_closing_requires_a_reason(world, db):
    move(db, world, "active")
    with pytest.raises(ValidationError) as err:
        move(db, world, "closed")
    assert err.value.code == "closure_reason_required"
    db.rollback()


def test_closing_sets_the_date_reason_and_retention(world, db):
    move(db, world, "active")
    settings = casework.CaseworkSettings(retention_days=30)
    track = move(db, world, "closed", closure_reason="goal_reached", settings=settings)
    assert (track.closed_at, track.closure_reason, track.retention_until) == (
        NOW, "goal_reached", NOW.date() + dt.timedelta(days=30))
    assert events(db, "track.status_changed")[-1] == ("success", {
        "from_status": "active", "to_status": "closed", "closure_reason": "goal_reached"})


def test_after_care_follows_closure_and_reopening_is_audited(world, db):
    move(db, world, "active")
    move(db, world, "closed", closure_reason="goal_reached")
    move(db, world, "after_care")
    track = move(db, world, "active")
    assert (track.status, track.closed_at, track.closure_reason, track.retention_until) == (
        "active", None, None, None)
    assert events(db, "track.reopened") == [
        ("success", {"from_status": "after_care", "to_status": "active"})]


def test_a_stale_track_version_is_refused(world, db):
    with pytest.raises(Conflict):
        move(db, world, "active", expected_version=99)
    db.rollback()


def test_team_changes_are_coordinators_work_and_audited(world, db):
    casework.add_team_member(db, actor=world.coordinator, track_id=world.a,
                             user_id=world.other.id, now=NOW)
    db.commit()
    casework.remove_team_member(db, actor=world.coordinator, track_id=world.a,
                                user_id=world.other.id, now=NOW)
    db.commit()
    assert events(db, "track.team_added") == [("success", {"user_id": str(world.other.id)})]
    assert events(db, "track.team_removed") == [("success", {"user_id": str(world.other.id)})]


def test_a_support_worker_cannot_change_a_team(world, db):
    refused(db, Forbidden, casework.add_team_member, actor=world.worker, track_id=world.a,
            user_id=world.other.id, now=NOW)
    assert events(db, "track.access_denied") == [
        ("denied", {"need": "assign", "rule": "role"})]


@pytest.mark.parametrize("role", ["board", "admin"])
def test_board_and_admin_cannot_join_a_team(world, db, role):
    with pytest.raises(ValidationError) as err:
        casework.add_team_member(db, actor=world.coordinator, track_id=world.a,
                                 user_id=getattr(world, role).id, now=NOW)
    assert err.value.code == "not_a_worker"
    db.rollback()


def test_the_owner_cannot_be_removed_from_the_team(world, db):
    with pytest.raises(ValidationError) as err:
        casework.remove_team_member(db, actor=world.coordinator, track_id=world.a,
                                    user_id=world.worker.id, now=NOW)
    assert err.value.code == "owner"
    db.rollback()


def test_removing_someone_not_on_the_team_is_not_found(world, db):
    with pytest.raises(NotFound):
        casework.remove_team_member(db, actor=world.coordinator, track_id=world.a,
                                    user_id=world.other.id, now=NOW)
    db.rollback()


def test_a_new_owner_takes_over_and_the_previous_stays_a_member(world, db):
    casework.change_owner(db, actor=world.coordinator, track_id=world.a,
                          user_id=world.other.id, now=NOW)
    db.commit()
    assert db.get(Track, world.a).owner_id == world.other.id
    assert db.get(TeamMember, (world.a, world.worker.id)) is not None
    db.rollback()
    assert events(db, "track.owner_changed") == [("success", {"user_id": str(world.other.id)})]
