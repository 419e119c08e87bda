"""The data-protection pages over HTTP: step-up, four-eyes, receipt, extract page and JSON,
retention review."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select

from avhopp.casework.models import Person, Track
from avhopp.crypto.errors import KeyDestroyed
from tests.conftest import audit_actions, csrf_token, login, make_user, post_form


def _step_up(client, member, clock):
    response = post_form(client, "/account/confirm", password=member.password)
    assert response.status_code in (302, 303), response.get_data(as_text=True)


def _track(db):
    """The first track, read in a transaction that ends at once (SQLite's write lock)."""
    track = db.scalars(select(Track).order_by(Track.code)).first()
    track_id, code, person_id = track.id, track.code, track.person_id
    db.rollback()

    class Row:
        id = track_id

    Row.code = code
    Row.person_id = person_id
    return Row


@pytest.fixture
def two(app, clock):
    first, second = make_user(app, role="coordinator"), make_user(app, role="coordinator")
    return first, second


@pytest.mark.usefixtures("seeded")
def test_erasure_over_http_needs_step_up_and_a_second_coordinator(app, db, clock, two):
    first, second = two
    track = _track(db)
    one = app.test_client()
    login(one, first, clock)
    clock.advance(minutes=10)  # the login's own step-up has expired
    page = one.get(f"/privacy/tracks/{track.id}/erase")
    assert page.status_code == 302 and "/account/confirm" in page.headers["Location"]
    _step_up(one, first, clock)
    wrong = post_form(one, f"/privacy/tracks/{track.id}/erase", ground="data_subject_request",
                      confirm_code="XXXX")
    assert wrong.status_code == 200
    assert "inte det här ärendets kod" in wrong.get_data(as_text=True)
    done = post_form(one, f"/privacy/tracks/{track.id}/erase", ground="data_subject_request",
                     confirm_code=track.code)
    assert done.status_code == 302
    request_page = done.headers["Location"]
    own = one.get(request_page).get_data(as_text=True)
    assert "Godkänn och radera" not in own

    other = app.test_client()
    login(other, second, clock)
    _step_up(other, second, clock)
    approve = post_form(other, request_page, action=request_page + "/approve")
    assert approve.status_code == 302
    receipt = other.get(request_page).get_data(as_text=True)
    assert "Kvitto" in receipt
    db.expire_all()
    with pytest.raises(KeyDestroyed):
        _ = db.get(Person, track.person_id).name
    assert any(a == "erasure.executed" for a, _o, _d in audit_actions(db))


@pytest.mark.usefixtures("seeded")
def test_extract_page_and_json_after_step_up(app, db, clock, two):
    first, _second = two
    track = _track(db)
    name = db.get(Person, track.person_id).name
    db.rollback()
    client = app.test_client()
    login(client, first, clock)
    clock.advance(minutes=10)
    assert client.get(f"/privacy/tracks/{track.id}/extract").status_code == 302
    _step_up(client, first, clock)
    page = client.get(f"/privacy/tracks/{track.id}/extract")
    assert page.status_code == 200
    body = page.get_data(as_text=True)
    assert "Registerutdrag" in body and name in body
    assert page.headers["Cache-Control"] == "no-store"
    data = client.get(f"/privacy/tracks/{track.id}/extract.json")
    assert data.status_code == 200
    assert "attachment" in data.headers["Content-Disposition"]
    assert json.loads(data.get_data())["records"]["person"][0]["name"] == name


@pytest.mark.usefixtures("seeded")
def test_a_support_worker_gets_no_extract_and_no_erasure(app, db, clock):
    worker = make_user(app, role="support_worker")
    track = _track(db)
    client = app.test_client()
    login(client, worker, clock)
    for path in (f"/privacy/tracks/{track.id}/extract", f"/privacy/tracks/{track.id}/erase",
                 "/privacy/", "/privacy/retention"):
        assert client.get(path).status_code == 403


def test_unknown_ids_give_404_not_500(app, db, clock, two):
    first, _second = two
    client = app.test_client()
    login(client, first, clock)
    _step_up(client, first, clock)
    assert client.get("/privacy/erasures/00000000-0000-0000-0000-000000000000").status_code \
        == 404
    assert client.get("/privacy/tracks/00000000-0000-0000-0000-000000000000/extract") \
        .status_code == 404
    token = csrf_token(client, "/privacy/")
    assert client.post("/privacy/retention/00000000-0000-0000-0000-000000000000/extend",
                       data={"csrf_token": token, "until": "bad", "reason": "x"}
                       ).status_code == 302
