"""Translations are looked up once per request and always follow the request's language."""

from __future__ import annotations

from typing import Any

from flask import render_template_string
from flask_babel import Domain, force_locale, gettext, lazy_gettext

from tests.test_i18n import choose_language


def test_two_clients_in_different_languages_each_get_their_own(app: Any) -> None:
    english, swedish = app.test_client(), app.test_client()
    choose_language(english, "en")
    for _ in range(2):  # alternating requests in one process: nothing carries over
        assert "Log in" in english.get("/login").get_data(as_text=True)
        body = swedish.get("/login").get_data(as_text=True)
        assert "Logga in" in body and "Log in" not in body


def test_force_locale_switches_and_restores_within_a_request(app: Any) -> None:
    with app.test_request_context("/"):
        assert gettext("Log in") == "Logga in"
        with force_locale("en"):
            assert gettext("Log in") == "Log in"
            assert render_template_string("{{ _('Log in') }}") == "Log in"
        assert gettext("Log in") == "Logga in"
        assert str(lazy_gettext("Log in")) == "Logga in"


def test_a_page_looks_up_its_catalogue_once_not_once_per_string(
        app: Any, monkeypatch: Any) -> None:
    lookups = []
    original = Domain.get_translations

    def counting(self: Any) -> Any:
        lookups.append(1)
        return original(self)

    monkeypatch.setattr(Domain, "get_translations", counting)
    with app.test_request_context("/"):
        rendered = render_template_string("{% for _i in range(50) %}{{ _('Log in') }}{% endfor %}")
        assert rendered == "Logga in" * 50
        assert [gettext("Log in") for _ in range(50)] == ["Logga in"] * 50
    assert len(lookups) == 1


def test_wtforms_messages_follow_the_language_from_a_catalogue_read_once_per_language(
        app: Any, monkeypatch: Any) -> None:
    from babel import support
    from flask_wtf import FlaskForm
    from wtforms import StringField
    from wtforms.validators import InputRequired

    from avhopp import translation

    class Form(FlaskForm):
        class Meta:
            csrf = False

        name = StringField(validators=[InputRequired()])

    loads: list[str] = []
    original = support.Translations.load

    def counting(*args: Any, **kwargs: Any) -> Any:
        loads.append(kwargs.get("domain", ""))
        return original(*args, **kwargs)

    monkeypatch.setattr(support.Translations, "load", counting)
    translation._wtforms_catalogue.cache_clear()
    expected = {"sv": "Det här fältet är obligatoriskt.", "en": "This field is required."}
    for locale in ("sv", "en", "sv", "en"):
        with app.test_request_context("/", method="POST", data={"name": ""}), \
                force_locale(locale):
            form = Form()
            assert not form.validate()
            assert form.name.errors == [expected[locale]]
    assert loads.count("wtforms") == 2


def test_the_app_gettext_follows_the_request_language_and_fills_variables(app: Any) -> None:
    from avhopp.translation import gettext as app_gettext
    from avhopp.translation import lazy_gettext as app_lazy_gettext

    label = app_lazy_gettext("Log in")
    with app.test_request_context("/"):
        assert app_gettext("Log in") == str(label) == "Logga in"
        with force_locale("en"):
            assert app_gettext("Log in") == str(label) == "Log in"
            assert app_gettext("%(n)d minutes", n=5) == "5 minutes"
        assert app_gettext("%(n)d minutes", n=5) == "5 minuter"
    assert app_gettext("Log in") == "Log in"  # outside a request: untranslated, no error
