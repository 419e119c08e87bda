"""Erasure requests: who asked to erase whom, who approved (four-eyes), when it ran."""

from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from avhopp.db import Base, utcnow

INTERNAL = {"data_class": "internal"}

ERASURE_GROUNDS = ("data_subject_request", "no_longer_needed", "retention", "other")
ERASURE_STATES = ("pending", "approved", "executed", "cancelled")
# `track`: the person is a track's person, so erasing them erases the track (four-eyes);
# `person`: someone without a track of their own (one approver).
ERASURE_SCOPES = ("track", "person")
# Why a closed track is kept past its retention date (codes: free text could name people).
EXTEND_REASONS = ("ongoing_matter", "renewed_contact", "legal_hold", "other")


class ErasureRequest(Base):
    """One request to crypto-shred a person. Holds ids and codes only: nothing of the person
    survives their erasure but this pseudonymous receipt."""

    __tablename__ = "erasure_request"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4, info=INTERNAL)
    person_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("person.id"), index=True,
                                                 info=INTERNAL)
    track_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("track.id"), info=INTERNAL)
    scope: Mapped[str] = mapped_column(String(8), info=INTERNAL)
    ground: Mapped[str] = mapped_column(String(24), info=INTERNAL)
    state: Mapped[str] = mapped_column(String(10), index=True, default="pending", info=INTERNAL)
    requested_by: Mapped[uuid.UUID] = mapped_column(ForeignKey("staff_user.id"), info=INTERNAL)
    requested_at: Mapped[dt.datetime] = mapped_column(default=utcnow, info=INTERNAL)
    approved_by: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("staff_user.id"),
                                                          info=INTERNAL)
    approved_at: Mapped[dt.datetime | None] = mapped_column(info=INTERNAL)
    # Erasures approved in a retention review run on or after the track's retention date.
    execute_after: Mapped[dt.datetime | None] = mapped_column(info=INTERNAL)
    executed_at: Mapped[dt.datetime | None] = mapped_column(info=INTERNAL)
    keys_destroyed: Mapped[int | None] = mapped_column(info=INTERNAL)
    cancelled_by: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("staff_user.id"),
                                                           info=INTERNAL)
    cancelled_at: Mapped[dt.datetime | None] = mapped_column(info=INTERNAL)
