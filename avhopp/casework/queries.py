"""Read-only track lists and exact searches. Lists show codes, status, owner, dates and risk
level only: nothing is decrypted. Every query goes through the access policy."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any

from sqlalchemy import ColumnElement, case, func, select
from sqlalchemy.orm import Session

from avhopp.accounts.models import User
from avhopp.audit.policy import Actor
from avhopp.audit.services import record, register_actions
from avhopp.casework import policy
from avhopp.casework.codes import normalise_code
from avhopp.casework.models import RISK_LEVELS, STATUSES, TRACK_KINDS, Person, Track
from avhopp.casework.policy import Need
from avhopp.encryption.services import field_crypto
from avhopp.errors import ValidationError
from avhopp.identifiers import InvalidIdentifier
from avhopp.permissions import role_has

register_actions({
    "track.listed": frozenset({"scope", "count"}),
    "track.searched": frozenset({"fields", "matches"}),
})

MAX_PAGE = 200
_RISK_ORDER = case({level: rank for rank, level in enumerate(RISK_LEVELS, 1)},
                   value=Track.risk_level, else_=0)
# The sort keys a caller may ask for (B4: never a column name from input).
SORTS: dict[str, Any] = {
    "code": Track.code,
    "status": Track.status,
    "opened_at": Track.opened_at,
    "closed_at": Track.closed_at,
    "risk_level": _RISK_ORDER,
    "next_contact_at": Track.next_contact_at,
    "owner": User.username,
}


@dataclass(frozen=True)
class TrackRow:
    """One line of a track list: no content, nothing decrypted."""

    id: uuid.UUID
    code: str
    kind: str
    status: str
    owner_id: uuid.UUID
    owner_username: str
    opened_at: dt.datetime
    closed_at: dt.datetime | None
    risk_level: str | None
    next_contact_at: dt.datetime | None
    access_level: str
    version: int


@dataclass(frozen=True)
class TrackFilter:
    status: str | None = None
    risk_level: str | None = None
    owner_id: uuid.UUID | None = None
    kind: str | None = None


@dataclass(frozen=True)
class Page:
    rows: list[TrackRow]
    total: int
    limit: int
    offset: int

    @property
    def has_next(self) -> bool:
        return self.offset + len(self.rows) < self.total


@cache
def row_select() -> Any:
    # Built once: statements are immutable (each .where() makes a new one), and building
    # this one, twelve columns and a join, was a tenth of a list page's CPU.
    return select(
        Track.id, Track.code, Track.kind, Track.status, Track.owner_id,
        User.username, Track.opened_at, Track.closed_at, Track.risk_level,
        Track.next_contact_at, Track.access_level, Track.version,
    ).join(User, User.id == Track.owner_id)


@cache
def _count_select() -> Any:
    return select(func.count()).select_from(Track).join(User, User.id == Track.owner_id)


def to_row(row: Sequence[Any]) -> TrackRow:
    return TrackRow(*row)


def _filter_conditions(flt: TrackFilter) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = []
    for value, allowed, column, code in (
        (flt.status, STATUSES, Track.status, "status"),
        (flt.risk_level, RISK_LEVELS, Track.risk_level, "risk_level"),
        (flt.kind, TRACK_KINDS, Track.kind, "kind"),
    ):
        if value is None:
            continue
        if value not in allowed:
            raise ValidationError(f"unknown {code} filter", code=f"filter_{code}")
        conditions.append(column == value)
    if flt.owner_id is not None:
        conditions.append(Track.owner_id == flt.owner_id)
    return conditions


def _page(
    session: Session, conditions: list[ColumnElement[bool]], *, sort: str, descending: bool,
    limit: int, offset: int,
) -> Page:
    key = SORTS.get(sort)
    if key is None:
        raise ValidationError("unknown sort", code="sort")
    if not 1 <= limit <= MAX_PAGE or offset < 0:
        raise ValidationError("bad page", code="page")
    order = key.desc().nulls_last() if descending else key.asc().nulls_last()
    total = session.scalar(_count_select().where(*conditions)) or 0
    rows = session.execute(
        row_select().where(*conditions).order_by(order, Track.code).limit(limit).offset(offset)
    ).all()
    return Page([to_row(r) for r in rows], int(total), limit, offset)


def my_tracks(
    session: Session, *, actor: Actor, flt: TrackFilter | None = None, sort: str = "opened_at",
    descending: bool = True, limit: int = 50, offset: int = 0, now: dt.datetime | None = None,
) -> Page:
    """The tracks whose team the actor is on (owner or member)."""
    access = policy.authorize(session, actor=actor, need=Need.LIST_MINE, now=now)
    conditions = [policy.team_condition(session, access.user_id),
                  *_filter_conditions(flt or TrackFilter())]
    page = _page(session, conditions, sort=sort, descending=descending, limit=limit,
                 offset=offset)
    record(session, action="track.listed", actor=actor, details={
        "scope": "mine", "count": len(page.rows)}, now=now)
    return page


def all_tracks(
    session: Session, *, actor: Actor, flt: TrackFilter | None = None, sort: str = "opened_at",
    descending: bool = True, limit: int = 50, offset: int = 0, now: dt.datetime | None = None,
) -> Page:
    """Every track, for coordinators: codes, status, owner, dates, risk level; no content."""
    policy.authorize(session, actor=actor, need=Need.LIST_ALL, now=now)
    page = _page(session, _filter_conditions(flt or TrackFilter()), sort=sort,
                 descending=descending, limit=limit, offset=offset)
    record(session, action="track.listed", actor=actor, details={
        "scope": "all", "count": len(page.rows)}, now=now)
    return page


def track_row(
    session: Session, *, actor: Actor, track_id: uuid.UUID, now: dt.datetime | None = None
) -> TrackRow:
    """One track's list row (for the track page header), if the actor may know of it."""
    policy.authorize(session, actor=actor, need=Need.SEE, track_id=track_id, now=now)
    return to_row(session.execute(row_select().where(Track.id == track_id)).one())


def _known_tracks(session: Session, access: policy.Access, person_ids: set[uuid.UUID],
                  now: dt.datetime | None, kind: str | None = None) -> list[str]:
    """Codes of the given people's tracks that the caller may know of: all of them for
    someone who lists every track, otherwise those of the caller's own teams."""
    if not person_ids:
        return []
    query = select(Track.code).where(Track.person_id.in_(person_ids))
    if kind is not None:
        query = query.where(Track.kind == kind)
    if not role_has(access.role, "tracks.list"):
        query = query.where(policy.team_condition(session, access.user_id))
    return sorted(session.scalars(query))


def find_by_code(
    session: Session, *, actor: Actor, code: str, now: dt.datetime | None = None
) -> TrackRow | None:
    """Exact search by track code. None when there is no such track the actor may know of."""
    access = policy.authorize(session, actor=actor, need=Need.LIST_MINE, now=now)
    wanted = normalise_code(code)
    track_id = (
        session.scalar(select(Track.id).where(Track.code == wanted)) if wanted else None
    )
    found = None
    if track_id is not None:
        track = session.get(Track, track_id)
        if track is not None and (
            role_has(access.role, "tracks.list")
            or policy.is_on_team(session, track=track, user_id=access.user_id)
        ):
            found = to_row(session.execute(row_select().where(Track.id == track_id)).one())
    record(session, action="track.searched", actor=actor, details={
        "fields": "code", "matches": int(found is not None)}, now=now)
    return found


def find_by_identifier(
    session: Session, *, actor: Actor, personnummer: str | None = None,
    phone: str | None = None, email: str | None = None, now: dt.datetime | None = None,
    kind: str | None = None,
) -> list[str]:
    """Track codes of people with this personnummer, phone or e-mail (blind index, confirmed by
    decryption), limited to the tracks the actor may know of (and to one kind of track when
    `kind` is given). The search terms themselves go nowhere: not into the log, not into an
    error message."""
    access = policy.authorize(session, actor=actor, need=Need.LIST_MINE, now=now)
    return search_identifiers(session, access=access, actor=actor, personnummer=personnummer,
                               phone=phone, email=email, now=now, kind=kind)


def search_identifiers(
    session: Session, *, access: policy.Access, actor: Actor, personnummer: str | None,
    phone: str | None, email: str | None, now: dt.datetime | None, kind: str | None = None,
) -> list[str]:
    crypto = field_crypto(session)
    person_ids: set[uuid.UUID] = set()
    fields = []
    for name, raw in (("personnummer", personnummer), ("phone", phone), ("email", email)):
        if raw is None or not raw.strip():
            continue
        fields.append(name)
        try:
            person_ids.update(p.id for p in crypto.search(session, Person, name, raw))
        except InvalidIdentifier as exc:
            raise ValidationError(exc.message_sv, code=f"invalid_{name}") from None
    if not fields:
        raise ValidationError("give a personnummer, phone or e-mail", code="no_identifier")
    codes = _known_tracks(session, access, person_ids, now, kind)
    record(session, action="track.searched", actor=actor, details={
        "fields": ",".join(fields), "matches": len(codes)}, now=now)
    return codes
