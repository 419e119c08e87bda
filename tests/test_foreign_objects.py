"""Route x role x foreign object (issue 9, item 2): every route that takes a `track_id` or a
`follow_up_id`, called by each role with the id of a real track (or follow-up) the caller is not
on the team of, by GET and by POST.

tests/test_permissions.py walks every route with random ids (the role gate); this walk uses real
foreign objects, so the object-level policy is what answers. For every call: never a 5xx; a
refusal (403/404) always leaves a denied audit event; nothing of the foreign person or journal
appears in the answer; and nothing about the foreign tracks changes. Roles that may not work on
tracks at all, and a support worker off the team, are refused everywhere and not even told the
track's code. A coordinator off the team may see the track's list-level page and do the
coordinator's own duties (register extract, erasure request, team assignment), but not read
its content without break-glass."""

from __future__ import annotations

import datetime as dt
from typing import Any
from urllib.parse import urlsplit

import pytest
from sqlalchemy import func, inspect, select

from avhopp.accounts.models import User
from avhopp.casework import services as casework
from avhopp.casework.models import Track
from avhopp.db import Base
from avhopp.followups import services as followups
from avhopp.followups.models import FollowUp
from avhopp.permissions import ROLES
from tests.casework.helpers import NOW, open_defector
from tests.conftest import audit_actions, csrf_token, make_user
from tests.relatives.helpers import open_relative
from tests.test_permissions import RoleClient

OBJECT_ARGUMENTS = frozenset({"track_id", "follow_up_id"})
CANARIES = ("Främling Kanarieberg", "Kanarieberg", "Fremlingsalias", "19850312-4516",
            "198503124516", "070-174 06 55", "0701740655", "framling.kanarie@example.net",
            "Främlingsanteckning om ett hemligt möte", "Anhörig Kanariedal", "Kanariedal")
# A coordinator's own duties on any track (docs/security.md): the register extract shows the
# person by design (step-up, audited); it is the only place a canary may appear.
SHOWS_THE_PERSON_TO_A_COORDINATOR = frozenset({"privacy.extract_page", "privacy.extract_json"})
# What a coordinator off the team must still be refused: the content (asked for with a
# valid purpose), and a follow-up's page.
CONTENT_ENDPOINTS = frozenset({"cases.content", "relatives.content", "followups.follow_up"})
# The break-glass request form is open to everyone who may break glass (coordinators and
# support workers); it shows neither the code nor the content until access is granted.
BREAK_GLASS = frozenset({"cases.break_glass", "relatives.break_glass"})


def _world(app: Any, db: Any) -> dict[str, Any]:
    opener = make_user(app, role="coordinator")
    worker = make_user(app, role="support_worker")
    defector = open_defector(
        db, opener, owner=worker,
        person=casework.PersonInput(name="Främling Kanarieberg", alias="Fremlingsalias",
                                    personnummer="19850312-4516", phone="070-174 06 55",
                                    email="framling.kanarie@example.net"))
    relative = open_relative(db, opener, owner=worker,
                             person=casework.PersonInput(name="Anhörig Kanariedal"))
    actor = db.get(User, worker.id)
    casework.add_journal_entry(
        db, actor=actor, track_id=defector.id, occurred_at=NOW, contact_type="meeting",
        contact_achieved=True, note="Främlingsanteckning om ett hemligt möte", now=NOW)
    follow_up = followups.schedule(
        db, actor=actor, track_id=defector.id, kind="contact", assignee_id=worker.id,
        due_at=NOW + dt.timedelta(days=3), recurrence="none", now=NOW)
    world = {"track": defector.id, "relative": relative.id, "follow_up": follow_up.id,
             "codes": (defector.code, relative.code)}
    db.commit()
    return world


def _object_routes(app: Any, world: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(endpoint, method, url) of every route with a track or follow-up argument."""
    found = []
    for rule in sorted(app.url_map.iter_rules(), key=lambda r: (r.rule, r.endpoint)):
        if not OBJECT_ARGUMENTS & set(rule.arguments):
            continue
        values: dict[str, Any] = {}
        for name in rule.arguments:
            if name == "follow_up_id":
                values[name] = world["follow_up"]
            elif name == "track_id":
                kind = "relative" if rule.endpoint.startswith("relatives.") else "track"
                values[name] = world[kind]
            else:
                values[name] = "x"
        built = rule.build(values, append_unknown=False)
        assert built is not None
        for method in ("GET", "POST"):
            if method in (rule.methods or ()):
                found.append((rule.endpoint, method, built[1]))
    return found


def _denied(db: Any) -> int:
    count = sum(1 for action, outcome, _d in audit_actions(db)
                if outcome == "denied" and action in ("security.access_denied",
                                                      "track.access_denied"))
    db.rollback()  # end the read transaction: on SQLite it would hold the write lock
    return count


def _columns(row: Any) -> dict[str, Any]:
    return {attr.key: getattr(row, attr.key) for attr in inspect(type(row)).column_attrs}


def _state(db: Any, world: dict[str, Any]) -> dict[str, Any]:
    """Every column of the two tracks and the follow-up, and how many rows each table holds
    for the two tracks."""
    db.expire_all()
    ids = (world["track"], world["relative"])
    state: dict[str, Any] = {}
    for row in db.scalars(select(Track).where(Track.id.in_(ids))):
        state[f"track {row.id}"] = _columns(row)
    state["follow_up"] = _columns(db.get(FollowUp, world["follow_up"]))
    for table in Base.metadata.sorted_tables:
        if "track_id" in table.c:
            state[table.name] = db.scalar(
                select(func.count()).select_from(table).where(table.c.track_id.in_(ids)))
    db.rollback()
    return state


def test_the_walk_covers_the_track_and_follow_up_routes(app: Any, db: Any) -> None:
    world = _world(app, db)
    walked = {(endpoint, method) for endpoint, method, _url in _object_routes(app, world)}
    assert {("cases.track", "GET"), ("cases.content", "POST"), ("relatives.content", "POST"),
            ("followups.follow_up", "GET"), ("followups.complete", "POST"),
            ("privacy.extract_page", "GET")} <= walked
    assert len(walked) >= 40


@pytest.mark.parametrize("role", ROLES)
def test_each_role_off_the_team_is_refused_a_foreign_track_or_follow_up(
    app: Any, db: Any, clock: Any, role: str
) -> None:
    world = _world(app, db)
    before = _state(db, world)
    caller = RoleClient(app, role, clock)
    problems = []
    for endpoint, method, url in _object_routes(app, world):
        denied_before = _denied(db)
        if method == "POST" and endpoint in CONTENT_ENDPOINTS:
            client = caller.client
            response = client.post(url, data={"csrf_token": csrf_token(client, "/account"),
                                              "purpose": "casework"})
        else:
            response = caller.request(endpoint, method, url)
        if response.status_code == 302 and urlsplit(response.location).path == urlsplit(
                url).path.rsplit("/", 1)[0]:
            # A form that cannot be read (no fields) is sent back to the track's page before
            # any access check, exactly as for an id that does not exist: that page decides.
            response = caller.client.get(response.location)
        denied = _denied(db) - denied_before
        status = response.status_code
        body = response.get_data(as_text=True)
        where = f"{role} {method} {url} ({endpoint})"
        refused = status in (403, 404)
        if status >= 500 or "Traceback" in body:
            problems.append(f"{where}: {status}")
            continue
        if refused and not denied:
            problems.append(f"{where}: refused with {status} but no denied audit event")
        if role != "coordinator" and endpoint not in BREAK_GLASS and not refused:
            problems.append(f"{where}: expected 403/404, got {status} {response.location}")
        if role != "coordinator":
            leaked = [code for code in world["codes"] if code in body]
            if leaked:
                problems.append(f"{where}: the track code is in the answer: {leaked}")
        elif endpoint in CONTENT_ENDPOINTS and not refused:
            problems.append(f"{where}: content without being on the team: {status}")
        if not (role == "coordinator" and endpoint in SHOWS_THE_PERSON_TO_A_COORDINATOR):
            leaked = [canary for canary in CANARIES if canary in body]
            if leaked:
                problems.append(f"{where}: foreign content in the answer: {leaked}")
    assert not problems, "\n".join(problems)
    assert _state(db, world) == before, "a refused or empty request changed a foreign track"
