"""The one access policy (Z3, Z5, Z6): team, coordinators' list, board and admin, refusals."""

from __future__ import annotations

import pytest

from avhopp.casework import policy
from avhopp.casework import services as casework
from avhopp.casework.models import TeamMember
from avhopp.casework.policy import Need
from avhopp.errors import Forbidden, NotFound
from tests.casework.helpers import NOW, World, events, new_id, refused


@pytest.fixture
def world(app, db):
    return World(app, db)


def read(db, actor, track_id, **kwargs):
    return casework.read_track_content(db, actor=actor, track_id=track_id, purpose="casework",
                                       now=NOW, **kwargs)


def test_owner_reads_content_and_the_read_is_audited_with_its_purpose(world, db):
    content = read(db, world.worker, world.a, sections=["person"])
    db.commit()
    assert content.person.name == "Anna Andersson"
    assert content.via == "team"
    assert events(db, "track.content_read") == [
        ("success", {"sections": "person", "via": "team"})]


def test_content_read_event_carries_the_purpose_and_the_track_code(world, db):
    from sqlalchemy import select

    from avhopp.audit.models import AuditEvent

    read(db, world.worker, world.a, sections=["journal"])
    db.commit()
    event = db.scalars(select(AuditEvent).where(
        AuditEvent.action == "track.content_read")).one()
    assert (event.purpose, event.object_type, event.object_id) == (
        "casework", "track", world.track_a.code)
    db.rollback()


def test_a_support_worker_on_another_team_gets_not_found_and_a_denied_event(world, db):
    error = refused(db, NotFound, casework.read_track_content, actor=world.other,
                    track_id=world.a, purpose="casework", now=NOW)
    assert error.code == "track_not_found"
    assert events(db, "track.access_denied") == [
        ("denied", {"need": "read", "rule": "not_on_team"})]
    assert events(db, "track.content_read") == []


def test_a_coordinator_outside_the_team_gets_forbidden_not_content(world, db):
    error = refused(db, Forbidden, casework.read_track_content, actor=world.coordinator,
                    track_id=world.a, purpose="casework", now=NOW)
    assert error.code == "track_not_on_team"
    assert events(db, "track.access_denied") == [
        ("denied", {"need": "read", "rule": "not_on_team"})]


def test_an_unknown_track_id_is_answered_like_a_hidden_one(world, db):
    error = refused(db, NotFound, casework.read_track_content, actor=world.worker,
                    track_id=new_id(), purpose="casework", now=NOW)
    assert error.code == "track_not_found"
    assert events(db, "track.access_denied") == [
        ("denied", {"need": "read", "rule": "unknown_track"})]


@pytest.mark.parametrize("role", ["board", "admin"])
def test_board_and_admin_never_see_content_even_when_put_on_a_team(world, db, role):
    member = getattr(world, role)
    db.add(TeamMember(track_id=world.a, user_id=member.id))  # bypassing the service's check
    db.commit()
    refused(db, NotFound, casework.read_track_content, actor=member, track_id=world.a,
            purpose="casework", now=NOW)
    assert events(db, "track.access_denied") == [
        ("denied", {"need": "read", "rule": "role"})]


@pytest.mark.parametrize("role", ["board", "admin", "support_worker"])
def test_only_coordinators_list_all_tracks(world, db, role):
    from avhopp.casework import queries

    member = {"board": world.board, "admin": world.admin, "support_worker": world.worker}[role]
    refused(db, Forbidden, queries.all_tracks, actor=member, now=NOW)
    assert events(db, "track.access_denied") == [
        ("denied", {"need": "list_all", "rule": "role"})]


def test_a_team_member_added_reads_on_the_next_call_and_loses_it_when_removed(world, db):
    refused(db, NotFound, casework.read_track_content, actor=world.other, track_id=world.a,
            purpose="casework", now=NOW)
    casework.add_team_member(db, actor=world.coordinator, track_id=world.a,
                             user_id=world.other.id, now=NOW)
    db.commit()
    assert read(db, world.other, world.a, sections=["person"]).via == "team"
    db.commit()
    casework.remove_team_member(db, actor=world.coordinator, track_id=world.a,
                                user_id=world.other.id, now=NOW)
    db.commit()
    refused(db, NotFound, casework.read_track_content, actor=world.other, track_id=world.a,
            purpose="casework", now=NOW)


def test_a_role_change_applies_on_the_next_call(world, db):
    from tests.conftest import user_row

    assert read(db, world.worker, world.a, sections=["person"]).person is not None
    db.commit()
    user_row(db, world.worker.id).role = "board"
    db.commit()
    refused(db, NotFound, casework.read_track_content, actor=world.worker, track_id=world.a,
            purpose="casework", now=NOW)


def test_a_deactivated_user_is_refused(world, db):
    from tests.conftest import user_row

    user_row(db, world.worker.id).is_active = False
    db.commit()
    refused(db, NotFound, casework.read_track_content, actor=world.worker, track_id=world.a,
            purpose="casework", now=NOW)
    assert events(db, "track.access_denied")[-1] == (
        "denied", {"need": "read", "rule": "inactive"})


def test_the_policy_fails_closed_when_the_decision_raises(world, db, monkeypatch):
    def explode(*_args, **_kwargs):
        raise RuntimeError("team store unavailable")

    monkeypatch.setattr(policy, "is_on_team", explode)
    refused(db, NotFound, casework.read_track_content, actor=world.worker, track_id=world.a,
            purpose="casework", now=NOW)
    assert events(db, "track.access_denied") == [
        ("denied", {"need": "read", "rule": "error"})]
    assert events(db, "track.content_read") == []


def test_a_purpose_outside_the_list_is_refused_before_any_read(world, db):
    from avhopp.errors import ValidationError

    with pytest.raises(ValidationError):
        casework.read_track_content(db, actor=world.worker, track_id=world.a,
                                    purpose="curiosity", now=NOW)
    db.rollback()
    assert events(db, "track.content_read") == []


def test_writes_need_the_team_even_for_a_coordinator(world, db):
    refused(db, Forbidden, casework.add_journal_entry, actor=world.coordinator,
            track_id=world.a, occurred_at=NOW, contact_type="phone", contact_achieved=True,
            note="x", now=NOW)
    assert events(db, "track.access_denied") == [
        ("denied", {"need": "work", "rule": "not_on_team"})]
    assert events(db, "journal.added") == []


def test_authorize_grants_see_to_coordinators_without_content(world, db):
    access = policy.authorize(db, actor=world.coordinator, need=Need.SEE, track_id=world.a,
                              now=NOW)
    assert access.via == "role"
    db.rollback()


# --- the request's memo of decisions --------------------------------------------------------


def _count_statements(app):
    from sqlalchemy import event

    from avhopp.db import get_database

    seen = []
    engine = get_database(app).engine

    def count(*_args):
        seen.append(1)

    event.listen(engine, "before_cursor_execute", count)
    return seen, lambda: event.remove(engine, "before_cursor_execute", count)


def test_a_request_asks_the_database_once_for_the_same_decision(world, app):
    from avhopp.db import request_session

    seen, stop = _count_statements(app)
    try:
        with app.test_request_context("/", method="GET"):
            session = request_session()
            first = policy.authorize(session, actor=world.worker, need=Need.READ,
                                     track_id=world.a, now=NOW)
            session.commit()
            asked = len(seen)
            again = policy.authorize(session, actor=world.worker, need=Need.READ,
                                     track_id=world.a, now=NOW)
            assert again is first
            assert len(seen) == asked  # no statement for the second answer
    finally:
        stop()


def test_a_change_in_the_request_makes_the_policy_decide_again(world, app):
    from avhopp.db import request_session

    with app.test_request_context("/", method="POST"):
        session = request_session()
        assert policy.authorize(session, actor=world.other, need=Need.SEE, track_id=world.b,
                                now=NOW).via == "team"
        casework.add_team_member(session, actor=world.coordinator, track_id=world.a,
                                 user_id=world.other.id, now=NOW)
        assert policy.authorize(session, actor=world.other, need=Need.READ, track_id=world.a,
                                now=NOW).via == "team"
        session.commit()
        casework.remove_team_member(session, actor=world.coordinator, track_id=world.a,
                                    user_id=world.other.id, now=NOW)
        with pytest.raises(NotFound):
            policy.authorize(session, actor=world.other, need=Need.READ, track_id=world.a,
                             now=NOW)


def test_a_rollback_empties_the_memo(world, app):
    from avhopp.db import REQUEST_MEMO, request_session

    with app.test_request_context("/", method="GET"):
        session = request_session()
        policy.authorize(session, actor=world.worker, need=Need.READ, track_id=world.a, now=NOW)
        assert session.info[REQUEST_MEMO]
        session.rollback()
        assert not session.info[REQUEST_MEMO]


def test_sessions_outside_a_request_decide_afresh_every_time(world, db, app):
    seen, stop = _count_statements(app)
    try:
        policy.authorize(db, actor=world.worker, need=Need.READ, track_id=world.a, now=NOW)
        asked = len(seen)
        policy.authorize(db, actor=world.worker, need=Need.READ, track_id=world.a, now=NOW)
        assert len(seen) > asked
    finally:
        stop()
        db.rollback()
