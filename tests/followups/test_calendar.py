"""The personal calendar feed: a secret link shown once, codes and times only, revocable, and
nothing for a wrong, revoked or deactivated owner's token."""

from __future__ import annotations

import datetime as dt
import re

from tests.casework.helpers import events
from tests.conftest import START, csrf_token, database_bytes, login, user_row
from tests.followups.conftest import CANARIES, make_world
from tests.followups.test_services import schedule

LINK = re.compile(r"<code>(http://localhost/followups/calendar/([A-Za-z0-9_-]+)\.ics)</code>")


def make_link(client):
    page = "/followups/preferences"
    response = client.post("/followups/calendar/new",
                           data={"csrf_token": csrf_token(client, page)})
    assert response.status_code == 200
    match = LINK.search(response.get_data(as_text=True))
    assert match, response.get_data(as_text=True)
    return match.group(1), match.group(2)


def test_the_feed_lists_my_open_follow_ups_with_codes_and_times_only(app, db, clock):
    world = make_world(app, db, emails=False)
    schedule(db, world, due_at=START + dt.timedelta(days=2))
    code = world.track.code
    client = app.test_client()
    login(client, world.worker, clock)
    url, token = make_link(client)
    feed = app.test_client().get(url.removeprefix("http://localhost"))
    assert feed.status_code == 200 and feed.mimetype == "text/calendar"
    body = feed.get_data(as_text=True)
    assert body.startswith("BEGIN:VCALENDAR\r\n") and body.count("BEGIN:VEVENT") == 1
    assert f"SUMMARY:Uppföljning {code}" in body and "DTSTART:20261104T090000Z" in body
    assert not [c for c in CANARIES if c.lower() in body.lower()]
    assert token.encode() not in database_bytes(db)  # only its hash is stored
    assert [o for o, _d in events(db, "followup.calendar_link_created")] == ["success"]


def test_a_new_link_replaces_the_old_and_a_revoked_link_is_gone(app, db, clock):
    world = make_world(app, db, emails=False)
    client = app.test_client()
    login(client, world.worker, clock)
    first, _token = make_link(client)
    second, _token = make_link(client)
    anonymous = app.test_client()
    assert anonymous.get(first.removeprefix("http://localhost")).status_code == 404
    assert anonymous.get(second.removeprefix("http://localhost")).status_code == 200
    client.post("/followups/calendar/revoke",
                data={"csrf_token": csrf_token(client, "/followups/preferences")})
    assert anonymous.get(second.removeprefix("http://localhost")).status_code == 404
    assert [o for o, _d in events(db, "followup.calendar_link_revoked")] == ["success"]


def test_wrong_tokens_and_deactivated_owners_get_nothing(app, db, clock):
    world = make_world(app, db, emails=False)
    client = app.test_client()
    login(client, world.worker, clock)
    url, _token = make_link(client)
    anonymous = app.test_client()
    for path in ("/followups/calendar/x.ics", "/followups/calendar/" + "a" * 500 + ".ics",
                 "/followups/calendar/%00.ics"):
        assert anonymous.get(path).status_code in (400, 404)
    user = user_row(db, world.worker.id)
    user.is_active = False
    db.commit()
    assert anonymous.get(url.removeprefix("http://localhost")).status_code == 404
