"""Property-based bad input over every relative-track form (SECURITY.md B3, B4, B8): whatever
is posted, the answer is never a 500 or a traceback, and a refused post stores nothing."""

from __future__ import annotations

from avhopp.casework import forms as shared
from avhopp.casework.models import Consent, JournalEntry, PlanGoal, TeamMember, Track
from avhopp.relatives import forms
from avhopp.relatives.models import RelativeCase, TrackLink
from tests.cases.test_forms_fuzz import field_names, post_anything, stored_counts
from tests.conftest import csrf_token, login, make_user, post_form
from tests.relatives.test_views import INTAKE, RELATIVE_URL

TRACK_FORMS: list[tuple[str, type]] = [
    ("/content", shared.ContentForm),
    ("/case", forms.CaseForm),
    ("/journal", shared.JournalForm),
    ("/journal/correct", shared.CorrectionForm),
    ("/status", forms.StatusForm),
    ("/break-glass", shared.BreakGlassForm),
    ("/goals", shared.GoalForm),
    ("/goals/status", shared.GoalStatusForm),
    ("/consents", shared.ConsentForm),
    ("/consents/revoke", shared.RevokeConsentForm),
    ("/link", forms.LinkForm),
    ("/link/remove", forms.UnlinkForm),
    ("/team", shared.StaffForm),
    ("/team/remove", shared.RemoveMemberForm),
    ("/owner", shared.OwnerForm),
]
OTHER_FORMS: list[tuple[str, type]] = [
    ("/relatives/new", forms.IntakeForm),
    ("/relatives/search", shared.IdentifierSearchForm),
]
STORED = (Track, RelativeCase, TrackLink, JournalEntry, PlanGoal, Consent, TeamMember)


def test_every_relative_form_survives_arbitrary_input(app, db, clock):
    coordinator = make_user(app, role="coordinator")
    client = app.test_client()
    login(client, coordinator, clock)
    opened = post_form(client, "/relatives/new", **INTAKE)
    track_id = RELATIVE_URL.search(opened.location).group(1)
    token = csrf_token(client, "/relatives/mine")
    cases = [(f"/relatives/{track_id}{path}", field_names(app, form))
             for path, form in TRACK_FORMS]
    cases += [(path, field_names(app, form)) for path, form in OTHER_FORMS]

    post_anything(client, token, cases, lambda: stored_counts(db, STORED))
