"""Plan goals: added and edited under optimistic locking (D6)."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import update

from avhopp.casework import services as casework
from avhopp.casework.models import PlanGoal
from avhopp.errors import Conflict, NotFound, ValidationError
from tests.casework.helpers import NOW, TODAY, World, events, refused


@pytest.fixture
def world(app, db):
    return World(app, db)


def add_goal(db, world, **changes):
    values = {"life_domain": "housing", "goal": "Eget boende", "target_on": TODAY}
    values.update(changes)
    goal = casework.add_plan_goal(db, actor=world.worker, track_id=world.a,
                                  goal=casework.GoalInput(**values), now=NOW)
    db.commit()
    return goal


def test_adding_a_goal_is_audited(world, db):
    goal = add_goal(db, world)
    assert events(db, "plan.goal_added") == [
        ("success", {"goal_id": str(goal.id), "life_domain": "housing"})]


def test_an_update_at_the_current_version_changes_the_goal_and_the_version(world, db):
    goal = add_goal(db, world)
    updated = casework.update_plan_goal(
        db, actor=world.worker, track_id=world.a, goal_id=goal.id, expected_version=1,
        changes={"status": "ongoing", "goal": "Eget förstahandskontrakt"}, now=NOW)
    db.commit()
    assert (updated.version, updated.status, updated.goal) == (
        2, "ongoing", "Eget förstahandskontrakt")
    assert events(db, "plan.goal_updated") == [
        ("success", {"goal_id": str(goal.id), "fields": "goal,status"})]


def test_a_stale_version_is_refused_and_overwrites_nothing(world, db):
    goal = add_goal(db, world)
    casework.update_plan_goal(db, actor=world.worker, track_id=world.a, goal_id=goal.id,
                              expected_version=1, changes={"status": "ongoing"}, now=NOW)
    db.commit()
    error = refused(db, Conflict, casework.update_plan_goal, actor=world.worker,
                    track_id=world.a, goal_id=goal.id, expected_version=1,
                    changes={"status": "stopped"}, now=NOW)
    assert error.code == "stale_version"
    db.expire_all()
    assert db.get(PlanGoal, goal.id).status == "ongoing"
    db.rollback()
    assert events(db, "plan.goal_updated")[-1] == (
        "denied", {"goal_id": str(goal.id), "reason": "stale_version"})


def test_a_concurrent_save_between_check_and_write_is_caught_by_the_database(world, db):
    goal = add_goal(db, world)
    loaded = db.get(PlanGoal, goal.id)
    assert loaded.version == 1
    # Another transaction commits version 2 after this one read version 1 (simulated in the
    # same connection, since SQLite serialises writers): the in-memory copy still says 1.
    db.execute(update(PlanGoal.__table__).where(PlanGoal.__table__.c.id == goal.id)
               .values(version=2, status="achieved"))
    with pytest.raises(Conflict) as err:
        casework.update_plan_goal(db, actor=world.worker, track_id=world.a, goal_id=goal.id,
                                  expected_version=1, changes={"status": "stopped"}, now=NOW)
    assert err.value.code == "stale_version"
    db.rollback()


def test_a_goal_of_another_track_is_not_found(world, db):
    goal = add_goal(db, world)
    refused(db, NotFound, casework.update_plan_goal, actor=world.other, track_id=world.b,
            goal_id=goal.id, expected_version=1, changes={"status": "ongoing"}, now=NOW)


def test_an_unknown_field_is_refused(world, db):
    goal = add_goal(db, world)
    with pytest.raises(ValidationError) as err:
        casework.update_plan_goal(db, actor=world.worker, track_id=world.a, goal_id=goal.id,
                                  expected_version=1, changes={"track_id": world.b}, now=NOW)
    assert err.value.code == "goal_field"
    db.rollback()


def test_a_target_before_the_start_is_refused(world, db):
    with pytest.raises(ValidationError) as err:
        add_goal(db, world, start_on=TODAY, target_on=TODAY - dt.timedelta(days=1))
    assert err.value.code == "target_before_start"
    db.rollback()
