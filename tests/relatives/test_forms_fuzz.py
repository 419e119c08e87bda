"""Property-based bad input over every relative-track form (SECURITY.md B3, B4, B8): whatever
is posted, the answer is never a 500 or a traceback, and a refused post stores nothing."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import func, select

from avhopp.casework.models import Consent, JournalEntry, PlanGoal, TeamMember, Track
from avhopp.relatives import forms
from avhopp.relatives.models import RelativeCase, TrackLink
from tests.cases.test_forms_fuzz import FUZZ, VALUE, assert_sane, field_names
from tests.conftest import csrf_token, login, make_user, post_form
from tests.relatives.test_views import INTAKE, RELATIVE_URL

TRACK_FORMS: list[tuple[str, type]] = [
    ("/content", forms.ContentForm),
    ("/case", forms.CaseForm),
    ("/journal", forms.JournalForm),
    ("/journal/correct", forms.CorrectionForm),
    ("/status", forms.StatusForm),
    ("/break-glass", forms.BreakGlassForm),
    ("/goals", forms.GoalForm),
    ("/goals/status", forms.GoalStatusForm),
    ("/consents", forms.ConsentForm),
    ("/consents/revoke", forms.RevokeConsentForm),
    ("/link", forms.LinkForm),
    ("/link/remove", forms.UnlinkForm),
    ("/team", forms.StaffForm),
    ("/team/remove", forms.RemoveMemberForm),
    ("/owner", forms.OwnerForm),
]
OTHER_FORMS: list[tuple[str, type]] = [
    ("/relatives/new", forms.IntakeForm),
    ("/relatives/search", forms.IdentifierSearchForm),
]
STORED = (Track, RelativeCase, TrackLink, JournalEntry, PlanGoal, Consent, TeamMember)


def stored_counts(db: Any) -> tuple[int, ...]:
    db.rollback()
    counts = tuple(db.scalar(select(func.count()).select_from(m)) for m in STORED)
    db.rollback()
    return counts


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

    @FUZZ
    @given(data=st.data())
    def post_anything(data: Any) -> None:
        url, names = data.draw(st.sampled_from(cases))
        values = {name: data.draw(VALUE, label=name) for name in names}
        before = stored_counts(db)
        response = client.post(url, data={"csrf_token": token, **values})
        assert_sane(response)
        if response.status_code != 302:
            assert stored_counts(db) == before, url

    post_anything()
