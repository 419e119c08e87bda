"""The fast html_params renders exactly what WTForms' own does, and the app uses it."""

from __future__ import annotations

from typing import Any

import wtforms.widgets
from flask_babel import lazy_gettext
from hypothesis import given
from hypothesis import strategies as st
from markupsafe import Markup
from wtforms.widgets import core

from avhopp import widgets

KEYS = st.text(alphabet="abc_-<>&\"'x:", min_size=1, max_size=12)
VALUES = st.one_of(
    st.booleans(),
    st.none(),
    st.integers(),
    st.text(max_size=30),
    st.text(alphabet="<>&\"' a", max_size=10).map(Markup),
)


@given(st.dictionaries(KEYS, VALUES, max_size=6))
def test_fast_html_params_is_byte_identical_to_wtforms(params: dict[str, Any]) -> None:
    expected = widgets.ORIGINAL(**params)
    got = widgets.html_params(**params)
    assert got == expected
    assert isinstance(got, Markup)


def test_reserved_words_data_and_aria_keys_are_cleaned_alike() -> None:
    params = {"class_": "a b", "for_": "x", "data_user_name": "n", "aria_described_by": "h"}
    assert widgets.html_params(**params) == widgets.ORIGINAL(**params)


def test_lazy_translated_values_render_alike(app: Any) -> None:
    with app.test_request_context("/"):
        label = lazy_gettext("Save")
        assert widgets.html_params(value=label) == widgets.ORIGINAL(value=label)


def test_the_app_renders_wtforms_widgets_with_the_fast_function(app: Any) -> None:
    assert core.html_params is widgets.html_params
    assert wtforms.widgets.html_params is widgets.html_params
    assert core.Input.html_params is widgets.html_params
    assert core.Button.html_params is widgets.html_params


def test_select_fields_render_alike_and_inspect_render_option_once_per_class(
        app: Any, monkeypatch: Any) -> None:
    from flask_wtf import FlaskForm
    from wtforms import SelectField, SelectMultipleField
    from wtforms.fields.choices import SelectChoice

    class Form(FlaskForm):
        class Meta:
            csrf = False

        one = SelectField(choices=[SelectChoice("a", "A <b>"),
                                   SelectChoice("b", lazy_gettext("Save"))], default="b")
        many = SelectMultipleField(choices=[SelectChoice("x", "X"), SelectChoice("y", "Y & Z")],
                                   default=["x", "y"])

    inspections: list[Any] = []
    original = core.get_signature
    monkeypatch.setattr(core, "get_signature", lambda f: inspections.append(f) or original(f))
    with app.test_request_context("/"):
        form = Form()
        fast = [str(form.one()), str(form.many()), str(form.one())]
        widgets._dispatch_by_class.clear()
        monkeypatch.setattr(core.Select, "_dispatch_render_option",
                            classmethod(widgets._ORIGINAL_DISPATCH))
        assert [str(form.one()), str(form.many()), str(form.one())] == fast
    assert len(inspections) <= 1 + 3  # once per class before, once per render with WTForms'
    assert '<option selected value="b">Spara</option>' in fast[0]
