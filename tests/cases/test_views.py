"""The defector track pages over HTTP, on both engines: intake to closure, access refusals,
search by POST, clear errors for bad or stale input, and the canary through the web forms."""

from __future__ import annotations

import re
import uuid
from typing import Any

from avhopp.casework.models import Track
from tests.cases.test_canary import audit_bytes
from tests.casework.helpers import PNR, events, open_defector
from tests.conftest import csrf_token, database_bytes, login, make_user, post_form

TRACK_URL = re.compile(r"/tracks/([0-9a-f-]{36})$")
INTAKE = {"consent_given": "y", "consent_form": "written", "name": "Anna Andersson",
          "personnummer": PNR, "phone": "", "email": "", "referral_source": "self",
          "environment": "white_power", "involvement": "active", "special_consent_given": "y"}
JOURNAL = {"occurred_at": "2026-11-02T09:00", "contact_type": "meeting",
           "contact_achieved": "y", "duration_minutes": "45", "participants": "",
           "note": "Första mötet på kontoret.", "sensitivity": "normal"}
RISK = {"assessed_on": "2026-11-02", "threat_from_environment": "high",
        "violence_to_others": "low", "re_engagement": "medium", "self_harm": "low",
        "threat_to_relatives": "low", "overall_level": "", "protective_factors": "",
        "reassess_by": ""}


def logged_in(app: Any, clock: Any, role: str) -> tuple[Any, Any]:
    member = make_user(app, role=role)
    client = app.test_client()
    login(client, member, clock)
    return client, member


def open_by_intake(client: Any, **changes: str) -> uuid.UUID:
    response = post_form(client, "/tracks/new", **{**INTAKE, **changes})
    assert response.status_code == 302, response.get_data(as_text=True)
    match = TRACK_URL.search(response.location)
    assert match, response.location
    return uuid.UUID(match.group(1))


def post(client: Any, url: str, **data: str) -> Any:
    return client.post(url, data={"csrf_token": csrf_token(client, "/tracks/mine"), **data})


def text(response: Any) -> str:
    return response.get_data(as_text=True)


def test_a_coordinator_walks_intake_content_journal_risk_and_closure(app, db, clock):
    client, _coordinator = logged_in(app, clock, "coordinator")
    track_id = open_by_intake(client)
    page = client.get(f"/tracks/{track_id}")
    assert page.status_code == 200
    code = db.get(Track, track_id).code
    db.rollback()
    assert code in text(page)
    assert "Anna Andersson" not in text(page)  # content only on request

    shown = post(client, f"/tracks/{track_id}/content", purpose="casework")
    assert shown.status_code == 200
    assert "Anna Andersson" in text(shown)
    assert "Vit makt-miljön" in text(shown)
    reads = events(db, "track.content_read")
    assert reads and all(outcome == "success" for outcome, _ in reads)

    added = post(client, f"/tracks/{track_id}/journal", **JOURNAL)
    assert added.status_code == 302
    assert [d["contact_type"] for _, d in events(db, "journal.added")] == ["meeting"]
    assert "Första mötet på kontoret." in text(
        post(client, f"/tracks/{track_id}/content", purpose="follow_up"))

    assessed = post(client, f"/tracks/{track_id}/risk", **RISK)
    assert assessed.status_code == 302
    assert [d["overall_level"] for _, d in events(db, "risk.assessed")] == ["high"]
    assert "Hög" in text(client.get(f"/tracks/{track_id}"))

    no_reason = post(client, f"/tracks/{track_id}/status", to_status="closed",
                     closure_reason="", closing_assessment="", version="1")
    assert no_reason.status_code == 200
    assert "Välj en avslutningsorsak" in text(no_reason)
    version = str(db.get(Track, track_id).version)  # the journal and risk moved it on
    db.rollback()
    closed = post(client, f"/tracks/{track_id}/status", to_status="closed",
                  closure_reason="goal_reached", closing_assessment="Klar.", version=version)
    assert closed.status_code == 302
    changes = events(db, "track.status_changed")
    assert [(d["to_status"], d["closure_reason"]) for _, d in changes] == [
        ("closed", "goal_reached")]
    assert "Avslutat" in text(client.get(f"/tracks/{track_id}"))


def test_another_teams_support_worker_is_refused_and_each_refusal_is_audited(app, db, clock):
    coordinator = make_user(app, role="coordinator")
    worker = make_user(app, role="support_worker")
    track = open_defector(db, coordinator, owner=worker)
    track_id = track.id
    client, _outsider = logged_in(app, clock, "support_worker")
    before = len(events(db, "track.access_denied"))

    assert client.get(f"/tracks/{track_id}").status_code == 404
    assert post(client, f"/tracks/{track_id}/content", purpose="casework").status_code == 404
    journal = post(client, f"/tracks/{track_id}/journal", **JOURNAL)
    assert journal.status_code == 404
    assert "Anna Andersson" not in text(journal)

    denied = events(db, "track.access_denied")[before:]
    assert [(outcome, d["need"]) for outcome, d in denied] == [
        ("denied", "see"), ("denied", "read"), ("denied", "work")]
    assert events(db, "journal.added") == []


def test_board_and_admin_get_403_on_track_routes(app, db, clock):
    coordinator = make_user(app, role="coordinator")
    track_id = open_defector(db, coordinator).id
    for role in ("board", "admin"):
        client, _member = logged_in(app, clock, role)
        for url in ("/tracks/mine", "/tracks/all", f"/tracks/{track_id}", "/tracks/new"):
            assert client.get(url).status_code == 403, (role, url)
        token = csrf_token(client, "/account")
        response = client.post(f"/tracks/{track_id}/content",
                               data={"csrf_token": token, "purpose": "casework"})
        assert response.status_code == 403
        assert "Anna Andersson" not in text(response)


def test_search_by_personnummer_works_by_post_and_shows_only_known_codes(app, db, clock):
    coordinator_client, _coordinator = logged_in(app, clock, "coordinator")
    track_id = open_by_intake(coordinator_client)
    code = db.get(Track, track_id).code
    db.rollback()
    found = post_form(coordinator_client, "/tracks/search", personnummer=PNR)
    assert found.status_code == 200
    assert code in text(found)
    # The GET form has no personnummer field; a query string with one finds nothing.
    assert code not in text(coordinator_client.get(f"/tracks/search?personnummer={PNR}"))

    outsider, _worker = logged_in(app, clock, "support_worker")
    hidden = post_form(outsider, "/tracks/search", personnummer=PNR)
    assert hidden.status_code == 200
    assert code not in text(hidden)
    assert "Inget ärende som du får se matchar" in text(hidden)

    by_code = coordinator_client.get(f"/tracks/search?code={code}")
    assert by_code.status_code == 302
    assert by_code.location.endswith(f"/tracks/{track_id}")


def test_intake_reports_possible_duplicates_and_creates_only_when_asked(app, db, clock):
    client, _coordinator = logged_in(app, clock, "coordinator")
    first = open_by_intake(client)
    code = db.get(Track, first).code
    db.rollback()
    again = post_form(client, "/tracks/new", **INTAKE)
    assert again.status_code == 200
    assert code in text(again)
    assert "Skapa ett nytt ärende ändå" in text(again)
    second = open_by_intake(client, create_anyway="y")
    assert second != first


def test_stale_and_invalid_input_gets_a_clear_swedish_message(app, db, clock):
    client, _coordinator = logged_in(app, clock, "coordinator")
    track_id = open_by_intake(client)
    moved = post(client, f"/tracks/{track_id}/status", to_status="active", closure_reason="",
                 closing_assessment="", version="1")
    assert moved.status_code == 302
    stale = post(client, f"/tracks/{track_id}/status", to_status="dormant", closure_reason="",
                 closing_assessment="", version="1")
    assert stale.status_code == 200
    assert "Någon annan har ändrat ärendet" in text(stale)

    invalid = post(client, f"/tracks/{track_id}/status", to_status="inquiry",
                   closure_reason="", closing_assessment="", version="2")
    assert "Ärendet kan inte få den statusen" in text(invalid)

    future = post(client, f"/tracks/{track_id}/journal",
                  **{**JOURNAL, "occurred_at": "2030-01-01T10:00"})
    assert future.status_code == 200
    assert "tiden kan inte ligga i framtiden" in text(future)

    for bad in ({"occurred_at": "2026-13-45T99:99"}, {"contact_type": "'; DROP TABLE x"},
                {"duration_minutes": "9" * 40}, {"note": "x" * 100_000},
                {"sensitivity": "<script>alert(1)</script>"}):
        response = post(client, f"/tracks/{track_id}/journal", **{**JOURNAL, **bad})
        assert response.status_code == 200, bad
        assert "<script>alert" not in text(response)
    assert post(client, f"/tracks/{track_id}/risk", **{**RISK, "assessed_on": "2026-02-30"}
                ).status_code == 200
    bad_pnr = post_form(client, "/tracks/new", **{**INTAKE, "personnummer": "19850312-4517"})
    assert bad_pnr.status_code == 200
    assert "personnummer" in text(bad_pnr).lower()
    assert events(db, "journal.added") == []
    listing = client.get("/tracks/all?sort=password&status=x&page=-1")
    assert listing.status_code == 200
    assert "Rätta filtret" in text(listing)


def test_a_canary_typed_into_intake_and_journal_is_nowhere_in_plaintext(app, db, clock):
    canary = "Kanariefågel-web-9Z4K"
    client, _coordinator = logged_in(app, clock, "coordinator")
    track_id = open_by_intake(client, name=f"{canary}-name",
                              email="kanariefagel.web@example.com", phone="+46701740677")
    assert post(client, f"/tracks/{track_id}/journal",
                **{**JOURNAL, "note": f"{canary}-note", "participants": f"{canary}-p"}
                ).status_code == 302
    assert post(client, f"/tracks/{track_id}/risk",
                **{**RISK, "protective_factors": f"{canary}-factors"}).status_code == 302
    assert f"{canary}-note" in text(post(client, f"/tracks/{track_id}/content",
                                         purpose="casework"))
    stored = database_bytes(db)
    db.rollback()
    for needle in (canary, "kanariefagel.web", "701740677", PNR.replace("-", "")):
        assert needle.encode() not in stored, needle
        assert needle.encode() not in audit_bytes(app), needle


def test_break_glass_needs_step_up_and_a_reason_then_opens_the_content(app, db, clock):
    coordinator = make_user(app, role="coordinator")
    worker = make_user(app, role="support_worker")
    track_id = open_defector(db, coordinator, owner=worker).id
    client, member = logged_in(app, clock, "coordinator")
    url = f"/tracks/{track_id}/break-glass"
    clock.advance(minutes=10)  # the login is no longer recent (idle limit: 20)
    step_up = client.get(url)
    assert step_up.status_code == 302
    assert "/account/confirm" in step_up.location
    confirmed = post_form(client, "/account/confirm", f"/account/confirm?next={url}",
                          password=member.password)
    assert confirmed.status_code == 302
    too_short = post(client, url, reason="Akut")
    assert too_short.status_code == 200
    granted = post(client, url, reason="Polisen ringde om ett akut hot mot klienten.")
    assert granted.status_code == 302
    assert [o for o, _d in events(db, "track.break_glass")] == ["success"]
    shown = post(client, f"/tracks/{track_id}/content", purpose="emergency")
    assert "Anna Andersson" in text(shown)
    assert "nödåtkomst" in text(shown)
