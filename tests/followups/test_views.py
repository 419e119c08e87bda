"""Follow-up pages over HTTP on both engines: Min dag, planning on a track, handling a
follow-up, the coordinator's overview; refusals for strangers; clear errors for bad input."""

from __future__ import annotations

import datetime as dt
import re
import uuid

import pytest
from sqlalchemy import select

from avhopp.followups.models import FollowUp
from tests.casework.helpers import events
from tests.conftest import START, csrf_token, login
from tests.followups.conftest import CANARY_NAME, CANARY_NOTE, make_world
from tests.followups.test_services import schedule

PLAN = {"kind": "contact", "due_at": "2026-11-05T10:00", "recurrence": "weekly",
        "recurrence_rule": "", "reminder_lead_hours": "24", "escalation_delay_hours": "48"}


def text(response):
    return response.get_data(as_text=True)


def client_for(app, member, clock):
    client = app.test_client()
    login(client, member, clock)
    return client


def follow_ups(db):
    db.expire_all()
    rows = [(r.id, r.status, r.due_at, r.occurrence, r.version)
            for r in db.scalars(select(FollowUp).order_by(FollowUp.due_at))]
    db.rollback()
    return rows


def test_plan_on_the_track_page_then_see_it_on_my_day(app, db, clock):
    world = make_world(app, db, emails=False)
    client = client_for(app, world.worker, clock)
    track_page = text(client.get(f"/tracks/{world.track.id}"))
    assert "Uppföljningar" in track_page and f"/followups/track/{world.track.id}/new" in track_page
    new = f"/followups/track/{world.track.id}/new"
    response = client.post(new, data={"csrf_token": csrf_token(client, new), **PLAN,
                                      "assignee_id": str(world.worker.id)})
    assert response.status_code == 302, text(response)
    [(fid, status, due, occurrence, _v)] = follow_ups(db)
    assert status == "open" and occurrence == 1
    assert due == dt.datetime(2026, 11, 5, 9, 0, tzinfo=dt.UTC)  # 10:00 in Stockholm
    day = text(client.get("/followups/my-day"))
    assert world.track.code in day and f"/followups/{fid}" in day
    assert CANARY_NAME not in day


def test_complete_from_the_follow_up_page_plans_the_next_occurrence(app, db, clock):
    world = make_world(app, db, emails=False)
    row = schedule(db, world, recurrence="weekly")
    client = client_for(app, world.worker, clock)
    page = f"/followups/{row.id}"
    response = client.post(f"{page}/complete", data={
        "csrf_token": csrf_token(client, page), "version": "1",
        "occurred_at": "2026-11-02T09:30", "contact_type": "phone",
        "contact_achieved": "y", "note": CANARY_NOTE})
    assert response.status_code == 302, text(response)
    rows = follow_ups(db)
    assert [(s, o) for _i, s, _d, o, _v in rows] == [("done", 1), ("open", 2)]
    assert "Nästa tillfälle är planerat." in text(client.get("/followups/my-day"))


def test_the_three_forms_of_a_follow_up_page_share_no_field_id(app, db, clock):
    world = make_world(app, db, emails=False)
    row = schedule(db, world)
    client = client_for(app, world.worker, clock)
    page = text(client.get(f"/followups/{row.id}"))
    ids = [i for i in re.findall(r' id="([^"]+)"', page) if i != "csrf_token"]
    assert len(ids) == len(set(ids)), sorted(i for i in ids if ids.count(i) > 1)
    for target in re.findall(r'<label for="([^"]+)"', page):
        assert target in ids


def test_cancelling_from_the_page_keeps_the_series_when_asked(app, db, clock):
    world = make_world(app, db, emails=False)
    row = schedule(db, world, recurrence="weekly")
    client = client_for(app, world.worker, clock)
    page = f"/followups/{row.id}"
    response = client.post(f"{page}/cancel", data={
        "csrf_token": csrf_token(client, page), "cancel-version": "1",
        "cancel-reason": "Semester", "cancel-continue_series": "y"})
    assert response.status_code == 302, text(response)
    assert [(s, o) for _i, s, _d, o, _v in follow_ups(db)] == [("cancelled", 1), ("open", 2)]


def test_a_stale_form_is_refused_with_a_clear_message_and_nothing_changes(app, db, clock):
    world = make_world(app, db, emails=False)
    row = schedule(db, world)
    client = client_for(app, world.worker, clock)
    page = f"/followups/{row.id}"
    response = client.post(f"{page}/reschedule", data={
        "csrf_token": csrf_token(client, page), "move-version": "7",
        "move-due_at": "2026-11-09T10:00", "move-reason": "Sjuk"})
    assert response.status_code == 400
    assert "Någon annan har ändrat uppföljningen" in text(response)
    assert "Sjuk" in text(response)  # what was typed is kept
    assert follow_ups(db)[0][2] == row.due_at


@pytest.mark.parametrize("changes", [
    {"due_at": "2026-13-45T25:61"}, {"due_at": ""}, {"kind": "party"},
    {"assignee_id": "not-a-uuid"}, {"assignee_id": str(uuid.uuid4())},
    {"recurrence": "custom", "recurrence_rule": "FREQ=SECONDLY"},
    {"reminder_lead_hours": "-5"}, {"reminder_lead_hours": "9" * 40},
    {"recurrence": "custom", "recurrence_rule": "\u202eFREQ=WEEKLY"},
    {"due_at": "9999-12-31T23:59"}, {"recurrence": "custom", "recurrence_rule": "x" * 300},
])
def test_bad_planning_input_gets_a_clear_error_never_a_500(app, db, clock, changes):
    world = make_world(app, db, emails=False)
    client = client_for(app, world.worker, clock)
    new = f"/followups/track/{world.track.id}/new"
    data = {**PLAN, "assignee_id": str(world.worker.id), **changes}
    response = client.post(new, data={"csrf_token": csrf_token(client, new), **data})
    assert response.status_code == 400, text(response)
    assert 'class="error"' in text(response) or "notice-error" in text(response)
    assert follow_ups(db) == []


def test_someone_off_the_team_reaches_no_follow_up_page_and_is_recorded(app, db, clock):
    world = make_world(app, db, emails=False)
    row = schedule(db, world)
    code = world.track.code
    client = client_for(app, world.colleague, clock)
    token = csrf_token(client, "/followups/my-day")
    assert client.get(f"/followups/{row.id}").status_code == 404
    assert client.get(f"/followups/track/{world.track.id}/new").status_code == 404
    for action in ("complete", "reschedule", "cancel"):
        response = client.post(f"/followups/{row.id}/{action}", data={
            "csrf_token": token, "version": "1", "occurred_at": "2026-11-02T09:00",
            "contact_type": "phone", "note": "x", "move-version": "1",
            "move-due_at": "2026-11-09T10:00", "move-reason": "x", "cancel-version": "1",
            "cancel-reason": "x"})
        assert response.status_code == 404
    assert len(events(db, "track.access_denied")) == 5
    assert follow_ups(db)[0][1] == "open"
    assert code not in text(client.get("/followups/my-day"))


def test_the_overview_is_for_coordinators_and_shows_codes_and_dates_only(app, db, clock):
    world = make_world(app, db, emails=False)
    schedule(db, world, due_at=START - dt.timedelta(days=1))
    coordinator = client_for(app, world.coordinator, clock)
    page = text(coordinator.get("/followups/overview"))
    assert world.track.code in page and world.worker.username in page
    assert CANARY_NAME not in page
    worker = client_for(app, world.worker, clock)
    assert worker.get("/followups/overview").status_code == 403


def test_my_day_lists_quiet_tracks_and_tracks_with_nothing_planned(app, db, clock):
    world = make_world(app, db, emails=False)
    clock.advance(days=30)
    client = client_for(app, world.worker, clock)
    page = text(client.get("/followups/my-day"))
    planned = page.split("Mina ärenden utan planerad uppföljning")[1]
    assert world.track.code in planned
    assert re.search(r"Ingen kontakt på 14 dagar", page)


def test_a_worker_chooses_the_daily_digest_and_an_address(app, db, clock):
    world = make_world(app, db, emails=False)
    client = client_for(app, world.worker, clock)
    page = "/followups/preferences"
    bad = client.post(page, data={"csrf_token": csrf_token(client, page), "mode": "digest",
                                  "email": "not an address"})
    assert bad.status_code == 400 and "Ange en enda e-postadress." in text(bad)
    good = client.post(page, data={"csrf_token": csrf_token(client, page), "mode": "digest",
                                   "email": "me@example.org"})
    assert good.status_code == 302
    assert events(db, "followup.preference_changed") == [
        ("success", {"mode": "digest", "has_email": True})]
