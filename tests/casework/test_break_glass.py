"""Break-glass (nödåtkomst): a reason, a recent step-up, a time limit, a flag for the board."""

from __future__ import annotations

import datetime as dt

import pytest

from avhopp.casework import services as casework
from avhopp.errors import Forbidden, NotFound, ValidationError
from tests.casework.helpers import World, events, refused

REASON = "Klienten ringde jouren och teamet nås inte."


@pytest.fixture
def world(app, db):
    return World(app, db)


def read(db, actor, track_id, now):
    content = casework.read_track_content(db, actor=actor, track_id=track_id,
                                          purpose="emergency", sections=["person"], now=now)
    db.commit()
    return content


def test_break_glass_with_reason_and_recent_step_up_opens_the_track(world, db, clock):
    grant = casework.break_glass(db, actor=world.other, track_id=world.a, reason=REASON,
                                 reauthenticated_at=clock() - dt.timedelta(minutes=2),
                                 now=clock())
    db.commit()
    assert grant.expires_at == clock() + dt.timedelta(minutes=60)
    assert read(db, world.other, world.a, clock()).via == "break_glass"
    assert events(db, "track.break_glass") == [
        ("success", {"minutes": 60, "grant_id": str(grant.id)})]


def test_the_grant_expires(world, db, clock):
    casework.break_glass(db, actor=world.other, track_id=world.a, reason=REASON,
                         reauthenticated_at=clock(), now=clock())
    db.commit()
    clock.advance(minutes=61)
    refused(db, NotFound, casework.read_track_content, actor=world.other, track_id=world.a,
            purpose="emergency", now=clock())
    assert events(db, "track.access_denied")[-1] == (
        "denied", {"need": "read", "rule": "not_on_team"})


@pytest.mark.parametrize("reason", [None, "", "   ", "akut"])
def test_a_reason_is_required(world, db, clock, reason):
    refused(db, ValidationError, casework.break_glass, actor=world.other, track_id=world.a,
            reason=reason, reauthenticated_at=clock(), now=clock())
    assert events(db, "track.break_glass") == [("denied", {"rule": "reason_required"})]


@pytest.mark.parametrize("minutes_ago", [None, 6, 120, -1])
def test_a_recent_step_up_is_required(world, db, clock, minutes_ago):
    stamp = None if minutes_ago is None else clock() - dt.timedelta(minutes=minutes_ago)
    error = refused(db, Forbidden, casework.break_glass, actor=world.other, track_id=world.a,
                    reason=REASON, reauthenticated_at=stamp, now=clock())
    assert error.code == "reauth_required"
    assert events(db, "track.break_glass") == [("denied", {"rule": "reauth_required"})]
    refused(db, NotFound, casework.read_track_content, actor=world.other, track_id=world.a,
            purpose="emergency", now=clock())


@pytest.mark.parametrize("role", ["board", "admin"])
def test_board_and_admin_cannot_break_glass(world, db, clock, role):
    refused(db, NotFound, casework.break_glass, actor=getattr(world, role), track_id=world.a,
            reason=REASON, reauthenticated_at=clock(), now=clock())
    assert events(db, "track.break_glass") == []
    assert events(db, "track.access_denied") == [
        ("denied", {"need": "break_glass", "rule": "role"})]


def test_break_glass_gives_no_write_access(world, db, clock):
    casework.break_glass(db, actor=world.other, track_id=world.a, reason=REASON,
                         reauthenticated_at=clock(), now=clock())
    db.commit()
    # The grant holder knows the track exists, so the refusal is Forbidden, not NotFound.
    refused(db, Forbidden, casework.add_journal_entry, actor=world.other, track_id=world.a,
            occurred_at=clock(), contact_type="phone", contact_achieved=True, note="x",
            now=clock())
    assert events(db, "journal.added") == []


def test_a_track_with_named_access_cannot_be_opened_by_break_glass(world, db, clock):
    from tests.casework.helpers import open_defector

    named = open_defector(db, world.coordinator, owner=world.worker, access_level="named",
                          allow_duplicate=True)
    refused(db, Forbidden, casework.break_glass, actor=world.other, track_id=named.id,
            reason=REASON, reauthenticated_at=clock(), now=clock())
    assert events(db, "track.access_denied")[-1] == (
        "denied", {"need": "break_glass", "rule": "named_access"})


def test_the_reason_is_stored_encrypted(world, db, clock):
    from tests.conftest import database_bytes

    casework.break_glass(db, actor=world.other, track_id=world.a, reason=REASON,
                         reauthenticated_at=clock(), now=clock())
    db.commit()
    assert REASON.encode() not in database_bytes(db)
    db.rollback()


def test_break_glass_access_is_decided_afresh_even_within_one_request(world, app, clock):
    # A grant ends at its minute; a request's memo of decisions must never outlive it.
    from avhopp.casework import policy
    from avhopp.casework.policy import Need
    from avhopp.db import request_session

    with app.test_request_context("/", method="GET"):
        session = request_session()
        casework.break_glass(session, actor=world.other, track_id=world.a, reason=REASON,
                             reauthenticated_at=clock(), now=clock())
        session.commit()
        assert policy.authorize(session, actor=world.other, need=Need.READ, track_id=world.a,
                                now=clock()).via == "break_glass"
        clock.advance(minutes=61)
        with pytest.raises(NotFound):
            policy.authorize(session, actor=world.other, need=Need.READ, track_id=world.a,
                             now=clock())
