"""Import of defector tracks from CSV (docs/import.md): all rows or none, errors per line."""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from avhopp.accounts.models import User
from avhopp.audit.policy import Actor
from avhopp.audit.services import record, register_actions
from avhopp.cases import services as cases
from avhopp.cases.models import ENVIRONMENTS, INVOLVEMENTS
from avhopp.casework import services as casework
from avhopp.casework.models import CLOSURE_REASONS, REFERRAL_SOURCES
from avhopp.errors import DomainError
from avhopp.identifiers import (
    InvalidIdentifier,
    normalise_email,
    normalise_personnummer,
    normalise_phone,
)

MAX_ROWS = 5000
MAX_CELL = 2000
STATUSES = ("inquiry", "intake", "active", "closed")
YES, NO = ("ja", "yes", "1"), ("nej", "no", "0", "")
FORMS = {"skriftligt": "written", "written": "written", "muntligt": "oral", "oral": "oral"}

# column -> required; the order is the documented order.
COLUMNS: dict[str, bool] = {
    "namn": True, "tilltalsnamn": False, "personnummer": False, "fodelsear": False,
    "telefon": False, "epost": False, "adress": False, "inkom_via": True, "kommun": False,
    "ansvarig": True, "status": True, "oppnat": True, "avslutat": False, "avslutsorsak": False,
    "miljo": False, "engagemang": False, "samtycke_form": True, "samtycke_statistik": False,
    "samtycke_kansliga": False,
}

register_actions({
    "import.tracks": frozenset({"rows", "result", "dry_run", "errors"}),
})


@dataclass(frozen=True)
class RowError:
    row: int  # line number in the file (the header is line 1)
    column: str
    code: str


@dataclass
class ImportResult:
    rows: int = 0
    errors: list[RowError] = field(default_factory=list)
    codes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors


@dataclass
class _Row:
    line: int
    person: casework.PersonInput
    referral_source: str
    municipality: str | None
    owner_id: Any
    status: str
    opened: dt.datetime
    closed: dt.datetime | None
    closure_reason: str | None
    background: cases.BackgroundInput | None
    consent_form: str
    statistics: bool
    special_category: bool = False


def _date(value: str) -> dt.datetime:
    day = dt.date.fromisoformat(value)
    return dt.datetime.combine(day, dt.time(12), tzinfo=dt.UTC)


def _municipality(value: str) -> str:
    if not (value.isdigit() and len(value) == 4):
        raise ValueError("a municipality code has four digits")
    return value


def _yes_no(value: str) -> bool:
    if value.lower() not in YES + NO:
        raise ValueError("yes or no")
    return value.lower() in YES


class _RowReader:
    def __init__(self, line: int, raw: dict[str, str], errors: list[RowError]) -> None:
        self.line, self.raw, self.errors = line, raw, errors

    def text(self, column: str) -> str | None:
        value = (self.raw.get(column) or "").strip()
        if COLUMNS[column] and not value:
            self.errors.append(RowError(self.line, column, "required"))
            return None
        if len(value) > MAX_CELL:
            self.errors.append(RowError(self.line, column, "too_long"))
            return None
        return value or None

    def parse(self, column: str, parse: Callable[[str], Any], code: str) -> Any:
        value = self.text(column)
        if value is None:
            return None
        try:
            return parse(value)
        except (ValueError, InvalidIdentifier, KeyError):
            self.errors.append(RowError(self.line, column, code))
            return None

    def choice(self, column: str, allowed: tuple[str, ...]) -> str | None:
        def pick(value: str) -> str:
            if value not in allowed:
                raise ValueError(value)
            return value

        return self.parse(column, pick, "unknown_code")  # type: ignore[no-any-return]


def _owners(session: Session) -> dict[str, Any]:
    rows = session.execute(select(User.username, User.id, User.role, User.is_active))
    return {r.username: r.id for r in rows
            if r.is_active and r.role in ("coordinator", "support_worker")}


def _parse_row(line: int, raw: dict[str, str], owners: dict[str, Any],
               errors: list[RowError], today: dt.date) -> _Row | None:
    before = len(errors)
    r = _RowReader(line, raw, errors)
    name = r.text("namn")
    alias = r.text("tilltalsnamn")
    personnummer = r.parse("personnummer", normalise_personnummer, "invalid")
    birth_year = r.parse("fodelsear", int, "invalid")
    if birth_year is not None and not 1900 <= birth_year <= today.year:
        errors.append(RowError(line, "fodelsear", "invalid"))
    phone = r.parse("telefon", normalise_phone, "invalid")
    email = r.parse("epost", normalise_email, "invalid")
    address = r.text("adress")
    referral = r.choice("inkom_via", REFERRAL_SOURCES)
    municipality = r.parse("kommun", _municipality, "invalid")
    owner = r.parse("ansvarig", lambda v: owners[v.lower()], "unknown_user")
    status = r.choice("status", STATUSES)
    opened = r.parse("oppnat", _date, "invalid_date")
    closed = r.parse("avslutat", _date, "invalid_date")
    reason = r.choice("avslutsorsak", CLOSURE_REASONS)
    environment = r.choice("miljo", ENVIRONMENTS)
    involvement = r.choice("engagemang", INVOLVEMENTS)
    form = r.parse("samtycke_form", lambda v: FORMS[v.lower()], "unknown_code")
    statistics = r.parse("samtycke_statistik", _yes_no, "invalid")
    special = r.parse("samtycke_kansliga", _yes_no, "invalid")
    # Environment and involvement are special-category data: stored only with that consent.
    if (environment or involvement) and not special \
            and "samtycke_kansliga" not in {e.column for e in errors[before:]}:
        errors.append(RowError(line, "samtycke_kansliga", "required_for_background"))
    if opened is not None and opened.date() > today:
        errors.append(RowError(line, "oppnat", "in_future"))
    if status == "closed":
        if closed is None and "avslutat" not in {e.column for e in errors[before:]}:
            errors.append(RowError(line, "avslutat", "required_when_closed"))
        if reason is None and "avslutsorsak" not in {e.column for e in errors[before:]}:
            errors.append(RowError(line, "avslutsorsak", "required_when_closed"))
        if closed is not None and opened is not None and closed < opened:
            errors.append(RowError(line, "avslutat", "before_opened"))
    elif closed is not None or reason is not None:
        errors.append(RowError(line, "status", "closed_fields_on_open_track"))
    if len(errors) > before:
        return None
    background = (cases.BackgroundInput(environment=environment, involvement=involvement)
                  if environment or involvement else None)
    return _Row(line, casework.PersonInput(
        name=name, alias=alias, personnummer=personnummer, birth_year=birth_year,
        phone=phone, email=email, address=address), referral or "", municipality, owner,
        status or "", opened, closed, reason, background, form or "written",
        bool(statistics), bool(special))


def _decode(data: bytes) -> csv.DictReader[str] | None:
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return None
    sample = text[:4096]
    delimiter = ";" if sample.count(";") > sample.count(",") else ","
    return csv.DictReader(io.StringIO(text), delimiter=delimiter)


def read_rows(data: bytes) -> tuple[list[dict[str, str]], list[RowError]]:
    """Decode and split the file; structural problems are errors on line 1 (the header)."""
    reader = _decode(data)
    if reader is None:
        return [], [RowError(1, "", "not_utf8")]
    rows: list[dict[str, str]] = []
    try:
        header = [h.strip().lower() for h in (reader.fieldnames or [])]
        errors = [RowError(1, name, "missing_column") for name, required in COLUMNS.items()
                  if required and name not in header]
        errors += [RowError(1, name, "unknown_column") for name in header
                   if name not in COLUMNS]
        for raw in reader if not errors else ():
            rows.append({(k or "").strip().lower(): (v if isinstance(v, str) else "")
                         for k, v in raw.items()})
            if len(rows) > MAX_ROWS:
                errors.append(RowError(1, "", "too_many_rows"))
                break
    except csv.Error:
        # A stray line break inside an unquoted cell and the like: name the line it broke on.
        errors = [RowError(max(reader.line_num, 1), "", "malformed_csv")]
    if not errors and not rows:
        errors = [RowError(1, "", "no_rows")]
    return ([] if errors else rows), errors


def _import_one(session: Session, actor: Actor, row: _Row, now: dt.datetime) -> str:
    consents = [casework.ConsentInput(consent_type="processing", form=row.consent_form,
                                      valid_from=row.opened.date())]
    if row.special_category:
        consents.append(casework.ConsentInput(consent_type="special_category",
                                              form=row.consent_form,
                                              valid_from=row.opened.date()))
    if row.statistics:
        consents.append(casework.ConsentInput(consent_type="statistics", form=row.consent_form,
                                              valid_from=row.opened.date()))
    track = cases.open_defector_track(
        session, actor=actor, consents=consents, person=row.person,
        referral_source=row.referral_source, background=row.background,
        municipality=row.municipality, owner_id=row.owner_id,
        status="inquiry" if row.status == "inquiry" else "intake", allow_duplicate=True,
        now=row.opened)
    # Status changes are the team's work: made as the track's owner, as in the office.
    owner = session.get(User, row.owner_id)
    if owner is None:  # checked while parsing; keeps the types exact
        raise DomainError("owner missing", code="owner")
    if row.status in ("active", "closed"):
        casework.change_status(session, actor=owner, track_id=track.id, to_status="active",
                               now=row.opened)
    if row.status == "closed" and row.closed is not None:
        cases.close_track(session, actor=owner, track_id=track.id,
                          closure_reason=row.closure_reason or "other", now=row.closed)
    return track.code


def import_tracks(session: Session, *, actor: Actor, data: bytes, dry_run: bool,
                  now: dt.datetime) -> ImportResult:
    """Validate every row; then import all of them through the services, or none. A dry run
    goes as far as the services too (so it finds what they would refuse) and rolls back.
    The caller commits only when `result.ok` and not `dry_run`; it rolls back otherwise and
    then calls `record_import`."""
    raw_rows, errors = read_rows(data)
    result = ImportResult(rows=len(raw_rows), errors=errors)
    if errors:
        return result
    owners = _owners(session)
    parsed = [_parse_row(i + 2, raw, owners, result.errors, now.date())
              for i, raw in enumerate(raw_rows)]
    if result.errors:
        return result
    for row in parsed:
        if row is None:  # unreachable: a None row always came with an error
            continue
        try:
            with session.begin_nested():
                result.codes.append(_import_one(session, actor, row, now))
        except DomainError as exc:
            result.errors.append(RowError(row.line, _column_of(exc.code), exc.code or "refused"))
    return result


def _column_of(code: str) -> str:
    return {"personnummer": "personnummer", "phone": "telefon", "email": "epost",
            "name_required": "namn", "referral_source": "inkom_via",
            "municipality": "kommun", "owner": "ansvarig"}.get(code, "")


def record_import(session: Session, *, actor: Actor, result: ImportResult,
                  dry_run: bool) -> None:
    record(session, action="import.tracks", actor=actor,
           outcome="success" if result.ok else "denied",
           details={"rows": result.rows, "result": "ok" if result.ok else "refused",
                    "dry_run": dry_run, "errors": len(result.errors)})
