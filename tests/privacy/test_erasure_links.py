"""Erasing a relative through the four-eyes erasure ends their track links; the other
relative's link to the defector track stays."""

from __future__ import annotations

from sqlalchemy import select

from avhopp.privacy import erasure
from avhopp.relatives import services as relatives
from avhopp.relatives.models import TrackLink
from tests.casework.helpers import NOW
from tests.conftest import make_user
from tests.relatives.helpers import RelativesWorld, link


def test_erasing_a_linked_relative_ends_the_link_and_spares_the_others(app, db):
    world = RelativesWorld(app, db)
    link(db, world, world.r1)
    link(db, world, world.r2)
    approver = make_user(app, role="coordinator")
    request = erasure.request_erasure(
        db, actor=world.coordinator, track_id=world.r1.id, ground="data_subject_request",
        confirm_code=world.r1.code, reauthenticated_at=NOW, now=NOW)
    db.commit()
    erasure.approve_erasure(db, actor=approver, request_id=request.id,
                            reauthenticated_at=NOW, now=NOW)
    db.commit()
    live = db.scalars(select(TrackLink).where(TrackLink.removed_at.is_(None))).all()
    assert [(row.relative_track_id, row.defector_track_id) for row in live] == [
        (world.r2.id, world.d)]
    assert len(relatives.shown_links(db, relative_track_id=world.r2.id, day=NOW.date())) == 1
    assert relatives.shown_links(db, relative_track_id=world.r1.id, day=NOW.date()) == []
