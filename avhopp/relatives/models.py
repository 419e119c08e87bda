"""The relative track's own records (anhörigärende): RelativeCase, 1:1 with its Track, and the
link from a relative track to a defector track.

Everything a relative tells about themselves or about the person of concern is an `Encrypted`
field under the relative's own data key (the relative is the Person of the track): erasing one
relative shreds only their track. Only the relation code stays plain, so the regional picture
can count relatives by relation without decrypting anything.
"""

from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy import ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from avhopp.casework.models import WithUuid
from avhopp.db import Base, utcnow
from avhopp.encryption.orm import Encrypted

INTERNAL = {"data_class": "internal"}

RELATIONS = ("parent", "sibling", "partner", "child", "other_relative", "friend", "other")
# The environment as the relative perceives it (their impression, not an established fact).
PERCEIVED_ENVIRONMENTS = ("violent_islamism", "white_power", "autonomous_left", "other_mixed",
                          "unknown")
OBSERVED_SIGNS = ("isolation", "new_rhetoric", "symbols", "violence", "travel_plans",
                  "online_activity")
NEEDS = ("information", "counselling", "relating_communicating", "safety_plan",
         "network_meeting", "support_group", "authority_contact", "practical_help")
EXIT_ROLES = ("none", "supportive_contact", "housing_help", "contact_bridge")
YES_NO = ("yes", "no", "unknown")


class RelativeCase(Base):
    """The relative-specific part of a track; its id is the track's id (set by the intake
    service before the INSERT, as encryption needs). Multiple-choice answers (signs, needs) are
    stored as comma-separated codes inside one encrypted field."""

    __tablename__ = "relative_case"
    __encryption_subject__ = "person_id"

    id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("track.id", ondelete="CASCADE"), primary_key=True, info=INTERNAL
    )
    person_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("person.id"), index=True, info=INTERNAL
    )
    version: Mapped[int] = mapped_column(default=1, info=INTERNAL)
    relation: Mapped[str] = mapped_column(String(16), info=INTERNAL)

    # The relative's own contact situation
    safe_contact_method = Encrypted[str]("text")
    concern_knows_of_contact = Encrypted[str]("text", data_class="sensitive")
    # The person of concern, when not (or not yet) linked to a defector track: minimal.
    concern_birth_year = Encrypted[int]("int", data_class="sensitive")
    concern_environment = Encrypted[str]("text", data_class="sensitive")
    # Concerns and situation
    observed_signs = Encrypted[str]("text", data_class="sensitive")
    observed_text = Encrypted[str]("text", data_class="sensitive")
    children_in_household = Encrypted[str]("text", data_class="sensitive")
    concern_report_on = Encrypted[dt.date]("date", data_class="sensitive")
    threats_against_relative = Encrypted[str]("text", data_class="sensitive")
    threats_text = Encrypted[str]("text", data_class="sensitive")
    wellbeing = Encrypted[int]("int", data_class="sensitive")
    wellbeing_text = Encrypted[str]("text", data_class="sensitive")
    # Needs and role in the exit
    needs = Encrypted[str]("text", data_class="sensitive")
    exit_role = Encrypted[str]("text", data_class="sensitive")
    agreements = Encrypted[str]("text", data_class="sensitive")
    # Closure: the reason code and date are on the Track; this is the relative's own note.
    closing_note = Encrypted[str]("text", data_class="sensitive")

    __mapper_args__ = {"version_id_col": version}


class TrackLink(WithUuid, Base):
    """A relative track linked to a defector track. It holds ids only: a page shows that the
    link exists and the other track's code, nothing else. It rests on a consent recorded on
    the relative track; while that consent is not in force (revoked, expired) the link is not
    shown anywhere. Removing a link keeps the row (removed_at) as evidence."""

    __tablename__ = "track_link"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, info=INTERNAL)
    relative_track_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("track.id", ondelete="CASCADE"), index=True, info=INTERNAL
    )
    defector_track_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("track.id", ondelete="CASCADE"), index=True, info=INTERNAL
    )
    consent_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("consent.id"), info=INTERNAL)
    created_by: Mapped[uuid.UUID] = mapped_column(ForeignKey("staff_user.id"), info=INTERNAL)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow, info=INTERNAL)
    removed_at: Mapped[dt.datetime | None] = mapped_column(info=INTERNAL)

    __table_args__ = (Index("ix_track_link_pair", "relative_track_id", "defector_track_id"),)
