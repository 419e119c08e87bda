"""Property-based bad input over every track form (SECURITY.md B3, B4, B8): whatever is posted,
the answer is never a 500 or a traceback, and a refused post stores nothing."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from avhopp.cases import forms
from avhopp.cases.models import ProtectiveMeasure, RiskAssessment
from avhopp.casework import forms as shared
from avhopp.casework.models import (
    AgencyContact,
    Consent,
    JournalEntry,
    PlanGoal,
    TeamMember,
    Track,
)
from tests.cases.test_views import logged_in, open_by_intake
from tests.conftest import csrf_token

# (path after /tracks/<id>, form class); the intake and search forms post to their own paths.
TRACK_FORMS: list[tuple[str, type]] = [
    ("/content", shared.ContentForm),
    ("/journal", forms.JournalForm),
    ("/journal/correct", shared.CorrectionForm),
    ("/risk", forms.RiskForm),
    ("/status", forms.StatusForm),
    ("/break-glass", shared.BreakGlassForm),
    ("/goals", forms.GoalForm),
    ("/goals/status", shared.GoalStatusForm),
    ("/goals/edit", forms.GoalEditForm),
    ("/case", forms.CaseForm),
    ("/consents", forms.ConsentForm),
    ("/consents/revoke", shared.RevokeConsentForm),
    ("/agency-contacts", forms.AgencyContactForm),
    ("/measures", forms.MeasureForm),
    ("/measures/status", forms.MeasureStatusForm),
    ("/team", shared.StaffForm),
    ("/team/remove", shared.RemoveMemberForm),
    ("/owner", shared.OwnerForm),
]
OTHER_FORMS: list[tuple[str, type]] = [
    ("/tracks/new", forms.IntakeForm),
    ("/tracks/search", shared.IdentifierSearchForm),
]
STORED = (Track, JournalEntry, PlanGoal, Consent, AgencyContact, ProtectiveMeasure,
          RiskAssessment, TeamMember)

PAYLOADS = [
    "<script>alert(1)</script>", "\"><img src=x onerror=alert(1)>", "{{7*7}}", "{% print 1 %}",
    "' OR 1=1 --", "1; DROP TABLE person; --", "=HYPERLINK(\"http://x\")", "@SUM(1)",
    "\u202eevil", "e\u0301", "é", "\U0001f600", "9" * 40, "-1", "0", "2026-02-30",
    "2026-13-01T25:61", "0000-00-00", "19811218-9877", "x" * 20_000, "", " ",
    "00000000-0000-0000-0000-000000000000", "not-a-uuid", "true", "null",
]
VALUE = st.one_of(
    st.sampled_from(PAYLOADS),
    st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"),
            max_size=60),
)
FUZZ = settings(max_examples=150, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.function_scoped_fixture,
                                       HealthCheck.too_slow])


def field_names(app: Any, form_class: type) -> list[str]:
    with app.test_request_context():
        form = form_class(formdata=None, meta={"csrf": False})
        return [field.name for field in form]


def stored_counts(db: Any, models: tuple[type, ...] = STORED) -> tuple[int, ...]:
    db.rollback()  # a fresh snapshot; also ends the read so SQLite's write lock is free
    counts = tuple(db.scalar(select(func.count()).select_from(m)) for m in models)
    db.rollback()
    return counts


def assert_sane(response: Any) -> None:
    assert response.status_code < 500, response.status_code
    body = response.get_data(as_text=True)
    assert "Traceback" not in body and 'File "' not in body
    assert "<script>alert(1)</script>" not in body  # escaped wherever it is shown


def test_every_track_form_survives_arbitrary_input(app, db, clock):
    client, _coordinator = logged_in(app, clock, "coordinator")
    track_id = open_by_intake(client)
    token = csrf_token(client, "/tracks/mine")
    cases = [(f"/tracks/{track_id}{path}", field_names(app, form)) for path, form in TRACK_FORMS]
    cases += [(path, field_names(app, form)) for path, form in OTHER_FORMS]

    post_anything(client, token, cases, lambda: stored_counts(db))


def post_anything(client: Any, token: str, cases: list[tuple[str, list[str]]],
                  counts: Any) -> None:
    """Posts drawn values to drawn forms (each a url and its field names); `counts` tells what
    is stored."""

    @FUZZ
    @given(data=st.data())
    def post(data: Any) -> None:
        url, names = data.draw(st.sampled_from(cases))
        values = {name: data.draw(VALUE, label=name) for name in names}
        before = counts()
        response = client.post(url, data={"csrf_token": token, **values})
        assert_sane(response)
        if response.status_code != 302:
            # Only a success redirects; a refused or re-rendered post leaves nothing behind,
            # not even half a record.
            assert counts() == before, url

    post()
