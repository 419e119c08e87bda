"""What both tracks share: the data subject (Person), the track, its team and break-glass
grants, journal, plan goals, consents and agency contacts.

Every column carries its data class (SECURITY.md D1). Personal and sensitive values are
`Encrypted` fields, sealed under the Person's data key: child rows name that person in
`person_id` (their encryption subject) so erasing the person shreds the whole track.
Categorical codes (status, contact type, life domain …) stay plain and `internal`: lists and
the anonymised statistics filter and count by them without decrypting anything.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from avhopp.db import Base, utcnow
from avhopp.encryption.orm import Encrypted

INTERNAL = {"data_class": "internal"}

# --- vocabularies (codes stored in plain columns; labels live in the UI) ------------------------

TRACK_KINDS = ("defector", "relative")
STATUSES = ("inquiry", "intake", "active", "dormant", "closed", "after_care")
OPEN_STATUSES = ("inquiry", "intake", "active", "dormant")
ACCESS_LEVELS = ("normal", "named")
REFERRAL_SOURCES = (
    "self", "relative", "social_services", "police", "security_service", "school",
    "prison_probation", "cve", "relatives_helpline", "other_organisation",
)
CLOSURE_REASONS = (
    "goal_reached", "client_ended", "contact_lost", "handed_over", "moved",
    "returned_to_environment", "other",
)
RISK_LEVELS = ("low", "medium", "high", "acute")
PROTECTED_DATA_LEVELS = (
    "none", "confidentiality_mark", "protected_registration", "assumed_identity",
)
CONTACT_TYPES = (
    "meeting", "phone", "digital", "home_visit", "multi_agency_meeting", "authority_visit",
    "attempt_without_contact",
)
SENSITIVITIES = ("normal", "team", "named")
LIFE_DOMAINS = (
    "housing", "income_work", "education", "health", "addiction", "social_network",
    "identity_ideology", "safety", "legal", "digital",
)
GOAL_STATUSES = ("not_started", "ongoing", "achieved", "partly", "stopped")
CONSENT_TYPES = ("processing", "special_category", "sharing", "relative_contact", "statistics")
CONSENT_FORMS = ("written", "oral")
DATA_CATEGORIES = (
    "identity", "contact_details", "risk_threat", "planned_interventions", "health",
    "environment",
)
AGENCIES = (
    "police", "social_services", "school", "security_service", "cve", "prison_probation",
    "housing_company", "employment_service", "healthcare", "other",
)
LEGAL_BASES = ("consent", "legal_obligation", "vital_interest")


def _track_fk() -> Any:
    return mapped_column(ForeignKey("track.id", ondelete="CASCADE"), index=True, info=INTERNAL)


def _person_fk() -> Any:
    return mapped_column(ForeignKey("person.id"), index=True, info=INTERNAL)


def _user_fk(*, nullable: bool = False) -> Any:
    return mapped_column(ForeignKey("staff_user.id"), nullable=nullable, info=INTERNAL)


class WithUuid:
    """Rows with encrypted fields get their id in the constructor: the id is part of every
    field's associated data, so it must exist before the INSERT (DESIGN.md §4)."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("id", uuid.uuid4())
        super().__init__(**kwargs)


class Person(Base):
    """A person the organisation supports (a defector or a relative). Everything that
    identifies them is encrypted under their own data key; search is by blind index only."""

    __tablename__ = "person"
    __encryption_subject__ = "id"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, info=INTERNAL)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow, info=INTERNAL)
    # Optimistic locking (SECURITY.md D6).
    version: Mapped[int] = mapped_column(default=1, info=INTERNAL)

    name = Encrypted[str]("text")
    alias = Encrypted[str]("text")
    personnummer = Encrypted[str]("text", index="personnummer", data_class="sensitive")
    birth_year = Encrypted[int]("int")
    phone = Encrypted[str]("text", index="phone")
    email = Encrypted[str]("text", index="email")
    address = Encrypted[str]("text")
    # Skyddade personuppgifter: a property of the person whichever track they are in; while it
    # is set, address and contact details stay hidden unless a reader asks for them.
    protected_data_level = Encrypted[str]("text", data_class="sensitive")

    __mapper_args__ = {"version_id_col": version}

    def __init__(self, **kwargs: Any) -> None:
        # The id is part of every field's associated data, so it exists before the INSERT.
        kwargs.setdefault("id", uuid.uuid4())
        super().__init__(**kwargs)


class Track(Base):
    """One support track (defector or relative) about one Person. Holds no personal values:
    only codes, dates and staff ids, so lists never decrypt."""

    __tablename__ = "track"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4, info=INTERNAL)
    kind: Mapped[str] = mapped_column(String(10), info=INTERNAL)
    code: Mapped[str] = mapped_column(String(12), unique=True, info=INTERNAL)
    status: Mapped[str] = mapped_column(String(16), index=True, info=INTERNAL)
    owner_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("staff_user.id"), index=True, info=INTERNAL
    )
    person_id: Mapped[uuid.UUID] = _person_fk()
    opened_at: Mapped[dt.datetime] = mapped_column(default=utcnow, info=INTERNAL)
    closed_at: Mapped[dt.datetime | None] = mapped_column(info=INTERNAL)
    closure_reason: Mapped[str | None] = mapped_column(String(32), info=INTERNAL)
    retention_until: Mapped[dt.date | None] = mapped_column(info=INTERNAL)
    # Categories, not free text: the regional picture counts by them (DOMAIN.md).
    referral_source: Mapped[str] = mapped_column(String(32), info=INTERNAL)
    municipality: Mapped[str | None] = mapped_column(String(8), info=INTERNAL)
    access_level: Mapped[str] = mapped_column(String(8), default="normal", info=INTERNAL)
    # The overall level of the latest risk assessment, kept here so lists filter by it and
    # follow-ups take their cadence from it without reading the assessment.
    risk_level: Mapped[str | None] = mapped_column(String(8), index=True, info=INTERNAL)
    # The next planned contact (from the journal) until follow-ups take over.
    next_contact_at: Mapped[dt.datetime | None] = mapped_column(info=INTERNAL)
    version: Mapped[int] = mapped_column(default=1, info=INTERNAL)

    __mapper_args__ = {"version_id_col": version}


class TeamMember(Base):
    """A staff member on a track's team (the owner is on the team without a row here)."""

    __tablename__ = "team_member"

    track_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("track.id", ondelete="CASCADE"), primary_key=True, info=INTERNAL
    )
    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("staff_user.id"), primary_key=True, index=True, info=INTERNAL
    )
    added_at: Mapped[dt.datetime] = mapped_column(default=utcnow, info=INTERNAL)
    added_by: Mapped[uuid.UUID | None] = _user_fk(nullable=True)


class BreakGlassGrant(WithUuid, Base):
    """Time-limited access for someone outside the team (nödåtkomst). The reason may name
    circumstances of the person, so it is encrypted under their key."""

    __tablename__ = "break_glass_grant"
    __encryption_subject__ = "person_id"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, info=INTERNAL)
    track_id: Mapped[uuid.UUID] = _track_fk()
    person_id: Mapped[uuid.UUID] = _person_fk()
    user_id: Mapped[uuid.UUID] = _user_fk()
    granted_at: Mapped[dt.datetime] = mapped_column(info=INTERNAL)
    expires_at: Mapped[dt.datetime] = mapped_column(info=INTERNAL)
    reason = Encrypted[str]("text")

    __table_args__ = (Index("ix_break_glass_grant_user_track", "user_id", "track_id"),)


class JournalEntry(WithUuid, Base):
    """An append-only journal entry. There is no update or delete service: a correction is a
    new entry whose `corrects_id` points at the entry it corrects."""

    __tablename__ = "journal_entry"
    __encryption_subject__ = "person_id"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, info=INTERNAL)
    track_id: Mapped[uuid.UUID] = _track_fk()
    person_id: Mapped[uuid.UUID] = _person_fk()
    occurred_at: Mapped[dt.datetime] = mapped_column(info=INTERNAL)
    duration_minutes: Mapped[int | None] = mapped_column(info=INTERNAL)
    contact_type: Mapped[str] = mapped_column(String(32), info=INTERNAL)
    contact_achieved: Mapped[bool] = mapped_column(info=INTERNAL)
    sensitivity: Mapped[str] = mapped_column(String(8), default="normal", info=INTERNAL)
    # Staff ids only; who may read a `named` entry besides its author.
    named_user_ids: Mapped[list[str]] = mapped_column(JSON, default=list, info=INTERNAL)
    corrects_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("journal_entry.id"), info=INTERNAL
    )
    author_id: Mapped[uuid.UUID] = _user_fk()
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow, info=INTERNAL)
    next_contact_at: Mapped[dt.datetime | None] = mapped_column(info=INTERNAL)
    participants = Encrypted[str]("text")
    note = Encrypted[str]("text", data_class="sensitive")


class PlanGoal(WithUuid, Base):
    """A goal of the action plan, edited in place under optimistic locking (D6)."""

    __tablename__ = "plan_goal"
    __encryption_subject__ = "person_id"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, info=INTERNAL)
    track_id: Mapped[uuid.UUID] = _track_fk()
    person_id: Mapped[uuid.UUID] = _person_fk()
    life_domain: Mapped[str] = mapped_column(String(32), info=INTERNAL)
    start_on: Mapped[dt.date | None] = mapped_column(info=INTERNAL)
    target_on: Mapped[dt.date | None] = mapped_column(info=INTERNAL)
    status: Mapped[str] = mapped_column(String(16), default="not_started", info=INTERNAL)
    agreed_on: Mapped[dt.date | None] = mapped_column(info=INTERNAL)
    created_by: Mapped[uuid.UUID] = _user_fk()
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow, info=INTERNAL)
    version: Mapped[int] = mapped_column(default=1, info=INTERNAL)
    goal = Encrypted[str]("text", data_class="sensitive")
    sub_goal = Encrypted[str]("text", data_class="sensitive")
    intervention = Encrypted[str]("text", data_class="sensitive")
    provider = Encrypted[str]("text")

    __mapper_args__ = {"version_id_col": version}


class Consent(WithUuid, Base):
    """One consent per type, scope and recipient. Never deleted; revoked by date."""

    __tablename__ = "consent"
    __encryption_subject__ = "person_id"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, info=INTERNAL)
    track_id: Mapped[uuid.UUID] = _track_fk()
    person_id: Mapped[uuid.UUID] = _person_fk()
    consent_type: Mapped[str] = mapped_column(String(20), info=INTERNAL)
    # The kind of recipient of a sharing consent (an AGENCIES code), so that an agency contact
    # can be matched to its consent without decrypting; the named recipient is `recipient`.
    recipient_agency: Mapped[str | None] = mapped_column(String(32), info=INTERNAL)
    scope: Mapped[list[str]] = mapped_column(JSON, default=list, info=INTERNAL)
    form: Mapped[str] = mapped_column(String(8), info=INTERNAL)
    recorded_by: Mapped[uuid.UUID] = _user_fk()
    recorded_at: Mapped[dt.datetime] = mapped_column(default=utcnow, info=INTERNAL)
    valid_from: Mapped[dt.date] = mapped_column(info=INTERNAL)
    valid_to: Mapped[dt.date | None] = mapped_column(info=INTERNAL)
    revoked_at: Mapped[dt.datetime | None] = mapped_column(info=INTERNAL)
    recipient = Encrypted[str]("text")
    purpose = Encrypted[str]("text")
    # What must be withheld from a named person (e.g. a relative): itself sensitive.
    withheld = Encrypted[str]("text", data_class="sensitive")

    def is_valid_on(self, day: dt.date) -> bool:
        """In force on `day`: started, not ended, not revoked (a single-row invariant)."""
        if self.revoked_at is not None and self.revoked_at.date() <= day:
            return False
        return self.valid_from <= day and (self.valid_to is None or day <= self.valid_to)


class AgencyContact(WithUuid, Base):
    """A contact with an authority (samverkan) that discloses data: on a consent or on a stated
    legal basis (the latter is flagged in the audit log)."""

    __tablename__ = "agency_contact"
    __encryption_subject__ = "person_id"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, info=INTERNAL)
    track_id: Mapped[uuid.UUID] = _track_fk()
    person_id: Mapped[uuid.UUID] = _person_fk()
    agency: Mapped[str] = mapped_column(String(32), info=INTERNAL)
    categories: Mapped[list[str]] = mapped_column(JSON, default=list, info=INTERNAL)
    legal_basis: Mapped[str] = mapped_column(String(20), info=INTERNAL)
    consent_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("consent.id"), info=INTERNAL
    )
    occurred_at: Mapped[dt.datetime] = mapped_column(info=INTERNAL)
    author_id: Mapped[uuid.UUID] = _user_fk()
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow, info=INTERNAL)
    unit = Encrypted[str]("text")
    contact_role = Encrypted[str]("text")
    purpose = Encrypted[str]("text", data_class="sensitive")
    outcome = Encrypted[str]("text", data_class="sensitive")

