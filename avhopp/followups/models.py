"""Follow-ups on a track, the reminder outbox and each staff member's reminder choice.

A follow-up row is one occurrence; a recurring series shares `series_id` and numbers its
occurrences. Nothing here is personal except a reschedule or cancel reason, which is free text
and so encrypted under the person's key like the rest of the track.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import uuid

from sqlalchemy import ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from avhopp.casework.models import WithUuid
from avhopp.db import Base, utcnow
from avhopp.encryption.orm import Encrypted

INTERNAL = {"data_class": "internal"}

KINDS = ("contact", "risk_reassessment", "consent_renewal", "after_care", "plan_target")
STATUSES = ("open", "done", "cancelled")
# Presets of the recurrence rule; "custom" keeps an RFC 5545 RRULE in `recurrence_rule`.
RECURRENCES = ("none", "twice_weekly", "weekly", "biweekly", "monthly", "custom")
OUTBOX_KINDS = ("reminder", "escalation", "digest")
OUTBOX_STATUSES = ("pending", "sent", "failed", "cancelled")
REMINDER_MODES = ("immediate", "digest")


class FollowUp(WithUuid, Base):
    """One planned contact or check on a track, assigned to one staff member."""

    __tablename__ = "follow_up"
    __encryption_subject__ = "person_id"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, info=INTERNAL)
    track_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("track.id", ondelete="CASCADE"), index=True, info=INTERNAL)
    person_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("person.id"), info=INTERNAL)
    series_id: Mapped[uuid.UUID] = mapped_column(index=True, info=INTERNAL)
    occurrence: Mapped[int] = mapped_column(default=1, info=INTERNAL)
    kind: Mapped[str] = mapped_column(String(20), info=INTERNAL)
    status: Mapped[str] = mapped_column(String(10), default="open", info=INTERNAL)
    assignee_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("staff_user.id"), info=INTERNAL)
    # The due time of occurrence 1 in local wall time, as the series' anchor: later occurrences
    # keep the same local clock time across DST and month ends (see recurrence.py).
    anchor_at: Mapped[dt.datetime] = mapped_column(info=INTERNAL)
    due_at: Mapped[dt.datetime] = mapped_column(info=INTERNAL)
    reminder_lead_minutes: Mapped[int] = mapped_column(info=INTERNAL)
    escalation_delay_minutes: Mapped[int] = mapped_column(info=INTERNAL)
    # Derived from due_at and the two delays, so the enqueue tick is one indexed range scan.
    remind_at: Mapped[dt.datetime] = mapped_column(info=INTERNAL)
    escalate_at: Mapped[dt.datetime] = mapped_column(info=INTERNAL)
    recurrence: Mapped[str] = mapped_column(String(16), default="none", info=INTERNAL)
    recurrence_rule: Mapped[str | None] = mapped_column(String(200), info=INTERNAL)
    # Bumped by every reschedule: reminders are keyed by it, so a moved follow-up is reminded
    # again at its new time and an already sent reminder is never repeated for the same time.
    revision: Mapped[int] = mapped_column(default=1, info=INTERNAL)
    reminded_revision: Mapped[int] = mapped_column(default=0, info=INTERNAL)
    escalated_revision: Mapped[int] = mapped_column(default=0, info=INTERNAL)
    # Set for generated follow-ups (e.g. "consent:<id>:<valid_to>"); unique, so deriving them
    # again from their source rows creates nothing twice.
    source_key: Mapped[str | None] = mapped_column(String(120), unique=True, info=INTERNAL)
    created_by: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("staff_user.id"), info=INTERNAL)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow, info=INTERNAL)
    completed_at: Mapped[dt.datetime | None] = mapped_column(info=INTERNAL)
    completed_by: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("staff_user.id"), info=INTERNAL)
    outcome_entry_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("journal_entry.id"), info=INTERNAL)
    cancelled_at: Mapped[dt.datetime | None] = mapped_column(info=INTERNAL)
    version: Mapped[int] = mapped_column(default=1, info=INTERNAL)
    # Why it was moved or cancelled: free text about the person, hence sensitive.
    change_reason = Encrypted[str]("text", data_class="sensitive")

    __mapper_args__ = {"version_id_col": version}
    __table_args__ = (
        Index("ix_follow_up_status_remind_at", "status", "remind_at"),
        Index("ix_follow_up_status_escalate_at", "status", "escalate_at"),
        Index("ix_follow_up_assignee_status_due_at", "assignee_id", "status", "due_at"),
        Index("ix_follow_up_status_due_at", "status", "due_at"),
    )


class OutboxMessage(Base):
    """One e-mail to send. `dedupe_key` is unique: (follow-up, revision, kind, recipient) or
    (digest, recipient, day), so two schedulers enqueueing at once make one row. Subject and
    body are generic by construction (a count, due dates, a track code, a link)."""

    __tablename__ = "outbox_message"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4, info=INTERNAL)
    dedupe_key: Mapped[str] = mapped_column(String(160), unique=True, info=INTERNAL)
    kind: Mapped[str] = mapped_column(String(12), info=INTERNAL)
    recipient_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("staff_user.id"), index=True, info=INTERNAL)
    follow_up_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("follow_up.id", ondelete="SET NULL"), index=True, info=INTERNAL)
    track_code: Mapped[str | None] = mapped_column(String(12), info=INTERNAL)
    subject: Mapped[str] = mapped_column(String(200), info=INTERNAL)
    body: Mapped[str] = mapped_column(Text, info=INTERNAL)
    status: Mapped[str] = mapped_column(String(10), default="pending", info=INTERNAL)
    attempts: Mapped[int] = mapped_column(default=0, info=INTERNAL)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow, info=INTERNAL)
    next_attempt_at: Mapped[dt.datetime] = mapped_column(info=INTERNAL)
    lease_owner: Mapped[str | None] = mapped_column(String(40), info=INTERNAL)
    lease_until: Mapped[dt.datetime | None] = mapped_column(info=INTERNAL)
    sent_at: Mapped[dt.datetime | None] = mapped_column(info=INTERNAL)
    # The SMTP reply code and a short class of the last failure, never the server's text
    # (which may echo an address).
    last_error: Mapped[str | None] = mapped_column(String(80), info=INTERNAL)

    __table_args__ = (Index("ix_outbox_message_status_next_attempt_at",
                            "status", "next_attempt_at"),)

    @property
    def message_id(self) -> str:
        """Stable per row: a resend after a lost acknowledgement carries the same id, so
        mail systems can drop the duplicate."""
        return f"<{self.id}@avhopp.invalid>"


class ReminderPreference(Base):
    """How a staff member wants reminders: each one at once, or one digest a day; and where.

    The address is a staff member's work address, kept here so the accounts model stays as it
    is; it is classed internal like the username (it says nothing about a supported person).
    """

    __tablename__ = "reminder_preference"

    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("staff_user.id", ondelete="CASCADE"), primary_key=True, info=INTERNAL)
    mode: Mapped[str] = mapped_column(String(10), default="immediate", info=INTERNAL)
    email: Mapped[str | None] = mapped_column(String(254), info=INTERNAL)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, info=INTERNAL)
    # The personal calendar feed (codes and due times only): SHA-256 of its secret token, so a
    # copy of the database does not give the feed away. Revoking clears it.
    calendar_token_hash: Mapped[str | None] = mapped_column(String(64), unique=True,
                                                            info=INTERNAL)
    calendar_created_at: Mapped[dt.datetime | None] = mapped_column(info=INTERNAL)

    @staticmethod
    def hash_token(token: str) -> str:
        return hashlib.sha256(token.encode("utf-8")).hexdigest()
