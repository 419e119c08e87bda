"""The defector track's own records: background, safe contact, safety plan and closure
(DefectorCase, 1:1 with the Track), risk assessments and protective measures.

Environment and background are special-category data (GDPR art. 9): every such value is an
`Encrypted` field under the person's data key. Only codes the lists filter by stay plain.
"""

from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from avhopp.casework.models import WithUuid
from avhopp.db import Base, utcnow
from avhopp.encryption.orm import Encrypted

INTERNAL = {"data_class": "internal"}

ENVIRONMENTS = ("violent_islamism", "white_power", "autonomous_left", "other_mixed",
                "not_established")
INVOLVEMENTS = ("sympathiser", "active", "leading_recruiter")
ARENAS = ("physical_group", "online", "prison", "conflict_zone_returnee")
RISK_DIMENSIONS = ("threat_from_environment", "violence_to_others", "re_engagement",
                   "self_harm", "threat_to_relatives")
MEASURE_KINDS = ("protected_data", "sheltered_housing", "new_phone_number", "digital_exit",
                 "tattoo_removal", "other")
MEASURE_STATUSES = ("planned", "applied", "granted", "done", "refused", "stopped")
GENDERS = ("woman", "man", "non_binary", "not_stated")


class DefectorCase(Base):
    """The defector-specific part of a track; its id is the track's id (set by the intake
    service before the INSERT, as encryption needs)."""

    __tablename__ = "defector_case"
    __encryption_subject__ = "person_id"

    id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("track.id", ondelete="CASCADE"), primary_key=True, info=INTERNAL
    )
    person_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("person.id"), index=True, info=INTERNAL
    )
    version: Mapped[int] = mapped_column(default=1, info=INTERNAL)

    # Background (bakgrund)
    environment = Encrypted[str]("text", data_class="sensitive")
    involvement = Encrypted[str]("text", data_class="sensitive")
    years_in_environment = Encrypted[int]("int", data_class="sensitive")
    arena = Encrypted[str]("text", data_class="sensitive")
    reasons_for_leaving = Encrypted[str]("text", data_class="sensitive")
    voluntariness_confirmed_on = Encrypted[dt.date]("date", data_class="sensitive")
    # Safe contact method (säker kontaktväg); "yes"/"no" answers are text, not booleans.
    safe_contact_channel = Encrypted[str]("text")
    safe_contact_times = Encrypted[str]("text")
    safe_contact_code_word = Encrypted[str]("text", data_class="sensitive")
    safe_contact_may_leave_messages = Encrypted[str]("text")
    environment_knows_of_contact = Encrypted[str]("text", data_class="sensitive")
    # Person details of the defector track (DOMAIN.md "Person"); kept beside the safe contact,
    # under the person's key. "yes"/"no"/"unknown" answers are text, as above.
    gender = Encrypted[str]("text")
    language = Encrypted[str]("text")
    interpreter_needed = Encrypted[str]("text")
    children_in_household = Encrypted[str]("text")
    # Protection
    safety_plan = Encrypted[str]("text", data_class="sensitive")
    # Closure: the reason code is on the Track (both kinds close); these are the defector's.
    closing_assessment = Encrypted[str]("text", data_class="sensitive")
    handed_over_to = Encrypted[str]("text")

    __mapper_args__ = {"version_id_col": version}


class RiskAssessment(WithUuid, Base):
    """One risk and threat assessment; repeatable, never edited (a new one supersedes)."""

    __tablename__ = "risk_assessment"
    __encryption_subject__ = "person_id"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, info=INTERNAL)
    track_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("track.id", ondelete="CASCADE"), index=True, info=INTERNAL
    )
    person_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("person.id"), index=True, info=INTERNAL
    )
    assessed_on: Mapped[dt.date] = mapped_column(info=INTERNAL)
    assessor_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("staff_user.id"), info=INTERNAL)
    # Plain: lists filter by it and it sets the follow-up cadence.
    overall_level: Mapped[str] = mapped_column(String(8), info=INTERNAL)
    reassess_by: Mapped[dt.date | None] = mapped_column(info=INTERNAL)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow, info=INTERNAL)

    # Each dimension's level is itself sensitive (self-harm risk is health data).
    threat_from_environment = Encrypted[str]("text", data_class="sensitive")
    threat_from_environment_comment = Encrypted[str]("text", data_class="sensitive")
    violence_to_others = Encrypted[str]("text", data_class="sensitive")
    violence_to_others_comment = Encrypted[str]("text", data_class="sensitive")
    re_engagement = Encrypted[str]("text", data_class="sensitive")
    re_engagement_comment = Encrypted[str]("text", data_class="sensitive")
    self_harm = Encrypted[str]("text", data_class="sensitive")
    self_harm_comment = Encrypted[str]("text", data_class="sensitive")
    threat_to_relatives = Encrypted[str]("text", data_class="sensitive")
    threat_to_relatives_comment = Encrypted[str]("text", data_class="sensitive")
    protective_factors = Encrypted[str]("text", data_class="sensitive")


class ProtectiveMeasure(WithUuid, Base):
    """A protective measure (protected personal data, move, new number, digital exit …)."""

    __tablename__ = "protective_measure"
    __encryption_subject__ = "person_id"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, info=INTERNAL)
    track_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("track.id", ondelete="CASCADE"), index=True, info=INTERNAL
    )
    person_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("person.id"), index=True, info=INTERNAL
    )
    kind: Mapped[str] = mapped_column(String(24), info=INTERNAL)
    status: Mapped[str] = mapped_column(String(12), info=INTERNAL)
    started_on: Mapped[dt.date | None] = mapped_column(info=INTERNAL)
    ended_on: Mapped[dt.date | None] = mapped_column(info=INTERNAL)
    created_by: Mapped[uuid.UUID] = mapped_column(ForeignKey("staff_user.id"), info=INTERNAL)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow, info=INTERNAL)
    version: Mapped[int] = mapped_column(default=1, info=INTERNAL)
    note = Encrypted[str]("text", data_class="sensitive")

    __mapper_args__ = {"version_id_col": version}
