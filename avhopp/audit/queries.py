"""Read-only selects for the board's review of the audit log: filters, flags, keyset pages."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Select, false, func, or_, select, tuple_
from sqlalchemy.orm import Session

from avhopp.accounts.models import User
from avhopp.audit.models import AuditCheckpoint, AuditEvent, AuditHead, AuditSignOff
from avhopp.audit.policy import Actor, AuditSettings, require_reviewer

# Break-glass access to a track (a future feature) is recorded under this action prefix.
BREAK_GLASS_PREFIX = "track.break_glass"
# The last word of an action that reads something: these count towards "unusual volume".
READ_VERBS = (
    "viewed", "listed", "searched", "exported", "opened", "downloaded", "content_read",
)
# A disclosure to an authority without the person's consent, on a stated legal basis: the
# board reviews each one (the casework services record it under this action).
DISCLOSURE_ACTION = "agency.contact_added"
ON_CONSENT = '"legal_basis":"consent"'
FLAGS = ("break_glass", "after_hours", "high_volume", "denied", "export", "legal_basis")
OUTCOMES = ("success", "denied", "error")
PAGE_SIZE = 50


@dataclass(frozen=True)
class EventFilter:
    """What the board asked to see. Times are aware UTC; `until` is exclusive."""

    since: dt.datetime | None = None
    until: dt.datetime | None = None
    actor_id: uuid.UUID | None = None
    action: str | None = None
    outcome: str | None = None
    object_code: str | None = None
    flag: str | None = None


@dataclass(frozen=True)
class EventRow:
    """One entry as the board sees it: codes, ids, usernames and roles only."""

    seq: int
    occurred_at: dt.datetime
    local_time: dt.datetime
    actor_id: uuid.UUID | None
    username: str | None
    actor_role: str | None
    action: str
    object_type: str | None
    object_id: str | None
    outcome: str
    purpose: str | None
    details: dict[str, Any]
    request_id: str | None
    is_redacted: bool
    flags: tuple[str, ...]


@dataclass(frozen=True)
class EventPage:
    rows: list[EventRow]
    newer_after: int | None  # pass as `after` for the newer page
    older_before: int | None  # pass as `before` for the older page


def is_read(action: str) -> bool:
    return action.rsplit(".", 1)[-1] in READ_VERBS


def _read_condition(actions: Sequence[str] = ()) -> ColumnElement[bool]:
    """Entries that read something. With the catalogue at hand, an IN list the action index
    answers; without it, suffix patterns (which scan)."""
    if actions:
        return AuditEvent.action.in_(sorted(a for a in actions if is_read(a)))
    return or_(*(AuditEvent.action.endswith("." + verb, autoescape=True) for verb in READ_VERBS))


def _action_condition(
    actions: Sequence[str], pattern: ColumnElement[bool], wanted: Any
) -> ColumnElement[bool]:
    if actions:
        return AuditEvent.action.in_(sorted(a for a in actions if wanted(a)))
    return pattern


def is_after_hours(when: dt.datetime, settings: AuditSettings) -> bool:
    local = when.astimezone(settings.zone)
    return (
        local.isoweekday() not in settings.workdays
        or not settings.workday_start_hour <= local.hour < settings.workday_end_hour
    )


def _after_hours_condition(session: Session, settings: AuditSettings) -> ColumnElement[bool]:
    if session.get_bind().dialect.name == "postgresql":
        local = func.timezone(settings.timezone, AuditEvent.occurred_at)
        hour = func.extract("hour", local)
        return or_(
            func.extract("isodow", local).not_in(sorted(settings.workdays)),
            hour < settings.workday_start_hour,
            hour >= settings.workday_end_hour,
        )
    # SQLite has no time zone data: ask Python, through a function on this connection.
    dbapi = session.connection().connection.dbapi_connection

    def after_hours(stored: str | None) -> int:
        if stored is None:
            return 0
        try:
            when = dt.datetime.fromisoformat(stored).replace(tzinfo=dt.UTC)
        except ValueError:
            return 0
        return int(is_after_hours(when, settings))

    dbapi.create_function("avhopp_after_hours", 1, after_hours, deterministic=True)  # type: ignore[union-attr]
    return func.avhopp_after_hours(AuditEvent.occurred_at) == 1


def _hour_bucket(session: Session) -> ColumnElement[Any]:
    """The UTC clock hour of an entry, as the database can group by it."""
    if session.get_bind().dialect.name == "postgresql":
        return func.date_trunc("hour", func.timezone("UTC", AuditEvent.occurred_at))
    # Stored as "YYYY-MM-DD HH:MM:SS.ffffff" (naive UTC).
    return func.substr(AuditEvent.occurred_at, 1, 13)


def _time_conditions(flt: EventFilter) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = []
    if flt.since is not None:
        conditions.append(AuditEvent.occurred_at >= flt.since)
    if flt.until is not None:
        conditions.append(AuditEvent.occurred_at < flt.until)
    return conditions


def _conditions(
    session: Session, flt: EventFilter, settings: AuditSettings, actions: Sequence[str]
) -> list[ColumnElement[bool]]:
    conditions = _time_conditions(flt)
    if flt.actor_id is not None:
        conditions.append(AuditEvent.actor_id == flt.actor_id)
    if flt.action:
        conditions.append(AuditEvent.action == flt.action)
    if flt.outcome:
        conditions.append(AuditEvent.outcome == flt.outcome)
    if flt.object_code:
        conditions.append(AuditEvent.object_id == flt.object_code)
    if flt.flag == "break_glass":
        conditions.append(_action_condition(
            actions, AuditEvent.action.startswith(BREAK_GLASS_PREFIX, autoescape=True),
            lambda a: a.startswith(BREAK_GLASS_PREFIX)))
    elif flt.flag == "denied":
        conditions.append(AuditEvent.outcome == "denied")
    elif flt.flag == "export":
        conditions.append(_action_condition(
            actions, AuditEvent.action.endswith(".exported", autoescape=True),
            lambda a: a.endswith(".exported")))
    elif flt.flag == "after_hours":
        conditions.append(_after_hours_condition(session, settings))
    elif flt.flag == "legal_basis":
        # Details are compact JSON with sorted keys (audit.services), so the consent basis
        # has exactly one spelling.
        conditions.extend([AuditEvent.action == DISCLOSURE_ACTION,
                           AuditEvent.outcome == "success",
                           AuditEvent.details.not_like(f"%{ON_CONSENT}%")])
    elif flt.flag == "high_volume":
        bucket = _hour_bucket(session)
        # The suffix form when a period is given, on purpose: the planner should then walk the
        # time index, not every read in the action index.
        reads = _read_condition(() if flt.since else actions)
        busy = (
            select(AuditEvent.actor_id, bucket)
            .where(reads, AuditEvent.actor_id.is_not(None), *_time_conditions(flt))
            .group_by(AuditEvent.actor_id, bucket)
            .having(func.count() > settings.reads_per_hour)
        )
        conditions.extend([reads, tuple_(AuditEvent.actor_id, bucket).in_(busy)])
    elif flt.flag:
        conditions.append(false())
    return conditions


def _select(
    session: Session, flt: EventFilter, settings: AuditSettings, actions: Sequence[str]
) -> Select[AuditEvent, str]:
    return (
        select(AuditEvent, User.username)
        .outerjoin(User, User.id == AuditEvent.actor_id)
        .where(*_conditions(session, flt, settings, actions))
    )


class _VolumeCounter:
    """Reads per (actor, UTC hour), counted once per pair and remembered."""

    def __init__(self, session: Session, settings: AuditSettings, actions: Sequence[str]) -> None:
        self.session = session
        self.settings = settings
        self.actions = actions
        self.counts: dict[tuple[uuid.UUID, dt.datetime], int] = {}

    def is_high(self, event: AuditEvent) -> bool:
        if event.actor_id is None or not is_read(event.action):
            return False
        hour = event.occurred_at.astimezone(dt.UTC).replace(minute=0, second=0, microsecond=0)
        key = (event.actor_id, hour)
        if key not in self.counts:
            self.counts[key] = int(self.session.scalar(
                select(func.count()).select_from(AuditEvent).where(
                    AuditEvent.actor_id == event.actor_id,
                    AuditEvent.occurred_at >= hour,
                    AuditEvent.occurred_at < hour + dt.timedelta(hours=1),
                    _read_condition(self.actions),
                )
            ) or 0)
        return self.counts[key] > self.settings.reads_per_hour


def _flags(event: AuditEvent, settings: AuditSettings, volume: _VolumeCounter) -> tuple[str, ...]:
    flags = []
    if event.action.startswith(BREAK_GLASS_PREFIX):
        flags.append("break_glass")
    if is_after_hours(event.occurred_at, settings):
        flags.append("after_hours")
    if volume.is_high(event):
        flags.append("high_volume")
    if event.outcome == "denied":
        flags.append("denied")
    if event.action.endswith(".exported"):
        flags.append("export")
    if _is_legal_basis_disclosure(event):
        flags.append("legal_basis")
    return tuple(flags)


def _is_legal_basis_disclosure(event: AuditEvent) -> bool:
    if event.action != DISCLOSURE_ACTION or event.outcome != "success":
        return False
    try:
        details = json.loads(event.details) if event.details else {}
    except ValueError:
        return False
    return isinstance(details, dict) and details.get("legal_basis", "consent") != "consent"


def _row(event: AuditEvent, username: str | None, settings: AuditSettings,
         volume: _VolumeCounter) -> EventRow:
    try:
        details = json.loads(event.details) if event.details else {}
    except ValueError:
        details = {}
    if not isinstance(details, dict):
        details = {}
    return EventRow(
        seq=event.seq,
        occurred_at=event.occurred_at,
        local_time=event.occurred_at.astimezone(settings.zone),
        actor_id=event.actor_id,
        username=username,
        actor_role=event.actor_role,
        action=event.action,
        object_type=event.object_type,
        object_id=event.object_id,
        outcome=event.outcome,
        purpose=event.purpose,
        details=details,
        request_id=event.request_id,
        is_redacted=event.redacted_at is not None,
        flags=_flags(event, settings, volume),
    )


def page_events(
    session: Session,
    *,
    actor: Actor | None,
    flt: EventFilter,
    settings: AuditSettings,
    actions: Sequence[str] = (),
    before: int | None = None,
    after: int | None = None,
    limit: int = PAGE_SIZE,
) -> EventPage:
    """One page of entries, newest first, paged by sequence number (keyset, never OFFSET).

    `actions` is the action catalogue; with it the flag filters use the action index.
    """
    require_reviewer(actor)
    stmt = _select(session, flt, settings, actions)
    if after is not None:
        stmt = stmt.where(AuditEvent.seq > after).order_by(AuditEvent.seq.asc())
    else:
        if before is not None:
            stmt = stmt.where(AuditEvent.seq < before)
        stmt = stmt.order_by(AuditEvent.seq.desc())
    found = list(session.execute(stmt.limit(limit + 1)).all())
    more = len(found) > limit
    found = found[:limit]
    if after is not None:
        found.reverse()
    volume = _VolumeCounter(session, settings, actions)
    rows = [_row(event, username, settings, volume) for event, username in found]
    newer: int | None
    older: int | None
    if after is not None:
        newer = rows[0].seq if more and rows else None
        older = rows[-1].seq if rows else after + 1
    else:
        newer = rows[0].seq if before is not None and rows else None
        older = rows[-1].seq if more and rows else None
    return EventPage(rows=rows, newer_after=newer, older_before=older)


def iter_events(
    session: Session,
    *,
    actor: Actor | None,
    flt: EventFilter,
    settings: AuditSettings,
    actions: Sequence[str] = (),
    upto: int | None = None,
    batch: int = 1000,
    pause: Callable[[], None] | None = None,
) -> Iterator[EventRow]:
    """Every matching entry up to `upto`, oldest first, in keyset batches (the CSV export).

    `pause` runs between batches: the caller ends its transaction there, so a slow download
    never holds a database lock (on SQLite every transaction holds the write lock).
    """
    require_reviewer(actor)
    volume = _VolumeCounter(session, settings, actions)
    last = 0
    while True:
        stmt = _select(session, flt, settings, actions).where(AuditEvent.seq > last)
        if upto is not None:
            stmt = stmt.where(AuditEvent.seq <= upto)
        found = session.execute(stmt.order_by(AuditEvent.seq.asc()).limit(batch)).all()
        rows = [_row(event, username, settings, volume) for event, username in found]
        session.expunge_all()
        if pause is not None:
            pause()
        yield from rows
        if len(rows) < batch:
            return
        last = rows[-1].seq


def count_events(
    session: Session, *, actor: Actor | None, flt: EventFilter, settings: AuditSettings,
    actions: Sequence[str] = (),
) -> int:
    require_reviewer(actor)
    stmt = select(func.count()).select_from(AuditEvent).where(
        *_conditions(session, flt, settings, actions)
    )
    return int(session.scalar(stmt) or 0)


def log_size(session: Session) -> int:
    head = session.get(AuditHead, 1)
    return head.size if head is not None else 0


def staff_choices(session: Session, *, actor: Actor | None) -> list[tuple[uuid.UUID, str]]:
    """Every staff account (id, username), for the actor filter."""
    require_reviewer(actor)
    return [(row.id, row.username) for row in session.execute(
        select(User.id, User.username).order_by(User.username))]


def list_checkpoints(
    session: Session, *, actor: Actor | None, before_size: int | None = None,
    limit: int = PAGE_SIZE,
) -> tuple[list[AuditCheckpoint], int | None]:
    """Stored checkpoints, newest first, keyset-paged by size; returns (page, next before)."""
    require_reviewer(actor)
    stmt = select(AuditCheckpoint).order_by(AuditCheckpoint.size.desc()).limit(limit + 1)
    if before_size is not None:
        stmt = stmt.where(AuditCheckpoint.size < before_size)
    found = list(session.scalars(stmt))
    more = len(found) > limit
    found = found[:limit]
    return found, (found[-1].size if more and found else None)


@dataclass(frozen=True)
class SignOffRow:
    id: int
    from_seq: int
    to_seq: int
    tree_root: bytes
    username: str | None
    signed_off_at: dt.datetime
    event_seq: int


def list_signoffs(
    session: Session, *, actor: Actor | None, limit: int = 100
) -> list[SignOffRow]:
    require_reviewer(actor)
    found = session.execute(
        select(AuditSignOff, User.username)
        .outerjoin(User, User.id == AuditSignOff.signed_off_by)
        .order_by(AuditSignOff.id.desc())
        .limit(limit)
    ).all()
    return [SignOffRow(s.id, s.from_seq, s.to_seq, s.tree_root, name, s.signed_off_at,
                       s.event_seq) for s, name in found]


def last_signed_off_seq(session: Session) -> int:
    return int(session.scalar(select(func.max(AuditSignOff.to_seq))) or 0)
