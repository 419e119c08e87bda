"""The shared track-page helpers (avhopp.casework.views): a kind's own refusal texts beside the
shared ones, and goal input from either kind's goal form (the routes are tested per kind)."""

from __future__ import annotations

import datetime as dt

import pytest
from werkzeug.datastructures import MultiDict

from avhopp.cases import forms as case_forms
from avhopp.casework import forms as shared
from avhopp.casework.views import TrackPages, goal_input, optional
from avhopp.errors import DomainError


def pages() -> TrackPages:
    return TrackPages("cases", kind="defector", messages=lambda: {"own_code": "Eget meddelande."})


def test_a_track_page_must_be_registered_before_a_handler_renders_it():
    with pytest.raises(RuntimeError):
        pages().page(None)  # type: ignore[arg-type]


def test_the_registered_track_page_renders_with_the_posted_form():
    bound = pages()

    @bound.track_page
    def page(track_id, **parts):
        return track_id, parts

    assert bound.page("id", journal_form="posted") == ("id", {"journal_form": "posted"})


def test_error_messages_are_the_kinds_own_then_the_shared_then_a_general_one(app):
    bound = pages()
    with app.test_request_context():
        assert bound.error_message(DomainError("x", code="own_code")) == "Eget meddelande."
        assert bound.error_message(DomainError("x", code="note_required")) == "Skriv en anteckning."
        assert bound.error_message(
            DomainError("Ogiltigt personnummer.", code="invalid_personnummer")
        ) == "Ogiltigt personnummer."
        general = bound.error_message(DomainError("x", code="something_else"))
        assert general and general != "x"


def test_goal_input_reads_the_fields_each_kinds_form_has(app):
    posted = MultiDict({"life_domain": "housing", "goal": "Bostad", "target_on": "2026-12-01",
                        "status": "ongoing", "provider": "Kommunen", "sub_goal": ""})
    with app.test_request_context(method="POST"):
        relative = shared.GoalForm(formdata=posted, meta={"csrf": False})
        defector = case_forms.GoalForm(formdata=posted, meta={"csrf": False})
        assert relative.validate() and defector.validate()
        plain, full = goal_input(relative), goal_input(defector)
    assert plain.life_domain == full.life_domain == "housing"
    assert plain.target_on == full.target_on == dt.date(2026, 12, 1)
    assert plain.status == full.status == "ongoing"
    assert plain.provider is None  # the relative's form has no such field
    assert full.provider == "Kommunen"
    assert full.sub_goal is None  # blank is None
    assert optional(relative, "withheld") is None


def test_a_lazy_form_is_built_only_when_the_page_uses_it(app):
    from avhopp.casework.forms import RevokeConsentForm
    from avhopp.casework.views import lazy_forms

    built = []

    def build():
        built.append(1)
        return RevokeConsentForm(formdata=None)

    with app.test_request_context("/"):
        forms = lazy_forms(revoke_form=build)
        form = forms["revoke_form"]
        # Asking whether a form has errors does not build it: a fresh form has none.
        assert (form.errors, form.form_errors) == ({}, [])
        assert built == []
        assert "csrf_token" in str(form.csrf_token)
        assert [field.name for field in form] == [field.name for field in form]
        assert form["csrf_token"] is form.csrf_token
        assert built == [1]  # built once, then reused


def test_a_lazy_form_reports_the_errors_of_the_form_once_built(app):
    from avhopp.casework.forms import RevokeConsentForm
    from avhopp.casework.views import LazyForm

    with app.test_request_context("/", method="POST", data={}):
        form = LazyForm(RevokeConsentForm)
        assert form.validate() is False
        assert form.errors  # the built form's own errors, not the empty default
