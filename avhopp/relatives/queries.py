"""Read-only views of relative tracks: the page header, the codes a defector page shows for its
linked relative tracks and those a relative page shows for its links (the track lists, search
and team are casework's, with the kind fixed by the caller)."""

from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy import select
from sqlalchemy.orm import Session

from avhopp.audit.policy import Actor
from avhopp.casework import queries
from avhopp.casework.models import Consent, Track
from avhopp.casework.policy import Need, authorize, require_kind
from avhopp.db import utcnow
from avhopp.relatives.models import TrackLink
from avhopp.relatives.services import LinkView, link_is_shown, shown_links


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


def linked_defector_codes(
    session: Session, *, actor: Actor, track_id: uuid.UUID, now: dt.datetime | None = None,
) -> list[LinkView]:
    """For the relative track's page: its shown links (the other track's code only). Needs
    the same access as the page header (a refusal is recorded)."""
    now = now or utcnow()
    require_kind(session, actor=actor, track_id=track_id, kind="relative", now=now)
    authorize(session, actor=actor, need=Need.SEE, track_id=track_id, now=now)
    return shown_links(session, relative_track_id=track_id, day=now.date())
