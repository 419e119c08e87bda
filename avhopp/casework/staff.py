"""Staff who may join a track's team, and a track's team: names and roles, never content."""

from __future__ import annotations

import dataclasses
import datetime as dt
import uuid

from sqlalchemy import select
from sqlalchemy.orm import Session

from avhopp.accounts.models import User
from avhopp.audit.policy import Actor
from avhopp.casework.models import Track
from avhopp.casework.policy import Need, authorize
from avhopp.casework.services import team_of
from avhopp.permissions import role_has


@dataclasses.dataclass(frozen=True)
class StaffOption:
    id: uuid.UUID
    username: str
    role: str


def team_candidates(session: Session) -> list[StaffOption]:
    """Active staff who work tracks (coordinators and support workers), by username."""
    users = session.scalars(select(User).where(User.is_active.is_(True))
                            .order_by(User.username))
    return [StaffOption(u.id, u.username, u.role) for u in users if role_has(u.role, "tracks.work")]


def _team(session: Session, track: Track) -> list[StaffOption]:
    ids = team_of(session, track)
    users = {u.id: u for u in session.scalars(select(User).where(User.id.in_(ids)))}
    return [StaffOption(i, users[i].username, users[i].role) for i in ids if i in users]


def team(
    session: Session, *, actor: Actor, track_id: uuid.UUID, now: dt.datetime | None = None,
) -> list[StaffOption]:
    """A track's team, owner first, for whoever may change it (a refusal is recorded)."""
    access = authorize(session, actor=actor, need=Need.ASSIGN, track_id=track_id, now=now)
    return _team(session, access.track_or_fail)


def team_names(
    session: Session, *, actor: Actor, track_id: uuid.UUID, now: dt.datetime | None = None,
) -> list[StaffOption]:
    """A track's team, owner first, for anyone who may see the track's row (the names are no
    content: lists show the owner too). Used to name who may read a journal entry."""
    access = authorize(session, actor=actor, need=Need.SEE, track_id=track_id, now=now)
    return _team(session, access.track_or_fail)
