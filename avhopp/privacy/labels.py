"""Swedish labels for the register extract: tables, fields and audit actions."""

from __future__ import annotations

from typing import Any

from avhopp.translation import lazy_gettext as _l

TABLE_LABELS: dict[str, Any] = {
    "person": _l("Person"),
    "track": _l("Tracks"),
    "defector_case": _l("Background, safe contact and closure"),
    "risk_assessment": _l("Risk assessments"),
    "protective_measure": _l("Protective measures"),
    "journal_entry": _l("Journal"),
    "plan_goal": _l("Action plan"),
    "consent": _l("Consents"),
    "agency_contact": _l("Contacts with authorities"),
    "break_glass_grant": _l("Emergency access to the track"),
    "team_member": _l("Team changes"),
    "erasure_request": _l("Erasure requests"),
}

FIELD_LABELS: dict[str, Any] = {
    "name": _l("Name"), "alias": _l("Alias"), "personnummer": _l("Personnummer"),
    "birth_year": _l("Birth year"), "phone": _l("Phone"), "email": _l("E-mail"),
    "address": _l("Address"), "protected_data_level": _l("Protected personal data"),
    "created_at": _l("Recorded"), "kind": _l("Kind"), "code": _l("Code"),
    "status": _l("Status"), "opened_at": _l("Opened"), "closed_at": _l("Closed"),
    "closure_reason": _l("Closure reason"), "retention_until": _l("Kept until"),
    "referral_source": _l("Referral source"), "municipality": _l("Municipality"),
    "access_level": _l("Access level"), "risk_level": _l("Risk level"),
    "next_contact_at": _l("Next contact"), "environment": _l("Environment"),
    "involvement": _l("Involvement"), "years_in_environment": _l("Years in the environment"),
    "arena": _l("Arena"), "reasons_for_leaving": _l("Reasons for leaving"),
    "voluntariness_confirmed_on": _l("Voluntariness confirmed"),
    "safe_contact_channel": _l("Safe contact channel"),
    "safe_contact_times": _l("Safe contact times"),
    "safe_contact_code_word": _l("Code word"),
    "safe_contact_may_leave_messages": _l("May leave messages"),
    "environment_knows_of_contact": _l("The environment knows of the contact"),
    "safety_plan": _l("Safety plan"), "closing_assessment": _l("Closing assessment"),
    "handed_over_to": _l("Handed over to"), "assessed_on": _l("Assessed on"),
    "overall_level": _l("Overall level"), "reassess_by": _l("Reassess by"),
    "protective_factors": _l("Protective factors"), "note": _l("Note"),
    "started_on": _l("Started"), "ended_on": _l("Ended"), "occurred_at": _l("Time"),
    "duration_minutes": _l("Duration (minutes)"), "contact_type": _l("Contact type"),
    "contact_achieved": _l("Contact achieved"), "sensitivity": _l("Sensitivity"),
    "participants": _l("Participants"), "life_domain": _l("Life domain"),
    "start_on": _l("Start"), "target_on": _l("Target date"), "agreed_on": _l("Agreed on"),
    "goal": _l("Goal"), "sub_goal": _l("Sub-goal"), "intervention": _l("Intervention"),
    "provider": _l("Provider"), "consent_type": _l("Consent type"),
    "recipient_agency": _l("Recipient authority"), "scope": _l("Data categories"),
    "form": _l("Form"), "recorded_at": _l("Recorded"), "valid_from": _l("Valid from"),
    "valid_to": _l("Valid to"), "revoked_at": _l("Revoked"), "recipient": _l("Recipient"),
    "purpose": _l("Purpose"), "withheld": _l("To be withheld from"), "agency": _l("Authority"),
    "categories": _l("Data categories shared"), "legal_basis": _l("Legal basis"),
    "unit": _l("Unit"), "contact_role": _l("Contact's role"), "outcome": _l("Outcome"),
    "granted_at": _l("Granted"), "expires_at": _l("Expires"), "reason": _l("Reason"),
    "added_at": _l("Added"), "named_user_ids": _l("Named readers"),
    "ground": _l("Ground"), "state": _l("State"), "requested_at": _l("Requested"),
    "approved_at": _l("Approved"), "execute_after": _l("To run after"),
    "executed_at": _l("Erased"), "keys_destroyed": _l("Keys destroyed"),
    "cancelled_at": _l("Cancelled"),
}

ACTION_LABELS: dict[str, Any] = {
    "track.opened": _l("The track was opened"),
    "track.content_read": _l("The information was read"),
    "track.status_changed": _l("The status was changed"),
    "track.reopened": _l("The track was reopened"),
    "track.team_added": _l("Someone was added to the team"),
    "track.team_removed": _l("Someone was removed from the team"),
    "track.owner_changed": _l("The owner was changed"),
    "track.break_glass": _l("Emergency access was used"),
    "journal.added": _l("A journal entry was written"),
    "plan.goal_added": _l("A goal was added to the plan"),
    "privacy.extract": _l("A register extract was made"),
    "erasure.requested": _l("Erasure was requested"),
}

ROLE_LABELS: dict[str, Any] = {
    "admin": _l("Administrator"), "coordinator": _l("Coordinator"),
    "support_worker": _l("Support worker"), "board": _l("Board"),
}


def field_label(name: str) -> Any:
    return FIELD_LABELS.get(name, name.replace("_", " "))


def table_label(name: str) -> Any:
    return TABLE_LABELS.get(name, name.replace("_", " "))


def action_label(action: str) -> Any:
    return ACTION_LABELS.get(action, action)
