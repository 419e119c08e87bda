"""The relative track pages over HTTP, on both engines: intake to closure in Swedish, kind
isolation on every route (404 and a recorded refusal), a user on both teams, lists and
searches by kind, links with consent, and a defector track started from a person of concern."""

from __future__ import annotations

import re
import uuid
from typing import Any

import pytest

from avhopp.casework import services as casework
from avhopp.casework.models import Track
from avhopp.permissions import permission_of, role_has
from avhopp.relatives.models import TrackLink
from tests.casework.helpers import NOW, events
from tests.conftest import csrf_token, login, post_form
from tests.relatives.helpers import RELATIVE_PHONE, RelativesWorld, link

RELATIVE_URL = re.compile(r"/relatives/([0-9a-f-]{36})$")
INTAKE = {"consent_given": "y", "consent_form": "oral", "name": "Maria Mamma",
          "personnummer": "", "phone": "070-111 22 33", "email": "",
          "safe_contact_method": "Sms efter kl 18", "concern_knows_of_contact": "no",
          "protected_data_level": "none",
          "referral_source": "relatives_helpline", "relation": "parent",
          "concern_birth_year": "2006", "concern_environment": "white_power"}
JOURNAL = {"occurred_at": "2026-11-02T09:00", "contact_type": "phone",
           "contact_achieved": "y", "duration_minutes": "30", "participants": "",
           "note": "Mamman berättar om sonens nya vänner.", "sensitivity": "normal"}


def client_for(app: Any, clock: Any, member: Any) -> Any:
    client = app.test_client()
    login(client, member, clock)
    return client


def post(client: Any, url: str, **data: Any) -> Any:
    return client.post(url, data={"csrf_token": csrf_token(client, "/relatives/mine"), **data})


def text(response: Any) -> str:
    return response.get_data(as_text=True)


@pytest.fixture
def world(app, db):
    return RelativesWorld(app, db)


def test_a_coordinator_opens_a_relative_track_and_the_worker_works_it(app, db, clock, world):
    coordinator = client_for(app, clock, world.coordinator)
    page = coordinator.get("/relatives/new")
    assert page.status_code == 200
    assert "Nytt anhörigärende" in text(page)
    response = post_form(coordinator, "/relatives/new", **INTAKE)
    assert response.status_code == 302, text(response)
    track_id = uuid.UUID(RELATIVE_URL.search(response.location).group(1))
    track = db.get(Track, track_id)
    code, kind = track.code, track.kind
    db.rollback()
    assert kind == "relative" and code.startswith("AN-")
    header = coordinator.get(f"/relatives/{track_id}")
    assert code in text(header) and "Maria Mamma" not in text(header)
    # The coordinator owns what they open until they hand it to a relative support worker.
    handed = post(coordinator, f"/relatives/{track_id}/owner",
                  owner_id=str(world.relative_worker.id))
    assert handed.status_code == 302, text(handed)

    worker = client_for(app, clock, world.relative_worker)
    shown = post(worker, f"/relatives/{track_id}/content", purpose="casework")
    assert shown.status_code == 200
    body = text(shown)
    assert "Maria Mamma" in body and "Sms efter kl 18" in body
    assert "Förälder" in body and "Vit makt" in body
    protected = post_form(coordinator, "/relatives/new", **{
        **INTAKE, "name": "Skyddad Anhörig", "phone": "070-111 22 44",
        "protected_data_level": "protected_registration"})
    assert protected.status_code == 302
    protected_id = uuid.UUID(RELATIVE_URL.search(protected.location).group(1))
    shown_protected = text(post(coordinator, f"/relatives/{protected_id}/content",
                                purpose="casework"))
    assert "Skyddad folkbokföring" in shown_protected
    assert "070111" not in shown_protected and "+4670111" not in shown_protected
    assert post(worker, f"/relatives/{track_id}/journal", **JOURNAL).status_code == 302
    saved = post(worker, f"/relatives/{track_id}/case", version="1", relation="parent",
                 concern_knows_of_contact="no", observed_signs=["symbols", "online_activity"],
                 wellbeing="3", needs=["counselling"], exit_role="supportive_contact",
                 agreements="Inga besök i hemmet.", children_in_household="yes")
    assert saved.status_code == 302, text(saved)
    body = text(post(worker, f"/relatives/{track_id}/content", purpose="follow_up"))
    assert "Mamman berättar om sonens nya vänner." in body
    assert "Symboler" in body and "Inga besök i hemmet." in body
    closed = post(worker, f"/relatives/{track_id}/status", to_status="closed",
                  closure_reason="goal_reached", closing_note="Avslutat i samförstånd.",
                  version="3")
    assert closed.status_code == 302, text(closed)
    assert "Avslutat" in text(worker.get(f"/relatives/{track_id}"))


def test_every_relative_route_refuses_a_defector_track_id(app, db, clock, world):
    """Even for `both`, who is on the defector team: 404 and a recorded wrong_kind refusal."""
    client = client_for(app, clock, world.both)
    token = csrf_token(client, "/relatives/mine")
    routes = [r for r in app.url_map.iter_rules()
              if r.endpoint.startswith("relatives.") and "track_id" in r.arguments]
    assert len(routes) >= 15
    for rule in routes:
        url = rule.rule.replace("<uuid:track_id>", str(world.d))
        method = "POST" if "POST" in rule.methods and "GET" not in rule.methods else "GET"
        response = client.open(url, method=method, data={"csrf_token": token})
        assert response.status_code in (403, 404), (url, response.status_code)
    rules = [d["rule"] for o, d in events(db, "track.access_denied") if o == "denied"]
    # Routes the role may use at all reach the kind check (the others stop at the permission
    # gate, with 403).
    reached = [r for r in routes
               if role_has("support_worker", permission_of(app.view_functions[r.endpoint]))]
    assert rules.count("wrong_kind") == len(reached)


def test_every_defector_route_refuses_a_relative_track_id(app, db, clock, world):
    client = client_for(app, clock, world.both)
    token = csrf_token(client, "/tracks/mine")
    routes = [r for r in app.url_map.iter_rules()
              if r.endpoint.startswith("cases.") and "track_id" in r.arguments]
    for rule in routes:
        url = rule.rule.replace("<uuid:track_id>", str(world.r1.id))
        method = "POST" if "POST" in rule.methods and "GET" not in rule.methods else "GET"
        response = client.open(url, method=method, data={"csrf_token": token})
        assert response.status_code in (403, 404), (url, response.status_code)
    assert events(db, "track.access_denied")


def test_a_user_on_both_teams_sees_each_track_only_in_its_own_place(app, db, clock, world):
    link(db, world, world.r1)
    casework.add_journal_entry(db, actor=world.both, track_id=world.r1.id, occurred_at=NOW,
                               contact_type="phone", contact_achieved=True,
                               note="Anhörigjournal-HEMLIG", now=NOW)
    casework.add_journal_entry(db, actor=world.both, track_id=world.d, occurred_at=NOW,
                               contact_type="meeting", contact_achieved=True,
                               note="Avhopparjournal-HEMLIG", now=NOW)
    db.commit()
    client = client_for(app, clock, world.both)
    defector_page = text(post(client, f"/tracks/{world.d}/content", purpose="casework"))
    relative_page = text(post(client, f"/relatives/{world.r1.id}/content", purpose="casework"))
    assert "Avhopparjournal-HEMLIG" in defector_page
    assert "Anhörigjournal-HEMLIG" not in defector_page and "Maria Mamma" not in defector_page
    assert "Anhörigjournal-HEMLIG" in relative_page
    assert "Avhopparjournal-HEMLIG" not in relative_page
    assert "Anna Andersson" not in relative_page
    # The link: only the other track's code.
    assert world.r1.code in defector_page and world.defector.code in relative_page
    assert world.r2.code not in defector_page  # not linked


@pytest.mark.parametrize("who", ["defector_worker", "outsider"])
def test_workers_outside_the_team_get_404_and_a_refusal_is_recorded(app, db, clock, world,
                                                                      who):
    client = client_for(app, clock, getattr(world, who))
    assert client.get(f"/relatives/{world.r1.id}").status_code == 404
    assert post(client, f"/relatives/{world.r1.id}/content",
                purpose="casework").status_code == 404
    assert post(client, f"/relatives/{world.r1.id}/journal", **JOURNAL).status_code == 404
    assert client.get(f"/relatives/{uuid.uuid4()}").status_code == 404
    denied = [d["rule"] for o, d in events(db, "track.access_denied") if o == "denied"]
    assert len(denied) >= 4


def test_relative_worker_cannot_reach_the_defector_track(app, db, clock, world):
    client = client_for(app, clock, world.relative_worker)
    assert client.get(f"/tracks/{world.d}").status_code == 404
    assert post(client, f"/tracks/{world.d}/content", purpose="casework").status_code == 404
    rules = [d["rule"] for _o, d in events(db, "track.access_denied")]
    assert rules == ["not_listed", "not_on_team"]


def test_lists_show_only_their_own_kind(app, db, clock, world):
    client = client_for(app, clock, world.coordinator)
    relatives_page = text(client.get("/relatives/all"))
    defectors_page = text(client.get("/tracks/all"))
    for relative in (world.r1, world.r2, world.r3):
        assert relative.code in relatives_page and relative.code not in defectors_page
    assert world.defector.code in defectors_page
    assert world.defector.code not in relatives_page
    mine = text(client_for(app, clock, world.both).get("/relatives/mine"))
    assert world.r1.code in mine and world.r2.code not in mine
    assert world.defector.code not in mine


def test_list_rows_link_to_each_track_page_of_their_own_kind(app, db, clock, world):
    client = client_for(app, clock, world.coordinator)
    relatives_page = text(client.get("/relatives/all"))
    for relative in (world.r1, world.r2, world.r3):
        assert f'href="/relatives/{relative.id}">{relative.code}</a>' in relatives_page
    defectors_page = text(client.get("/tracks/all"))
    assert f'href="/tracks/{world.defector.id}">{world.defector.code}</a>' in defectors_page


def test_identifier_search_is_posted_and_filtered_by_kind(app, db, clock, world):
    client = client_for(app, clock, world.coordinator)
    found = post(client, "/relatives/search", personnummer="", phone=RELATIVE_PHONE, email="")
    assert found.status_code == 200 and world.r1.code in text(found)
    on_defector_side = post(client, "/tracks/search", personnummer="", phone=RELATIVE_PHONE,
                            email="")
    assert world.r1.code not in text(on_defector_side)
    by_code = client.get(f"/relatives/search?code={world.r2.code}")
    assert by_code.status_code == 302 and str(world.r2.id) in by_code.location
    wrong_kind = client.get(f"/relatives/search?code={world.defector.code}")
    assert wrong_kind.status_code == 200
    assert RELATIVE_PHONE not in "".join(str(d) for _a, _o, d in
                                         [(0, 0, e) for e in events(db, "track.searched")])


def test_linking_over_http_needs_the_consent_box_and_revoking_hides_it(app, db, clock, world):
    coordinator = client_for(app, clock, world.coordinator)
    url = f"/relatives/{world.r1.id}/link"
    no_consent = post(coordinator, url, defector_code=world.defector.code,
                      consent_form="oral", valid_from="2026-11-01")
    assert no_consent.status_code == 200
    assert db.query(TrackLink).count() == 0
    db.rollback()
    wrong = post(coordinator, url, defector_code="AV-ZZZZZ", consent_given="y",
                 consent_form="oral", valid_from="2026-11-01")
    assert wrong.status_code == 200
    assert "Inget avhopparärende med den koden" in text(wrong)
    made = post(coordinator, url, defector_code=world.defector.code.lower(),
                consent_given="y", consent_form="oral", valid_from="2026-11-01")
    assert made.status_code == 302, text(made)
    defector_worker = client_for(app, clock, world.defector_worker)
    assert world.r1.code in text(defector_worker.get(f"/tracks/{world.d}"))
    relative_worker = client_for(app, clock, world.relative_worker)
    assert world.defector.code in text(relative_worker.get(f"/relatives/{world.r1.id}"))
    consent_id = db.query(TrackLink).one().consent_id
    db.rollback()
    revoked = post(relative_worker, f"/relatives/{world.r1.id}/consents/revoke",
                   consent_id=str(consent_id))
    assert revoked.status_code == 302
    clock.advance(days=1)
    assert world.r1.code not in text(defector_worker.get(f"/tracks/{world.d}"))
    assert world.defector.code not in text(relative_worker.get(f"/relatives/{world.r1.id}"))


def test_a_defector_track_started_from_a_person_of_concern_carries_nothing_over(
        app, db, clock, world):
    coordinator = client_for(app, clock, world.coordinator)
    page = text(coordinator.get(f"/relatives/{world.r3.id}"))
    assert 'href="/tracks/new"' in page  # a plain link: no id, nothing prefilled
    intake = text(coordinator.get("/tracks/new"))
    assert "Fia Vän" not in intake and world.r3.code not in intake
    response = post_form(coordinator, "/tracks/new", consent_given="y", consent_form="oral",
                         name="Ny Avhoppare", personnummer="", phone="", email="",
                         referral_source="relative", environment="", involvement="")
    assert response.status_code == 302
    new_id = uuid.UUID(response.location.rsplit("/", 1)[1])
    new_track = db.get(Track, new_id)
    r3 = db.get(Track, world.r3.id)
    assert new_track.person_id != r3.person_id
    assert db.query(TrackLink).count() == 0
    db.rollback()


def test_a_stale_goal_status_is_explained_in_terms_of_the_goal(app, db, clock, world):
    goal = casework.add_plan_goal(db, actor=world.relative_worker, track_id=world.r1.id,
                                  now=NOW, goal=casework.GoalInput(life_domain="safety",
                                                                   goal="Trygg vardag."))
    db.commit()
    goal_id, version = goal.id, goal.version
    client = client_for(app, clock, world.relative_worker)
    url = f"/relatives/{world.r1.id}/goals/status"
    changed = post(client, url, goal_id=str(goal_id), status="ongoing", version=str(version))
    assert changed.status_code == 302
    stale = post(client, url, goal_id=str(goal_id), status="stopped", version=str(version))
    assert stale.status_code == 200
    assert "Någon annan har ändrat målet under tiden: inget sparades." in text(stale)
    assert events(db, "plan.goal_updated")[-1] == (
        "denied", {"goal_id": str(goal_id), "reason": "stale_version"})
