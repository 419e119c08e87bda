"""The sections of the track page over HTTP, on both engines: plan goals (with optimistic
locking), consents, agency contacts (refused without a valid consent), protective measures and
the team. Each form's success is audited; another team's support worker is refused and each
refusal is audited."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import select

from avhopp.cases.models import ProtectiveMeasure
from avhopp.casework.models import AgencyContact, Consent, PlanGoal, TeamMember, Track
from tests.cases.test_views import logged_in, open_by_intake, post, text
from tests.casework.helpers import events, open_defector
from tests.conftest import csrf_token, make_user

GOAL = {"life_domain": "housing", "goal": "Eget förstahandskontrakt.",
        "target_on": "2027-03-01", "status": "not_started"}
SHARING = {"consent_type": "sharing", "form": "written", "valid_from": "2026-11-01",
           "valid_to": "", "recipient_agency": "social_services",
           "recipient": "Socialtjänsten vuxenenheten"}
CONTACT = {"occurred_at": "2026-11-02T08:00", "agency": "social_services", "unit": "",
           "legal_basis": "consent", "consent_id": "", "purpose": ""}
MEASURE = {"kind": "new_phone_number", "status": "planned", "started_on": "", "ended_on": "",
           "note": "Kontantkort."}


def post_multi(client: Any, url: str, data: dict[str, Any], **lists: list[str]) -> Any:
    """A POST with repeated fields (checkboxes)."""
    token = csrf_token(client, "/tracks/mine")
    return client.post(url, data={"csrf_token": token, **data, **lists})


def one(db: Any, model: type, track_id: uuid.UUID) -> Any:
    db.expire_all()
    return db.scalars(select(model).where(model.track_id == track_id)).one()


def test_plan_goals_are_shown_added_and_updated_under_optimistic_locking(app, db, clock):
    client, _coordinator = logged_in(app, clock, "coordinator")
    track_id = open_by_intake(client)
    shown = post(client, f"/tracks/{track_id}/content", purpose="planning")
    assert "Handlingsplan" in text(shown)
    assert "Nytt mål i planen" in text(shown)

    added = post(client, f"/tracks/{track_id}/goals", **GOAL)
    assert added.status_code == 302
    assert [d["life_domain"] for o, d in events(db, "plan.goal_added") if o == "success"] == [
        "housing"]
    goal = one(db, PlanGoal, track_id)
    goal_id, version = goal.id, goal.version
    db.rollback()
    assert "Eget förstahandskontrakt." in text(
        post(client, f"/tracks/{track_id}/content", purpose="planning"))

    changed = post(client, f"/tracks/{track_id}/goals/status", goal_id=str(goal_id),
                   status="ongoing", version=str(version))
    assert changed.status_code == 302
    updated = events(db, "plan.goal_updated")
    assert [(o, d.get("fields")) for o, d in updated] == [("success", "status")]

    stale = post(client, f"/tracks/{track_id}/goals/status", goal_id=str(goal_id),
                 status="stopped", version=str(version))
    assert stale.status_code == 200
    assert "Någon annan har ändrat målet under tiden: inget sparades." in text(stale)
    assert events(db, "plan.goal_updated")[-1] == (
        "denied", {"goal_id": str(goal_id), "reason": "stale_version"})
    assert one(db, PlanGoal, track_id).status == "ongoing"  # nothing overwritten
    db.rollback()

    missing = post(client, f"/tracks/{track_id}/goals", **{**GOAL, "goal": ""})
    assert missing.status_code == 200
    assert "Nytt mål i planen" in text(missing)  # the form and its error are shown again


def test_consents_are_added_with_a_scope_and_revoked(app, db, clock):
    client, _coordinator = logged_in(app, clock, "coordinator")
    track_id = open_by_intake(client)
    added = post_multi(client, f"/tracks/{track_id}/consents", SHARING,
                       scope=["identity", "planned_interventions"])
    assert added.status_code == 302
    assert [d for o, d in events(db, "consent.added")][-1]["recipient_agency"] == (
        "social_services")
    db.expire_all()
    consent = db.scalars(select(Consent).where(Consent.track_id == track_id,
                                               Consent.consent_type == "sharing")).one()
    consent_id = consent.id
    assert sorted(consent.scope) == ["identity", "planned_interventions"]
    db.rollback()
    page = text(post(client, f"/tracks/{track_id}/content", purpose="casework"))
    assert "Samtycken" in page and "Utlämnande till en myndighet" in page
    assert "Planerade insatser" in page

    ends_early = post(client, f"/tracks/{track_id}/consents",
                      **{**SHARING, "valid_to": "2026-10-01"})
    assert "Samtycket kan inte upphöra innan det börjar gälla." in text(ends_early)

    revoked = post(client, f"/tracks/{track_id}/consents/revoke", consent_id=str(consent_id))
    assert revoked.status_code == 302
    assert [d["consent_id"] for o, d in events(db, "consent.revoked")] == [str(consent_id)]
    again = post(client, f"/tracks/{track_id}/consents/revoke", consent_id=str(consent_id))
    assert again.status_code == 200
    assert "Samtycket är redan återkallat." in text(again)


def test_an_agency_contact_needs_a_valid_consent_or_another_legal_basis(app, db, clock):
    client, _coordinator = logged_in(app, clock, "coordinator")
    track_id = open_by_intake(client)

    refused = post_multi(client, f"/tracks/{track_id}/agency-contacts", CONTACT,
                         categories=["identity"])
    assert refused.status_code == 200
    assert "Kontakten kräver ett samtycke till utlämnande" in text(refused)
    assert [(o, d["rule"]) for o, d in events(db, "agency.contact_added")] == [
        ("denied", "no_consent")]

    assert post_multi(client, f"/tracks/{track_id}/consents", SHARING,
                      scope=["identity"]).status_code == 302
    db.expire_all()
    consent_id = db.scalars(
        select(Consent.id).where(Consent.track_id == track_id,
                                 Consent.consent_type == "sharing")).one()
    db.rollback()
    shown = text(post(client, f"/tracks/{track_id}/content", purpose="casework"))
    assert f'value="{consent_id}"' in shown  # the consent is offered in the select

    outside = post_multi(client, f"/tracks/{track_id}/agency-contacts",
                         {**CONTACT, "consent_id": str(consent_id)}, categories=["health"])
    assert "Kontakten kräver ett samtycke" in text(outside)
    saved = post_multi(client, f"/tracks/{track_id}/agency-contacts",
                       {**CONTACT, "consent_id": str(consent_id)}, categories=["identity"])
    assert saved.status_code == 302

    obligation = post_multi(client, f"/tracks/{track_id}/agency-contacts",
                            {**CONTACT, "agency": "police", "legal_basis": "legal_obligation"},
                            categories=["risk_threat"])
    assert obligation.status_code == 302
    flagged = client.get(obligation.location)
    assert "Registrerad utan samtycke" in text(flagged)
    outcomes = [(o, d.get("legal_basis"), d.get("rule"))
                for o, d in events(db, "agency.contact_added")]
    assert outcomes == [("denied", "consent", "no_consent"),
                        ("denied", "consent", "outside_scope"),
                        ("success", "consent", None), ("success", "legal_obligation", None)]
    db.expire_all()
    assert len(db.scalars(select(AgencyContact).where(
        AgencyContact.track_id == track_id)).all()) == 2
    db.rollback()
    page = text(post(client, f"/tracks/{track_id}/content", purpose="casework"))
    assert "Myndighetskontakter" in page and "utan samtycke" in page

    no_categories = post(client, f"/tracks/{track_id}/agency-contacts", **CONTACT)
    assert no_categories.status_code == 200
    assert "Välj vilka uppgiftskategorier som lämnas ut." in text(no_categories)


def test_protective_measures_are_added_and_their_status_changed(app, db, clock):
    client, _coordinator = logged_in(app, clock, "coordinator")
    track_id = open_by_intake(client)
    added = post(client, f"/tracks/{track_id}/measures", **MEASURE)
    assert added.status_code == 302
    assert [d["kind"] for o, d in events(db, "protection.measure_added")] == [
        "new_phone_number"]
    measure = one(db, ProtectiveMeasure, track_id)
    measure_id, version = measure.id, measure.version
    db.rollback()
    page = text(post(client, f"/tracks/{track_id}/content", purpose="casework"))
    assert "Skyddsåtgärder" in page and "Nytt telefonnummer" in page

    changed = post(client, f"/tracks/{track_id}/measures/status", measure_id=str(measure_id),
                   status="done", version=str(version))
    assert changed.status_code == 302
    stale = post(client, f"/tracks/{track_id}/measures/status", measure_id=str(measure_id),
                 status="refused", version=str(version))
    assert stale.status_code == 200
    assert "Någon annan har ändrat åtgärden under tiden" in text(stale)
    assert [(o, d.get("fields"), d.get("reason"))
            for o, d in events(db, "protection.measure_updated")] == [
        ("success", "status", None), ("denied", None, "stale_version")]
    assert one(db, ProtectiveMeasure, track_id).status == "done"
    db.rollback()
    backwards = post(client, f"/tracks/{track_id}/measures",
                     **{**MEASURE, "started_on": "2026-11-02", "ended_on": "2026-11-01"})
    assert "Åtgärden kan inte avslutas innan den påbörjats." in text(backwards)


def test_a_coordinator_manages_the_team_from_active_workers(app, db, clock):
    client, coordinator = logged_in(app, clock, "coordinator")
    worker = make_user(app, role="support_worker")
    second = make_user(app, role="support_worker")
    board = make_user(app, role="board")
    track_id = open_by_intake(client)
    page = text(client.get(f"/tracks/{track_id}"))
    assert worker.username in page and second.username in page
    assert board.username not in page  # only coordinators and support workers are offered

    assert post(client, f"/tracks/{track_id}/team", user_id=str(worker.id)).status_code == 302
    assert [d["user_id"] for o, d in events(db, "track.team_added")] == [str(worker.id)]
    again = post(client, f"/tracks/{track_id}/team", user_id=str(worker.id))
    assert "Den medarbetaren finns redan i teamet." in text(again)
    not_offered = post(client, f"/tracks/{track_id}/team", user_id=str(board.id))
    assert not_offered.status_code == 200
    assert [o for o, _d in events(db, "track.team_added")] == ["success"]

    owner = post(client, f"/tracks/{track_id}/owner", owner_id=str(second.id))
    assert owner.status_code == 302
    assert [d["user_id"] for o, d in events(db, "track.owner_changed")] == [str(second.id)]
    db.expire_all()
    assert db.get(Track, track_id).owner_id == second.id
    db.rollback()
    keep_owner = post(client, f"/tracks/{track_id}/team/remove", user_id=str(second.id))
    assert "Den ansvariga är kvar i teamet" in text(keep_owner)

    removed = post(client, f"/tracks/{track_id}/team/remove", user_id=str(worker.id))
    assert removed.status_code == 302
    assert [d["user_id"] for o, d in events(db, "track.team_removed")] == [str(worker.id)]
    db.expire_all()
    members = set(db.scalars(select(TeamMember.user_id).where(TeamMember.track_id == track_id)))
    db.rollback()
    assert members == {coordinator.id}  # the previous owner stays on the team


def test_another_teams_support_worker_is_refused_on_every_section_route(app, db, clock):
    coordinator = make_user(app, role="coordinator")
    worker = make_user(app, role="support_worker")
    track = open_defector(db, coordinator, owner=worker)
    track_id = track.id
    client, outsider = logged_in(app, clock, "support_worker")
    some_id = str(uuid.uuid4())
    work_routes = {
        "goals": GOAL,
        "goals/status": {"goal_id": some_id, "status": "ongoing", "version": "1"},
        "consents": {**SHARING, "scope": "identity"},
        "consents/revoke": {"consent_id": some_id},
        "agency-contacts": {**CONTACT, "categories": "identity",
                            "legal_basis": "legal_obligation"},
        "measures": MEASURE,
        "measures/status": {"measure_id": some_id, "status": "done", "version": "1"},
    }
    before = len(events(db, "track.access_denied"))
    for route, data in work_routes.items():
        response = post(client, f"/tracks/{track_id}/{route}", **data)
        assert response.status_code == 404, route
        assert "Anna Andersson" not in text(response)
    denied = events(db, "track.access_denied")[before:]
    assert [(o, d["need"]) for o, d in denied] == [("denied", "work")] * len(work_routes)

    assign_routes = {"team": {"user_id": str(outsider.id)},
                     "team/remove": {"user_id": str(worker.id)},
                     "owner": {"owner_id": str(outsider.id)}}
    before = len(events(db, "security.access_denied"))
    for route, data in assign_routes.items():
        assert post(client, f"/tracks/{track_id}/{route}", **data).status_code == 403, route
    gate = events(db, "security.access_denied")[before:]
    assert [(o, d.get("permission")) for o, d in gate] == [
        ("denied", "tracks.assign")] * len(assign_routes)

    for action in ("plan.goal_added", "plan.goal_updated", "consent.added", "consent.revoked",
                   "protection.measure_added", "protection.measure_updated",
                   "track.team_added", "track.team_removed", "track.owner_changed"):
        assert events(db, action) == [], action
    assert [o for o, _d in events(db, "agency.contact_added")] == []
