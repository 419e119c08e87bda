"""Versioned normalisers for searchable identifiers (personnummer, phone, e-mail)."""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from collections.abc import Callable
from typing import Final
from zoneinfo import ZoneInfo

import phonenumbers

PERSONNUMMER_VERSION: Final = 1
PHONE_VERSION: Final = 1
EMAIL_VERSION: Final = 1

# Reason code -> Swedish text for staff. Neither contains the rejected input: it is personal data.
REASONS: Final[dict[str, str]] = {
    "format": "Fel format.",
    "datum": "Datumet finns inte.",
    "framtida_datum": "Datumet ligger i framtiden.",
    "kontrollsiffra": "Kontrollsiffran stämmer inte.",
    "plustecken": "Plustecken används bara i tiosiffrig form.",
    "telefon_tolkning": "Det går inte att tolka som ett telefonnummer.",
    "telefon_ogiltigt": "Telefonnumret är inte giltigt.",
    "epost_format": "E-postadressen ska ha formen namn@domän.",
    "epost_doman": "Domänen i e-postadressen är ogiltig.",
}


class InvalidIdentifier(ValueError):
    """An identifier was rejected; `reason` is a key of REASONS, `message_sv` its Swedish text."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason
        self.message_sv = REASONS[reason]


_PNR_LONG = re.compile(r"(\d{8})([-+]?)(\d{4})", re.ASCII)
_PNR_SHORT = re.compile(r"(\d{6})([-+]?)(\d{4})", re.ASCII)
_DNS_LABEL = re.compile(r"(?!-)[a-z0-9-]{1,63}(?<!-)", re.ASCII)
_SAMORDNING_OFFSET: Final = 60
_SWEDEN: Final = ZoneInfo("Europe/Stockholm")


def _luhn_ok(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(digits):
        d = int(ch) * (
            2 if i % 2 == 0 else 1
        )  # 10-digit form: weights 2,1,2,1,...,2 then check digit
        total += d - 9 if d > 9 else d
    return total % 10 == 0


def _birth_date(year: int, month: int, day: int) -> dt.date:
    if day > _SAMORDNING_OFFSET:
        day -= _SAMORDNING_OFFSET  # samordningsnummer: day of birth + 60
    try:
        return dt.date(year, month, day)
    except ValueError:
        raise InvalidIdentifier("datum") from None


def normalise_personnummer(s: str, *, today: dt.date | None = None) -> str:
    """v1: personnummer or samordningsnummer -> 12 digits YYYYMMDDNNNC.

    Accepts YYYYMMDD[-]NNNC and YYMMDD[-+]NNNC; in the short form the century is the latest
    one that puts the birth date on or before `today`, minus 100 years after a '+'.
    """
    # Birth dates are Swedish calendar dates, so "today" is today in Sweden.
    today = today or dt.datetime.now(_SWEDEN).date()
    text = s.strip()
    if m := _PNR_LONG.fullmatch(text):
        head, sep, tail = m.groups()
        if sep == "+":
            raise InvalidIdentifier("plustecken")
        year, month, day = int(head[:4]), int(head[4:6]), int(head[6:8])
    elif m := _PNR_SHORT.fullmatch(text):
        head, sep, tail = m.groups()
        yy, month, day = int(head[:2]), int(head[2:4]), int(head[4:6])
        year = today.year // 100 * 100 + yy
        real_day = day - _SAMORDNING_OFFSET if day > _SAMORDNING_OFFSET else day
        if (year, month, real_day) > (today.year, today.month, today.day):
            year -= 100
        if sep == "+":
            year -= 100
    else:
        raise InvalidIdentifier("format")
    if _birth_date(year, month, day) > today:
        raise InvalidIdentifier("framtida_datum")
    ten = head[-6:] + tail
    if not _luhn_ok(ten):
        raise InvalidIdentifier("kontrollsiffra")
    return f"{year:04d}{ten[2:]}"


def normalise_phone(s: str, region: str = "SE") -> str:
    """v1: a phone number in any common notation -> E.164 (e.g. +46701234567)."""
    try:
        number = phonenumbers.parse(s, region)
    except phonenumbers.NumberParseException:
        raise InvalidIdentifier("telefon_tolkning") from None
    if not phonenumbers.is_valid_number(number):
        raise InvalidIdentifier("telefon_ogiltigt")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def normalise_email(s: str) -> str:
    """v1: trimmed, NFC, lower-case local part and lower-case IDNA (punycode) domain."""
    text = unicodedata.normalize("NFC", s.strip())
    if text.count("@") != 1:
        raise InvalidIdentifier("epost_format")
    local, domain = text.split("@")
    # lower() can yield decomposed sequences (e.g. for U+0130), so normalise again afterwards.
    local = unicodedata.normalize("NFC", local.lower())
    if not local or len(local) > 64 or any(ch.isspace() or not ch.isprintable() for ch in local):
        raise InvalidIdentifier("epost_format")
    domain = domain.lower().removesuffix(".")
    if not domain:
        raise InvalidIdentifier("epost_format")
    try:
        ascii_domain = domain.encode("idna").decode("ascii").lower()
    except UnicodeError:
        raise InvalidIdentifier("epost_doman") from None
    # The idna codec lets any ASCII through unchecked; enforce host-name syntax ourselves.
    if len(ascii_domain) > 253 or not all(
        _DNS_LABEL.fullmatch(label) for label in ascii_domain.split(".")
    ):
        raise InvalidIdentifier("epost_doman")
    return f"{local}@{ascii_domain}"


# kind -> (normaliser version, normaliser). A blind index records the version it was built with;
# changing a normaliser means a new version and a new index version (backfill, then switch).
NORMALISERS: Final[dict[str, tuple[int, Callable[[str], str]]]] = {
    "personnummer": (PERSONNUMMER_VERSION, normalise_personnummer),
    "phone": (PHONE_VERSION, normalise_phone),
    "email": (EMAIL_VERSION, normalise_email),
}
