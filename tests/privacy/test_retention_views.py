"""The coordinator's monthly retention review over HTTP: the list, keeping a track longer with a
reason, proposing its erasure; bad input gives a clear message, never a 500; other roles are
refused and the refusal is in the audit log."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select

from avhopp.casework.models import Track
from avhopp.privacy.models import ErasureRequest
from tests.conftest import audit_actions, csrf_token, login, make_user, post_form

REVIEW = "/privacy/retention"


@pytest.fixture
def due(db, clock, seeded):
    """Two closed tracks due for review this month (codes in order), and one open track."""
    tracks = db.scalars(select(Track).order_by(Track.code)).all()
    for track in tracks[:2]:
        track.status, track.closure_reason = "closed", "goal_reached"
        track.closed_at = clock() - dt.timedelta(days=1100)
        track.retention_until = clock().date() + dt.timedelta(days=5)
    tracks[2].status, tracks[2].closed_at, tracks[2].retention_until = "active", None, None
    db.commit()
    rows = [(t.id, t.code) for t in tracks]
    db.rollback()
    return rows


def _coordinator(app, clock):
    client = app.test_client()
    login(client, make_user(app, role="coordinator"), clock)
    return client


def _followed(client, response):
    assert response.status_code == 302, response.get_data(as_text=True)
    return client.get(response.headers["Location"]).get_data(as_text=True)


def test_the_review_lists_closed_tracks_due_this_month_only(app, clock, due):
    client = _coordinator(app, clock)
    page = client.get(REVIEW)
    assert page.status_code == 200
    body = page.get_data(as_text=True)
    assert "Gallringsgenomgång" in body
    assert due[0][1] in body and due[1][1] in body
    assert due[2][1] not in body  # open: no retention date


def test_keeping_a_track_longer_needs_a_later_date_and_a_reason(app, db, clock, due):
    client = _coordinator(app, clock)
    (track_id, code), _other, _open = due
    action = f"{REVIEW}/{track_id}/extend"
    later = (clock().date() + dt.timedelta(days=400)).isoformat()

    kept = post_form(client, REVIEW, action=action, until=later, reason="legal_hold")
    assert "Gallringsdatumet är flyttat." in _followed(client, kept)
    assert db.get(Track, track_id).retention_until.isoformat() == later
    db.rollback()
    extended = [d for a, o, d in audit_actions(db) if a == "retention.extended"]
    assert extended == [{"until": later, "previous": (clock().date() + dt.timedelta(days=5))
                         .isoformat(), "ground": "legal_hold"}]
    db.rollback()
    # Kept past this month: no longer on the review.
    assert code not in client.get(REVIEW).get_data(as_text=True)


@pytest.mark.parametrize("case", [
    ("not-a-date", "legal_hold", "Välj ett datum och ett skäl."),
    ("", "legal_hold", "Välj ett datum och ett skäl."),
    ("2030-01-01", "because-i-say-so", "Välj ett datum och ett skäl."),
    ("2026-11-03", "other", "Det nya datumet måste vara senare än det nuvarande."),
    ("2020-01-01", "other", "Det nya datumet måste vara senare än det nuvarande."),
])
def test_bad_input_to_keep_longer_gives_a_clear_message_and_changes_nothing(
        app, db, clock, due, case):
    until, reason, message = case
    client = _coordinator(app, clock)
    track_id = due[0][0]
    before = db.get(Track, track_id).retention_until
    db.rollback()
    response = post_form(client, REVIEW, action=f"{REVIEW}/{track_id}/extend", until=until,
                         reason=reason)
    assert message in _followed(client, response)
    db.expire_all()
    assert db.get(Track, track_id).retention_until == before
    db.rollback()
    assert not [a for a, _o, _d in audit_actions(db) if a == "retention.extended"]


def test_an_open_track_or_an_unknown_one_cannot_be_kept_or_proposed(app, db, clock, due):
    client = _coordinator(app, clock)
    open_id = due[2][0]
    response = post_form(client, REVIEW, action=f"{REVIEW}/{open_id}/extend",
                         until="2030-01-01", reason="other")
    assert "Bara avslutade ärenden har ett gallringsdatum." in _followed(client, response)
    response = post_form(client, REVIEW, action=f"{REVIEW}/{open_id}/erase")
    assert "Bara avslutade ärenden har ett gallringsdatum." in _followed(client, response)
    unknown = "00000000-0000-0000-0000-000000000000"
    assert post_form(client, REVIEW, action=f"{REVIEW}/{unknown}/extend", until="2030-01-01",
                     reason="other").status_code == 404
    assert post_form(client, REVIEW, action=f"{REVIEW}/{unknown}/erase").status_code == 404
    assert db.scalars(select(ErasureRequest)).all() == []


def test_proposing_erasure_makes_a_request_for_a_second_coordinator_once(app, db, clock, due):
    client = _coordinator(app, clock)
    track_id, _code = due[1]
    proposed = post_form(client, REVIEW, action=f"{REVIEW}/{track_id}/erase")
    assert proposed.status_code == 302
    assert "/privacy/erasures/" in proposed.headers["Location"]
    request = db.scalars(select(ErasureRequest)).one()
    assert request.state == "pending" and request.ground == "retention"
    assert request.execute_after.date() == clock().date() + dt.timedelta(days=5)
    db.rollback()
    # The review now shows the request's state instead of the button.
    assert "Väntar på godkännande" in client.get(REVIEW).get_data(as_text=True)
    again = client.post(f"{REVIEW}/{track_id}/erase",
                        data={"csrf_token": csrf_token(client, REVIEW)})
    assert "Radering av den här personen är redan begärd." in _followed(client, again)
    assert len(db.scalars(select(ErasureRequest)).all()) == 1


@pytest.mark.parametrize("role", ["support_worker", "board", "admin"])
def test_other_roles_are_refused_the_review_and_the_refusal_is_audited(app, db, clock, due,
                                                                       role):
    client = app.test_client()
    login(client, make_user(app, role=role), clock)
    track_id = due[0][0]
    assert client.get(REVIEW).status_code == 403
    token = csrf_token(client, "/account/confirm")
    assert client.post(f"{REVIEW}/{track_id}/extend", data={
        "csrf_token": token, "until": "2030-01-01", "reason": "other"}).status_code == 403
    assert client.post(f"{REVIEW}/{track_id}/erase",
                       data={"csrf_token": token}).status_code == 403
    denied = [d for a, o, d in audit_actions(db)
              if a == "security.access_denied" and o == "denied"]
    assert [d["endpoint"] for d in denied] == [
        "privacy.retention_review", "privacy.retention_extend", "privacy.retention_erase"]
    assert {d["permission"] for d in denied} == {"privacy.retention"}
    assert db.get(Track, track_id).retention_until == clock().date() + dt.timedelta(days=5)
    assert db.scalars(select(ErasureRequest)).all() == []
