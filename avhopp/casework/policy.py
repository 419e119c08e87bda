"""The one access decision for tracks, used by every casework and cases service and query.

Rules (docs/security.md, "Tracks"):

- A track's content is shown to its team (the owner and the members) and to holders of an
  unexpired break-glass grant; nobody else. Board and admin never see content, whatever rows
  say: the role is checked before the team.
- Coordinators see the list of all tracks (code, status, owner, dates, risk level), no content.
- Changes to content need the team; break-glass gives read access only.
- Journal entries marked `team` are hidden from break-glass readers; `named` entries are shown
  only to their author and the users named on them.
- Role, active state, team and grants are read from the database on every call, so a change
  applies to the next call (Z5). Any error in the decision refuses (Z6).
- A refusal is recorded (`track.access_denied`, outcome denied) and raised: Forbidden when the
  user may know the track exists (it is on their list), NotFound otherwise, exactly as for an id
  that does not exist, so the answer does not reveal which tracks exist.
"""

from __future__ import annotations

import datetime as dt
import enum
import logging
import uuid
from dataclasses import dataclass
from functools import cache
from typing import Any

from sqlalchemy import ColumnElement, Integer, bindparam, exists, or_, select
from sqlalchemy.orm import Session

from avhopp.accounts.models import User
from avhopp.audit.policy import Actor
from avhopp.audit.services import record, register_actions
from avhopp.casework.models import BreakGlassGrant, JournalEntry, TeamMember, Track
from avhopp.db import request_memo, utcnow
from avhopp.errors import Forbidden, NotFound
from avhopp.permissions import role_has

logger = logging.getLogger(__name__)

register_actions({"track.access_denied": frozenset({"need", "rule"})})


class Need(enum.StrEnum):
    """What a caller wants to do."""

    LIST_ALL = "list_all"  # the list of every track (no content)
    LIST_MINE = "list_mine"  # the caller's own tracks
    INTAKE = "intake"  # open a new track
    SEE = "see"  # one track's list row: code, status, owner, dates
    READ = "read"  # one track's content
    WORK = "work"  # change one track's content
    ASSIGN = "assign"  # change one track's team or owner
    BREAK_GLASS = "break_glass"  # ask for break-glass access to one track


_COLLECTION_PERMISSIONS = {
    Need.LIST_ALL: "tracks.list",
    Need.LIST_MINE: "tracks.work",
    Need.INTAKE: "tracks.intake",
}

VIA_TEAM = "team"
VIA_BREAK_GLASS = "break_glass"
VIA_ROLE = "role"


@dataclass(frozen=True)
class Access:
    """A granted decision: who, on which track (None for collection needs), and through what."""

    user_id: uuid.UUID
    role: str
    track: Track | None
    via: str

    @property
    def track_or_fail(self) -> Track:
        if self.track is None:  # a programming error: the need was a collection need
            raise RuntimeError("this access is not about one track")
        return self.track

    def sees_entry(self, entry: JournalEntry) -> bool:
        """Whether this reader may see a journal entry of the track."""
        if entry.author_id == self.user_id:
            return True
        if entry.sensitivity == "normal":
            return True
        if entry.sensitivity == "team":
            return self.via == VIA_TEAM
        if entry.sensitivity == "named":
            return str(self.user_id) in (entry.named_user_ids or [])
        return False  # an unknown marking hides the entry


class _Refused(Exception):
    def __init__(self, rule: str, *, known: bool, track: Track | None = None) -> None:
        super().__init__(rule)
        self.rule = rule
        self.known = known
        self.track = track


# Up to this many team tracks are read first and taken by primary key (see team_condition).
TEAM_IDS_LIMIT = 500


def team_condition(session: Session, user_id: uuid.UUID) -> ColumnElement[bool]:
    """SQL: tracks whose team `user_id` is on (owner or member).

    A support worker's tracks (usually a few dozen) are read first, two index lookups, and the
    caller's query takes them by primary key: as a subquery both planners misjudged it with
    10,000 tracks (SQLite walked the status index over every track; PostgreSQL, whose
    statistics say an owner has thousands of tracks, scanned the whole table), about 5 ms a
    query and a list page asks twice. Someone on more than TEAM_IDS_LIMIT teams gets the
    subquery, where a long list of ids would cost more than the scan."""
    ids = session.scalars(_team_track_ids(),
                          {"user_id": user_id, "limit": TEAM_IDS_LIMIT + 1}).all()
    if len(ids) <= TEAM_IDS_LIMIT:
        # One expanding parameter: `in_(ids)` would coerce every id into its own bound
        # literal while building the statement (a fifth of a list page's CPU).
        return Track.id.in_(bindparam("team_track_ids", ids, expanding=True, unique=True,
                                      type_=Track.__table__.c.id.type))
    return or_(
        Track.owner_id == user_id,
        Track.id.in_(select(TeamMember.track_id).where(TeamMember.user_id == user_id)),
    )


@cache
def _team_track_ids() -> Any:
    # Built once: the statement is the same for everyone (the user is a parameter), and
    # building it, a union with a limit, cost more than running it.
    user_id = bindparam("user_id", type_=TeamMember.__table__.c.user_id.type)
    return (select(Track.id).where(Track.owner_id == user_id)
            .union(select(TeamMember.track_id).where(TeamMember.user_id == user_id))
            .limit(bindparam("limit", type_=Integer)))


def is_on_team(session: Session, *, track: Track, user_id: uuid.UUID) -> bool:
    if track.owner_id == user_id:
        return True
    return bool(session.scalar(select(exists().where(
        TeamMember.track_id == track.id, TeamMember.user_id == user_id))))


def active_grant(
    session: Session, *, track_id: uuid.UUID, user_id: uuid.UUID, now: dt.datetime
) -> BreakGlassGrant | None:
    return session.scalars(
        select(BreakGlassGrant).where(
            BreakGlassGrant.track_id == track_id,
            BreakGlassGrant.user_id == user_id,
            BreakGlassGrant.expires_at > now,
        ).order_by(BreakGlassGrant.expires_at.desc()).limit(1)
    ).first()


def _current_role(session: Session, actor: Actor) -> str:
    # Columns, not the User entity: the identity map could hold a row loaded before a change.
    row = session.execute(
        select(User.role, User.is_active).where(User.id == actor.id)
    ).one_or_none()
    if row is None or not row.is_active:
        raise _Refused("inactive", known=False)
    return str(row.role)


def _decide(  # noqa: PLR0911, PLR0912  one flat list of rules is easier to review
    session: Session, actor: Actor, need: Need, track_id: uuid.UUID | None, now: dt.datetime
) -> Access:
    if actor is None:
        raise _Refused("anonymous", known=False)
    role = _current_role(session, actor)
    if track_id is None:
        permission = _COLLECTION_PERMISSIONS.get(need)
        if permission is None:
            raise _Refused("needs_track", known=False)
        if not role_has(role, permission):
            raise _Refused("role", known=True)
        return Access(actor.id, role, None, VIA_ROLE)

    track = session.get(Track, track_id)
    if track is None:
        raise _Refused("unknown_track", known=False)
    works = role_has(role, "tracks.work")
    on_team = works and is_on_team(session, track=track, user_id=actor.id)
    grant = (
        active_grant(session, track_id=track.id, user_id=actor.id, now=now)
        if works and not on_team else None
    )
    known = on_team or grant is not None or role_has(role, "tracks.list")

    def refuse(rule: str) -> _Refused:
        return _Refused(rule, known=known, track=track)

    if need is Need.SEE:
        if known:
            return Access(actor.id, role, track, VIA_TEAM if on_team else VIA_ROLE)
        raise refuse("not_listed")
    if need is Need.ASSIGN:
        if role_has(role, "tracks.assign"):
            return Access(actor.id, role, track, VIA_ROLE)
        raise refuse("role")
    if need is Need.BREAK_GLASS:
        if not role_has(role, "tracks.break_glass"):
            raise refuse("role")
        if track.access_level == "named":
            raise _Refused("named_access", known=True, track=track)
        # Someone who asks by id knows the track exists; the grant is decided by the service.
        return Access(actor.id, role, track, VIA_ROLE)
    if not works:
        raise refuse("role")
    if need is Need.WORK:
        if on_team:
            return Access(actor.id, role, track, VIA_TEAM)
        raise refuse("not_on_team")
    if need is Need.READ:
        if on_team:
            return Access(actor.id, role, track, VIA_TEAM)
        if grant is not None:
            return Access(actor.id, role, track, VIA_BREAK_GLASS)
        raise refuse("not_on_team")
    raise refuse("unknown_need")


def authorize(
    session: Session,
    *,
    actor: Actor,
    need: Need,
    track_id: uuid.UUID | None = None,
    now: dt.datetime | None = None,
) -> Access:
    """Decide whether `actor` may do `need` (on `track_id`); record and raise a refusal.

    Raises Forbidden or NotFound (see the module docstring). The denied event is written in the
    caller's transaction; callers commit after a refusal to keep it (nothing else has changed).
    """
    now = now or utcnow()
    memo = request_memo(session)
    key = ("access", actor.id if actor is not None else None, need, track_id)
    if memo is not None and key in memo:
        return memo[key]  # type: ignore[no-any-return]
    try:
        access = _decide(session, actor, need, track_id, now)
    except _Refused as refusal:
        failure = refusal
    except Exception:
        # Fail closed (Z6): whatever went wrong, the answer is no.
        logger.exception("track access decision failed need=%s", need.value)
        failure = _Refused("error", known=False)
    else:
        # A track page asks several times in one request; the answer holds until the request
        # changes something (the memo is emptied then). Break-glass access is time-limited, so
        # it is decided afresh every time.
        if memo is not None and access.via != VIA_BREAK_GLASS:
            memo[key] = access
        return access
    object_id = (
        failure.track.code if failure.track is not None
        else str(track_id) if track_id is not None else None
    )
    record(session, action="track.access_denied", actor=actor, outcome="denied",
           object_type="track" if object_id else None, object_id=object_id,
           details={"need": need.value, "rule": failure.rule}, now=now)
    if failure.known:
        raise Forbidden("no access to this track", code=f"track_{failure.rule}")
    raise NotFound("no such track", code="track_not_found")


def require_kind(
    session: Session,
    *,
    actor: Actor,
    track_id: uuid.UUID,
    kind: str,
    need: Need = Need.SEE,
    now: dt.datetime | None = None,
) -> None:
    """Refuse a track of another kind exactly like an unknown id (NotFound), recorded as
    `track.access_denied` with rule `wrong_kind`: a defector page never serves a relative
    track and a relative page never serves a defector track, whoever asks (docs/security.md,
    "Relative tracks"). Access to a track of the right kind is still for `authorize`."""
    found = session.scalar(select(Track.kind).where(Track.id == track_id))
    if found == kind:
        return
    now = now or utcnow()
    code = session.scalar(select(Track.code).where(Track.id == track_id))
    record(session, action="track.access_denied", actor=actor, outcome="denied",
           object_type="track", object_id=code or str(track_id),
           details={"need": need.value, "rule": "wrong_kind" if found else "unknown_track"},
           now=now)
    raise NotFound("no such track", code="track_not_found")
