"""Editing the defector case over HTTP, on both engines: background (only with a
special-category consent), safe contact and safety plan under optimistic locking; every field
of a goal; consent purpose and what is withheld; agency contact role and outcome; journal
entries for named team members; closing at the version seen. Another team is refused."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import func, select

from avhopp.cases.models import DefectorCase
from avhopp.casework import services as casework
from avhopp.casework.models import AgencyContact, Consent, JournalEntry, PlanGoal, Track
from tests.cases.test_views import INTAKE, logged_in, open_by_intake, post, text
from tests.cases.test_views_sections import GOAL, one, post_multi
from tests.casework.helpers import NOW, events, open_defector
from tests.conftest import csrf_token, make_user, post_form

BACKGROUND = {"part": "background", "environment": "autonomous_left", "involvement": "active",
              "years_in_environment": "3", "arena": "online",
              "reasons_for_leaving": "Vill plugga.", "voluntariness_confirmed_on": "2026-11-01"}
SAFE = {"part": "safe_contact", "safe_contact_channel": "Signal", "safe_contact_times": "Kvällar",
        "safe_contact_code_word": "Blåklocka", "safe_contact_may_leave_messages": "no",
        "environment_knows_of_contact": "unknown"}


def case_version(db: Any, track_id: uuid.UUID) -> str:
    db.expire_all()
    version = db.get(DefectorCase, track_id).version
    db.rollback()
    return str(version)


def test_background_needs_a_special_category_consent_at_intake(app, db, clock):
    client, _coordinator = logged_in(app, clock, "coordinator")
    refused = post_form(client, "/tracks/new", **{**INTAKE, "special_consent_given": ""})
    assert refused.status_code == 200
    assert "känsliga personuppgifter" in text(refused)
    assert db.scalar(select(func.count()).select_from(Track)) == 0
    db.rollback()
    # Without environment and involvement no such consent is needed.
    open_by_intake(client, special_consent_given="", environment="", involvement="")


def test_background_edit_is_refused_without_the_consent_and_saved_with_it(app, db, clock):
    client, _coordinator = logged_in(app, clock, "coordinator")
    track_id = open_by_intake(client, special_consent_given="", environment="", involvement="")
    refused = post(client, f"/tracks/{track_id}/case", version=case_version(db, track_id),
                   **BACKGROUND)
    assert refused.status_code == 200
    assert "samtycke" in text(refused)
    assert "Vill plugga." in text(refused)  # what was typed is kept
    assert events(db, "case.updated")[-1] == (
        "denied", {"reason": "consent_required"})

    consent = post(client, f"/tracks/{track_id}/consents", consent_type="special_category",
                   form="written", valid_from="2026-11-01", valid_to="", recipient_agency="",
                   recipient="", purpose="", withheld="")
    assert consent.status_code == 302
    saved = post(client, f"/tracks/{track_id}/case", version=case_version(db, track_id),
                 **BACKGROUND)
    assert saved.status_code == 302
    db.expire_all()
    case = db.get(DefectorCase, track_id)
    assert (case.environment, case.years_in_environment, case.arena) == (
        "autonomous_left", 3, "online")
    db.rollback()
    shown = text(post(client, f"/tracks/{track_id}/content", purpose="casework"))
    assert "Vill plugga." in shown and "Redigera bakgrunden" in shown


def test_safe_contact_and_safety_plan_are_edited_at_the_version_seen(app, db, clock):
    client, _coordinator = logged_in(app, clock, "coordinator")
    track_id = open_by_intake(client)
    version = case_version(db, track_id)
    assert post(client, f"/tracks/{track_id}/case", version=version, **SAFE).status_code == 302
    stale = post(client, f"/tracks/{track_id}/case", version=version, part="safety_plan",
                 safety_plan="Byt nummer.")
    assert stale.status_code == 200
    assert "Någon annan har ändrat ärendet under tiden" in text(stale)
    assert "Byt nummer." in text(stale)
    saved = post(client, f"/tracks/{track_id}/case", version=case_version(db, track_id),
                 part="safety_plan", safety_plan="Byt nummer.")
    assert saved.status_code == 302
    shown = text(post(client, f"/tracks/{track_id}/content", purpose="casework"))
    assert "Blåklocka" in shown and "Byt nummer." in shown
    assert [o for o, _ in events(db, "case.updated")][-3:] == ["success", "denied", "success"]


def test_an_unknown_case_part_is_refused_with_a_message(app, db, clock):
    client, _coordinator = logged_in(app, clock, "coordinator")
    track_id = open_by_intake(client)
    before = events(db, "case.updated")  # the intake's background
    response = post(client, f"/tracks/{track_id}/case", version="1", part="person_id")
    assert response.status_code == 400
    assert "Formuläret kunde inte läsas" in text(response)
    assert events(db, "case.updated") == before


def outsider_and_track(app: Any, db: Any, clock: Any) -> tuple[Any, uuid.UUID]:
    """A support worker logged in, and a track of another worker's team."""
    coordinator = make_user(app, role="coordinator")
    worker = make_user(app, role="support_worker")
    track_id = open_defector(db, coordinator, owner=worker).id
    client, _outsider = logged_in(app, clock, "support_worker")
    return client, track_id


def test_an_unknown_case_part_on_another_teams_track_is_refused_and_recorded(app, db, clock):
    client, track_id = outsider_and_track(app, db, clock)
    before = len(events(db, "track.access_denied"))
    for part in ("person_id", ""):
        response = post(client, f"/tracks/{track_id}/case", version="1", part=part)
        assert response.status_code == 404
        assert "Anna Andersson" not in text(response)
    assert len(events(db, "track.access_denied")) == before + 2
    assert [o for o, _ in events(db, "case.updated")] == []


def test_every_field_of_a_goal_can_be_added_and_edited(app, db, clock):
    client, _coordinator = logged_in(app, clock, "coordinator")
    track_id = open_by_intake(client)
    added = post(client, f"/tracks/{track_id}/goals", **{
        **GOAL, "sub_goal": "Söka via kommunen.", "intervention": "Boendestöd",
        "provider": "Socialtjänsten", "start_on": "2026-11-01", "agreed_on": "2026-11-02"})
    assert added.status_code == 302
    goal = one(db, PlanGoal, track_id)
    assert (goal.sub_goal, goal.provider, goal.agreed_on.isoformat()) == (
        "Söka via kommunen.", "Socialtjänsten", "2026-11-02")
    goal_id, version = goal.id, goal.version
    db.rollback()
    edit = {"goal_id": str(goal_id), "version": str(version), "life_domain": "education",
            "goal": "Avsluta gymnasiet.", "sub_goal": "", "intervention": "Studievägledning",
            "provider": "", "start_on": "", "target_on": "2027-06-01", "agreed_on": "",
            "status": "ongoing"}
    assert post(client, f"/tracks/{track_id}/goals/edit", **edit).status_code == 302
    goal = one(db, PlanGoal, track_id)
    assert (goal.life_domain, goal.goal, goal.sub_goal, goal.status) == (
        "education", "Avsluta gymnasiet.", None, "ongoing")
    db.rollback()
    stale = post(client, f"/tracks/{track_id}/goals/edit", **{**edit, "goal": "Annat."})
    assert stale.status_code == 200
    assert "Någon annan har ändrat målet under tiden" in text(stale)
    assert "Annat." in text(stale)
    bad_dates = post(client, f"/tracks/{track_id}/goals/edit", **{
        **edit, "version": str(version + 1), "start_on": "2027-07-01"})
    assert "Måldatumet kan inte" in text(bad_dates)


def test_consent_purpose_and_withheld_and_agency_role_and_outcome_are_stored(app, db, clock):
    client, _coordinator = logged_in(app, clock, "coordinator")
    track_id = open_by_intake(client)
    recorded = post_multi(client, f"/tracks/{track_id}/consents", {
        "consent_type": "sharing", "form": "written", "valid_from": "2026-11-01",
        "valid_to": "", "recipient_agency": "police", "recipient": "Polisen Nord",
        "purpose": "Hotbild", "withheld": "Inget till modern."}, scope=["identity"])
    assert recorded.status_code == 302
    consent = db.scalars(select(Consent).where(Consent.consent_type == "sharing")).one()
    assert (consent.purpose, consent.withheld) == ("Hotbild", "Inget till modern.")
    consent_id = consent.id
    db.rollback()
    contact = post_multi(client, f"/tracks/{track_id}/agency-contacts", {
        "occurred_at": "2026-11-02T08:00", "agency": "police", "unit": "",
        "contact_role": "Kontaktpolis", "legal_basis": "consent",
        "consent_id": str(consent_id), "purpose": "Samråd", "outcome": "Ny bedömning."},
        categories=["identity"])
    assert contact.status_code == 302
    row = one(db, AgencyContact, track_id)
    assert (row.contact_role, row.outcome) == ("Kontaktpolis", "Ny bedömning.")
    db.rollback()
    shown = text(post(client, f"/tracks/{track_id}/content", purpose="casework"))
    for value in ("Inget till modern.", "Kontaktpolis", "Ny bedömning."):
        assert value in shown


def test_a_journal_entry_for_named_users_offers_only_the_team(app, db, clock):
    coordinator = make_user(app, role="coordinator")
    mate = make_user(app, role="support_worker")
    stranger = make_user(app, role="support_worker")
    client, worker = logged_in(app, clock, "support_worker")
    track = open_defector(db, coordinator, owner=worker)
    track_id = track.id
    casework.add_team_member(db, actor=coordinator, track_id=track_id, user_id=mate.id, now=NOW)
    db.commit()
    page = text(client.get(f"/tracks/{track_id}"))
    assert mate.username in page and stranger.username not in page
    entry = {"occurred_at": "2026-11-02T09:00", "contact_type": "phone",
             "contact_achieved": "y", "duration_minutes": "", "participants": "",
             "note": "Bara för oss två.", "sensitivity": "named"}
    none_named = post(client, f"/tracks/{track_id}/journal", **entry)
    assert none_named.status_code == 200
    assert "Ange vilka i teamet" in text(none_named)
    outsider = post_multi(client, f"/tracks/{track_id}/journal", entry,
                          named_user_ids=[str(stranger.id)])
    assert "Bara medlemmar i ärendets team" in text(outsider)
    assert post_multi(client, f"/tracks/{track_id}/journal", entry,
                      named_user_ids=[str(mate.id)]).status_code == 302
    saved = one(db, JournalEntry, track_id)
    assert (saved.sensitivity, saved.named_user_ids) == ("named", [str(mate.id)])
    db.rollback()


def test_closing_at_a_stale_version_is_refused_and_changes_nothing(app, db, clock):
    client, _coordinator = logged_in(app, clock, "coordinator")
    track_id = open_by_intake(client)
    post(client, f"/tracks/{track_id}/risk", assessed_on="2026-11-02",
         threat_from_environment="low", violence_to_others="low", re_engagement="low",
         self_harm="low", threat_to_relatives="low", overall_level="", protective_factors="",
         reassess_by="")  # moves the track's version on
    stale = post(client, f"/tracks/{track_id}/status", to_status="closed",
                 closure_reason="goal_reached", closing_assessment="Klar.", version="1")
    assert stale.status_code == 200
    assert "Någon annan har ändrat ärendet" in text(stale)
    db.expire_all()
    assert db.get(Track, track_id).status == "intake"
    assert db.get(DefectorCase, track_id).closing_assessment is None
    db.rollback()
    assert events(db, "track.status_changed")[-1] == (
        "denied", {"from_status": "intake", "to_status": "closed"})


def test_another_teams_worker_is_refused_on_the_new_routes(app, db, clock):
    client, track_id = outsider_and_track(app, db, clock)
    before = len(events(db, "track.access_denied"))
    routes = {
        "case": {"version": "1", **SAFE},
        "goals/edit": {"goal_id": str(uuid.uuid4()), "version": "1", **GOAL},
    }
    for route, data in routes.items():
        response = post(client, f"/tracks/{track_id}/{route}", **data)
        assert response.status_code == 404, route
        assert "Anna Andersson" not in text(response)
    denied = events(db, "track.access_denied")[before:]
    assert [(o, d["need"]) for o, d in denied] == [("denied", "work")] * len(routes)
    assert [o for o, _ in events(db, "case.updated")] == []
    assert events(db, "plan.goal_updated") == []


def test_person_details_are_edited_encrypted_and_shown_on_request(app, db, clock):
    client, _coordinator = logged_in(app, clock, "coordinator")
    track_id = open_by_intake(client)
    saved = post(client, f"/tracks/{track_id}/case", version=case_version(db, track_id),
                 part="person_details", gender="woman", language="Arabiska",
                 interpreter_needed="yes", children_in_household="no")
    assert saved.status_code == 302
    assert events(db, "case.updated")[-1] == (
        "success", {"fields": "children_in_household,gender,interpreter_needed,language"})
    raw = db.execute(select(DefectorCase.__table__.c.language_enc)).scalar_one()
    assert b"Arabiska" not in bytes(raw)
    db.rollback()
    shown = text(post(client, f"/tracks/{track_id}/content", purpose="casework"))
    assert "Arabiska" in shown and "Kvinna" in shown
    bad = post(client, f"/tracks/{track_id}/case", version=case_version(db, track_id),
               part="person_details", gender="robot", language="", interpreter_needed="",
               children_in_household="")
    assert bad.status_code == 200
    assert "Inte sparat" in text(bad)


def test_the_board_sees_disclosures_on_a_legal_basis_flagged(app, db, clock):
    client, _coordinator = logged_in(app, clock, "coordinator")
    track_id = open_by_intake(client)
    post_multi(client, f"/tracks/{track_id}/consents", {
        "consent_type": "sharing", "form": "written", "valid_from": "2026-11-01",
        "valid_to": "", "recipient_agency": "police", "recipient": "", "purpose": "",
        "withheld": ""}, scope=["identity"])
    consent_id = db.scalars(select(Consent.id).where(Consent.consent_type == "sharing")).one()
    db.rollback()
    contact = {"occurred_at": "2026-11-02T08:00", "agency": "police", "unit": "",
               "contact_role": "", "purpose": "", "outcome": ""}
    on_consent = post_multi(client, f"/tracks/{track_id}/agency-contacts", {
        **contact, "legal_basis": "consent", "consent_id": str(consent_id)},
        categories=["identity"])
    on_law = post_multi(client, f"/tracks/{track_id}/agency-contacts", {
        **contact, "legal_basis": "vital_interest", "consent_id": ""},
        categories=["identity", "risk_threat"])
    assert (on_consent.status_code, on_law.status_code) == (302, 302)

    board, _member = logged_in(app, clock, "board")
    flagged = text(board.get("/audit/?flag=legal_basis"))
    row = '<span class="code">agency.contact_added</span>'
    assert flagged.count(row) == 1
    assert "legal_basis=vital_interest" in flagged
    assert "Utlämnande utan samtycke" in flagged
    every = text(board.get("/audit/?action=agency.contact_added"))
    assert every.count(row) == 2
    assert every.count('class="flag flag-legal_basis"') == 1


def test_board_and_admin_are_refused_on_the_new_routes(app, db, clock):
    coordinator = make_user(app, role="coordinator")
    track_id = open_defector(db, coordinator).id
    for role in ("board", "admin"):
        client, _member = logged_in(app, clock, role)
        before = len(events(db, "security.access_denied"))
        token = csrf_token(client, "/account")
        for route, data in (("case", {"version": "1", **SAFE}),
                            ("goals/edit", {"goal_id": str(uuid.uuid4()), "version": "1",
                                            **GOAL})):
            response = client.post(f"/tracks/{track_id}/{route}",
                                   data={"csrf_token": token, **data})
            assert response.status_code == 403, (role, route)
            assert "Anna Andersson" not in text(response)
        gate = events(db, "security.access_denied")[before:]
        assert [(o, d.get("permission")) for o, d in gate] == [("denied", "tracks.work")] * 2
    assert events(db, "case.updated") == []
