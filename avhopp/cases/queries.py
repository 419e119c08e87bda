"""Read-only lists of defector tracks: the shared track lists with the kind fixed."""

from __future__ import annotations

import dataclasses
import datetime as dt

from sqlalchemy.orm import Session

from avhopp.audit.policy import Actor
from avhopp.casework import queries
from avhopp.casework.queries import Page, TrackFilter


def my_defector_tracks(
    session: Session, *, actor: Actor, flt: TrackFilter | None = None, sort: str = "opened_at",
    descending: bool = True, limit: int = 50, offset: int = 0, now: dt.datetime | None = None,
) -> Page:
    flt = dataclasses.replace(flt or TrackFilter(), kind="defector")
    return queries.my_tracks(session, actor=actor, flt=flt, sort=sort, descending=descending,
                             limit=limit, offset=offset, now=now)


def all_defector_tracks(
    session: Session, *, actor: Actor, flt: TrackFilter | None = None, sort: str = "opened_at",
    descending: bool = True, limit: int = 50, offset: int = 0, now: dt.datetime | None = None,
) -> Page:
    flt = dataclasses.replace(flt or TrackFilter(), kind="defector")
    return queries.all_tracks(session, actor=actor, flt=flt, sort=sort, descending=descending,
                              limit=limit, offset=offset, now=now)
