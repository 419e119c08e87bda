"""Tests for the versioned identifier normalisers."""

from __future__ import annotations

import datetime as dt
import unicodedata

import pytest

from avhopp.identifiers import (
    NORMALISERS,
    REASONS,
    InvalidIdentifier,
    normalise_email,
    normalise_personnummer,
    normalise_phone,
)

TODAY = dt.date(2026, 11, 22)


def pnr(s: str) -> str:
    return normalise_personnummer(s, today=TODAY)


def reason(fn: object, s: str) -> str:
    with pytest.raises(InvalidIdentifier) as info:
        fn(s)  # type: ignore[operator]
    return info.value.reason


@pytest.mark.parametrize(
    "text", ["811218-9876", "8112189876", "19811218-9876", "198112189876", " 811218-9876\n"]
)
def test_personnummer_in_every_accepted_notation_gives_twelve_digits(text: str) -> None:
    assert pnr(text) == "198112189876"


def test_plus_marks_a_centenarian_in_the_ten_digit_form() -> None:
    assert pnr("181218-1236") == "201812181236"
    assert pnr("181218+1236") == "191812181236"


def test_century_is_the_latest_not_after_today() -> None:
    assert pnr("261122-1231") == "202611221231"  # born today
    assert pnr("261123-1230") == "192611231230"  # tomorrow's date belongs to the previous century
    assert pnr("990101-1230") == "199901011230"


def test_default_today_is_the_current_date() -> None:
    assert normalise_personnummer("811218-9876") == "198112189876"


def test_leap_day_depends_on_the_inferred_century() -> None:
    assert pnr("000229-1235") == "200002291235"
    assert reason(pnr, "000229+1235") == "datum"  # 1900 was not a leap year


def test_samordningsnummer_is_accepted_with_day_plus_sixty() -> None:
    assert pnr("811278-9873") == "198112789873"
    assert pnr("19811278-9873") == "198112789873"
    assert pnr("811291-1238") == "198112911238"  # 31 December


def test_samordningsnummer_with_impossible_date_is_rejected() -> None:
    assert reason(pnr, "810292-1239") == "datum"  # 32 February


def test_bad_luhn_checksum_is_rejected() -> None:
    assert reason(pnr, "811218-9877") == "kontrollsiffra"
    assert reason(pnr, "198112189877") == "kontrollsiffra"


@pytest.mark.parametrize(
    "text", ["811318-9876", "811200-9876", "811232-9876", "19811300-9876", "000000-0000"]
)
def test_impossible_dates_are_rejected(text: str) -> None:
    assert reason(pnr, text) == "datum"


def test_future_date_in_twelve_digit_form_is_rejected() -> None:
    assert reason(pnr, "20301010-1230") == "framtida_datum"


def test_plus_in_twelve_digit_form_is_rejected() -> None:
    assert reason(pnr, "19181218+1236") == "plustecken"


@pytest.mark.parametrize(
    "text",
    [
        "",
        "81121a-9876",
        "811218–9876",
        "811218 9876",
        "81121898761",
        "811218--9876",
        "٨١١٢١٨-٩٨٧٦",
        "1981-12-18-9876",
    ],
)
def test_malformed_personnummer_is_rejected_as_format(text: str) -> None:
    assert reason(pnr, text) == "format"


def test_rejection_message_is_swedish_and_does_not_contain_the_input() -> None:
    with pytest.raises(InvalidIdentifier) as info:
        pnr("811218-9877")
    assert info.value.message_sv == REASONS["kontrollsiffra"]
    assert "9877" not in str(info.value) and "9877" not in info.value.message_sv
    assert isinstance(info.value, ValueError)


@pytest.mark.parametrize(
    "text",
    [
        "070-123 45 67",
        "+46 70 123 45 67",
        "0701234567",
        "0046701234567",
        "+46 (0)70-123 45 67",
        " 070 123 45 67 ",
    ],
)
def test_swedish_phone_formats_normalise_to_e164(text: str) -> None:
    assert normalise_phone(text) == "+46701234567"


def test_landline_and_foreign_numbers() -> None:
    assert normalise_phone("08-123 456 78") == "+46812345678"
    assert normalise_phone("+47 22 12 34 56") == "+4722123456"
    assert normalise_phone("22 12 34 56", region="NO") == "+4722123456"


@pytest.mark.parametrize(
    ("text", "code"),
    [("070123456", "telefon_ogiltigt"), ("abc", "telefon_tolkning"), ("", "telefon_tolkning")],
)
def test_invalid_phone_numbers_are_rejected(text: str, code: str) -> None:
    assert reason(normalise_phone, text) == code


def test_email_is_trimmed_and_lower_cased() -> None:
    assert normalise_email("  Anna.Andersson@Example.SE \t") == "anna.andersson@example.se"


def test_email_nfc_and_nfd_forms_normalise_alike() -> None:
    nfc = unicodedata.normalize("NFC", "Åsa@example.se")
    nfd = unicodedata.normalize("NFD", "Åsa@example.se")
    assert nfc != nfd
    assert normalise_email(nfc) == normalise_email(nfd) == "åsa@example.se"


def test_email_domain_is_idna_encoded() -> None:
    assert normalise_email("anna@exämple.se") == "anna@xn--exmple-cua.se"
    assert normalise_email("anna@EXÄMPLE.se") == "anna@xn--exmple-cua.se"
    assert normalise_email("anna@xn--exmple-cua.se") == "anna@xn--exmple-cua.se"
    assert normalise_email("anna@example.se.") == "anna@example.se"


@pytest.mark.parametrize(
    "text",
    [
        "anna",
        "anna@@example.se",
        "a@b@example.se",
        "@example.se",
        "anna@",
        "an na@example.se",
        "   ",
    ],
)
def test_email_without_exactly_one_at_and_non_empty_parts_is_rejected(text: str) -> None:
    assert reason(normalise_email, text) == "epost_format"


@pytest.mark.parametrize(
    "text",
    [
        "anna@exa..mple.se",
        "anna@exa mple.se",
        "anna@-example.se",
        "anna@ex_ample.se",
        "anna@" + "a" * 64 + ".se",
    ],
)
def test_email_with_invalid_domain_is_rejected(text: str) -> None:
    assert reason(normalise_email, text) == "epost_doman"


def test_registry_maps_kinds_to_versioned_normalisers() -> None:
    assert NORMALISERS["personnummer"] == (1, normalise_personnummer)
    assert NORMALISERS["phone"] == (1, normalise_phone)
    assert NORMALISERS["email"] == (1, normalise_email)
    for version, fn in NORMALISERS.values():
        assert isinstance(version, int) and version >= 1 and callable(fn)
