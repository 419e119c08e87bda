"""Swedish by default, English on request; every message and WTForms' own messages translated."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import wtforms
from babel.messages.mofile import read_mo
from babel.messages.pofile import read_po

from tests.conftest import csrf_token

TRANSLATIONS = Path(__file__).resolve().parent.parent / "avhopp" / "translations"
POT = TRANSLATIONS / "messages.pot"
SV_PO = TRANSLATIONS / "sv" / "LC_MESSAGES" / "messages.po"
SV_MO = TRANSLATIONS / "sv" / "LC_MESSAGES" / "messages.mo"
WTFORMS_SV = Path(wtforms.__file__).parent / "locale" / "sv" / "LC_MESSAGES" / "wtforms.po"


def read_catalog(path: Path) -> Any:
    with path.open("rb") as fh:
        return read_po(fh)


def wtforms_swedish(msgid: str) -> str:
    message = read_catalog(WTFORMS_SV).get(msgid)
    assert message is not None and message.string, f"wtforms has no Swedish for {msgid!r}"
    return str(message.string)


def choose_language(client: Any, locale: str, next_path: str = "/login") -> Any:
    return client.post("/language", data={
        "csrf_token": csrf_token(client, "/login"), "locale": locale, "next": next_path})


def test_login_page_is_swedish_by_default(client: Any) -> None:
    body = client.get("/login").get_data(as_text=True)
    assert '<html lang="sv">' in body
    assert "Logga in" in body
    assert "Log in" not in body


def test_choosing_english_switches_the_login_page(client: Any) -> None:
    response = choose_language(client, "en")
    assert response.status_code == 302
    assert response.location == "/login"
    body = client.get("/login").get_data(as_text=True)
    assert '<html lang="en">' in body
    assert "Log in" in body
    assert "Logga in" not in body


def test_choosing_swedish_again_switches_back(client: Any) -> None:
    choose_language(client, "en")
    choose_language(client, "sv")
    body = client.get("/login").get_data(as_text=True)
    assert '<html lang="sv">' in body
    assert "Logga in" in body


def test_an_unsupported_language_is_ignored(client: Any) -> None:
    response = choose_language(client, "de")
    assert response.status_code == 302
    assert '<html lang="sv">' in client.get("/login").get_data(as_text=True)


def test_error_pages_follow_the_chosen_language(client: Any) -> None:
    choose_language(client, "en")
    body = client.get("/no-such-page").get_data(as_text=True)
    assert "The page was not found" in body


# --- catalogues ---------------------------------------------------------------------------------


def test_template_catalogue_is_not_empty() -> None:
    ids = [m.id for m in read_catalog(POT) if m.id]
    assert len(ids) > 50


def test_every_message_has_a_swedish_translation() -> None:
    template = read_catalog(POT)
    swedish = read_catalog(SV_PO)
    missing = []
    for message in template:
        if not message.id:
            continue
        translated = swedish.get(message.id, context=message.context)
        strings = translated.string if translated else None
        ok = all(strings) if isinstance(strings, tuple) else bool(strings)
        if not ok:
            missing.append(message.id)
    assert not missing, f"untranslated messages: {missing}"


def test_no_swedish_translation_is_fuzzy() -> None:
    fuzzy = [m.id for m in read_catalog(SV_PO) if m.id and m.fuzzy]
    assert not fuzzy, f"fuzzy translations need review: {fuzzy}"


def test_compiled_catalogue_matches_the_po_file() -> None:
    # The app serves the .mo file; a stale one shows English for new messages.
    with SV_MO.open("rb") as fh:
        compiled = read_mo(fh)
    stale = []
    for message in read_catalog(SV_PO):
        if not message.id or not message.string:
            continue
        built = compiled.get(message.id, context=message.context)
        if built is None or built.string != message.string:
            stale.append(message.id)
    assert not stale, f"run `make translations`: messages.mo is stale for {stale}"


# --- WTForms' built-in messages -----------------------------------------------------------------


def test_wtforms_required_message_is_in_swedish(client: Any) -> None:
    expected = wtforms_swedish("This field is required.")
    response = client.post("/login", data={
        "csrf_token": csrf_token(client, "/login"), "username": "", "password": "x"})
    body = response.get_data(as_text=True)
    assert response.status_code == 200
    assert expected in body
    assert "This field is required." not in body


@pytest.mark.parametrize(("field", "value", "msgid"), [
    ("username", "x" * 201, "Field cannot be longer than %(max)d character."),
])
def test_wtforms_length_message_is_in_swedish(
    client: Any, field: str, value: str, msgid: str
) -> None:
    data = {"csrf_token": csrf_token(client, "/login"), "username": "u", "password": "p"}
    data[field] = value
    body = client.post("/login", data=data).get_data(as_text=True)
    catalog = read_catalog(WTFORMS_SV)
    message = catalog.get(msgid) or catalog.get((msgid, msgid.replace("character.",
                                                                      "characters.")))
    assert message is not None
    strings = message.string if isinstance(message.string, tuple) else (message.string,)
    assert any(s.replace("%(max)d", "200") in body for s in strings)
    assert "cannot be longer" not in body


def test_wtforms_required_message_is_english_after_choosing_english(client: Any) -> None:
    choose_language(client, "en")
    response = client.post("/login", data={
        "csrf_token": csrf_token(client, "/login"), "username": "", "password": "x"})
    assert "This field is required." in response.get_data(as_text=True)
