"""Read-only lists of relative tracks (the shared track lists with the kind fixed), the codes
a defector page shows for its linked relative tracks, and the staff for a track's team."""

from __future__ import annotations

import dataclasses
import datetime as dt
import uuid

from sqlalchemy import select
from sqlalchemy.orm import Session

from avhopp.accounts.models import User
from avhopp.audit.policy import Actor
from avhopp.casework import queries
from avhopp.casework.models import Consent, Track
from avhopp.casework.policy import Need, authorize, require_kind
from avhopp.casework.queries import Page, TrackFilter
from avhopp.casework.services import team_of
from avhopp.db import utcnow
from avhopp.permissions import role_has
from avhopp.relatives.models import TrackLink
from avhopp.relatives.services import LinkView, link_is_shown, shown_links


def my_relative_tracks(
    session: Session, *, actor: Actor, flt: TrackFilter | None = None, sort: str = "opened_at",
    descending: bool = True, limit: int = 50, offset: int = 0, now: dt.datetime | None = None,
) -> Page:
    flt = dataclasses.replace(flt or TrackFilter(), kind="relative")
    return queries.my_tracks(session, actor=actor, flt=flt, sort=sort, descending=descending,
                             limit=limit, offset=offset, now=now)


def all_relative_tracks(
    session: Session, *, actor: Actor, flt: TrackFilter | None = None, sort: str = "opened_at",
    descending: bool = True, limit: int = 50, offset: int = 0, now: dt.datetime | None = None,
) -> Page:
    flt = dataclasses.replace(flt or TrackFilter(), kind="relative")
    return queries.all_tracks(session, actor=actor, flt=flt, sort=sort, descending=descending,
                              limit=limit, offset=offset, now=now)


def relative_track_row(
    session: Session, *, actor: Actor, track_id: uuid.UUID, now: dt.datetime | None = None,
) -> queries.TrackRow:
    """The list row of a relative track (the page header); other kinds are unknown ids."""
    require_kind(session, actor=actor, track_id=track_id, kind="relative", now=now)
    return queries.track_row(session, actor=actor, track_id=track_id, now=now)


def linked_relative_codes(
    session: Session, *, actor: Actor, defector_track_id: uuid.UUID,
    now: dt.datetime | None = None,
) -> list[str]:
    """For a defector track's page: the codes of the relative tracks linked to it whose link
    is shown (consent in force). Nothing else of those tracks. Needs the same access as the
    page header (a refusal is recorded)."""
    now = now or utcnow()
    access = authorize(session, actor=actor, need=Need.SEE, track_id=defector_track_id, now=now)
    track = access.track_or_fail
    if track.kind != "defector":
        return []
    rows = session.execute(
        select(TrackLink, Consent, Track.code)
        .join(Consent, Consent.id == TrackLink.consent_id)
        .join(Track, Track.id == TrackLink.relative_track_id)
        .where(TrackLink.defector_track_id == track.id)
        .order_by(Track.code)).all()
    return sorted({code for link, consent, code in rows
                   if link_is_shown(link, consent, now.date())})


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


def team(
    session: Session, *, actor: Actor, track_id: uuid.UUID, now: dt.datetime | None = None,
) -> list[StaffOption]:
    """A relative track's team, owner first, for whoever may change it (refusals recorded)."""
    access = authorize(session, actor=actor, need=Need.ASSIGN, track_id=track_id, now=now)
    track: Track = access.track_or_fail
    ids = team_of(session, track)
    users = {u.id: u for u in session.scalars(select(User).where(User.id.in_(ids)))}
    return [StaffOption(i, users[i].username, users[i].role) for i in ids if i in users]


def linked_defector_codes(
    session: Session, *, actor: Actor, track_id: uuid.UUID, now: dt.datetime | None = None,
) -> list[LinkView]:
    """For the relative track's page: its shown links (the other track's code only). Needs
    the same access as the page header (a refusal is recorded)."""
    now = now or utcnow()
    require_kind(session, actor=actor, track_id=track_id, kind="relative", now=now)
    authorize(session, actor=actor, need=Need.SEE, track_id=track_id, now=now)
    return shown_links(session, relative_track_id=track_id, day=now.date())
