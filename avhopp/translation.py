"""Translations found once per request, not once per string as Flask-Babel does."""

from __future__ import annotations

from functools import cache, cached_property
from typing import Any

from babel import support
from flask import Flask, Request, g
from flask_babel import Domain, get_locale
from flask_babel.speaklater import LazyString
from wtforms.i18n import messages_path


class RequestCachedDomain(Domain):
    """Flask-Babel's domain, with the translations of the request's locale kept beside it.

    A track page translates several hundred strings; Flask-Babel resolves the context, the
    locale and the catalogue for each (about a tenth of the page's CPU). The cache lives in
    Flask-Babel's own per-request namespace and is tied to the locale object it was made for,
    so `force_locale` and `refresh` (which replace or drop that object) are honoured.
    """

    def get_translations(self) -> Any:
        try:
            namespace = g._get_current_object().__dict__
        except RuntimeError:  # outside an app context: Flask-Babel answers with null translations
            return super().get_translations()
        ns = namespace.get("_flask_babel")
        locale = getattr(ns, "babel_locale", None)
        cached = getattr(ns, "avhopp_translations", None)
        if locale is not None and cached is not None and cached[0] is locale and cached[1] is self:
            return cached[2]
        translations = super().get_translations()  # settles ns.babel_locale on first use
        ns = namespace.get("_flask_babel")
        locale = getattr(ns, "babel_locale", None)
        if locale is not None:
            ns.avhopp_translations = (locale, self, translations)
        return translations


# The domain `install` made (every app here uses the one "messages" domain): gettext below goes
# to it directly instead of finding it through Flask-Babel's per-string context walk.
_domain: RequestCachedDomain | None = None


def gettext(string: str, **variables: Any) -> str:
    """Flask-Babel's `gettext`, in the request's language, without its per-string lookups of
    the domain (forms and pages translate a few hundred labels each)."""
    domain = _domain or RequestCachedDomain()
    translated: str = domain.get_translations().ugettext(string)
    return translated % variables if variables else translated


def lazy_gettext(string: str, **variables: Any) -> LazyString:
    """Flask-Babel's `lazy_gettext`, translated by `gettext` above when used."""
    return LazyString(gettext, string, **variables)


@cache
def _wtforms_catalogue(locale: str) -> support.Translations:
    return support.Translations.load(messages_path(), [locale], domain="wtforms")


class CatalogueRequest(Request):
    """Flask's request, with WTForms' own messages from a catalogue read once per process and
    language: Flask-WTF reads `request.wtforms_translations` and otherwise parses the .mo file
    on every request that builds a form."""

    @cached_property
    def wtforms_translations(self) -> support.Translations:
        return _wtforms_catalogue(str(get_locale()))


def install(app: Flask, babel: Any) -> None:
    """Use the cached domain for the app's default domain and in templates."""
    app.request_class = CatalogueRequest
    global _domain  # noqa: PLW0603  one domain for the process, as Flask-Babel's default
    domain = _domain = RequestCachedDomain(domain=app.config.get("BABEL_DOMAIN", "messages"))
    # Flask-Babel's domain_instance is a cached property; an attribute takes its place.
    babel.domain_instance = domain
    app.jinja_env.install_gettext_callables(
        gettext=lambda s: domain.get_translations().ugettext(s),
        ngettext=lambda s, p, n: domain.get_translations().ungettext(s, p, n),
        pgettext=lambda c, s: domain.get_translations().upgettext(c, s),
        npgettext=lambda c, s, p, n: domain.get_translations().unpgettext(c, s, p, n),
        newstyle=True,
    )
