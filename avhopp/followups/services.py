"""Follow-up operations: schedule, complete (with a journal entry, then the next occurrence),
reschedule and cancel with a reason, and deriving generated follow-ups from their sources.

Access goes through `avhopp.casework.policy.authorize` on the follow-up's track, whatever kind
of track it is. Every change is audited in the caller's transaction (ids, codes, kinds; never
a reason or a note); nothing commits.
"""

from __future__ import annotations

import datetime as dt
import logging
import secrets
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import exists, select, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from avhopp.accounts.models import User
from avhopp.audit.policy import Actor
from avhopp.audit.services import record, register_actions
from avhopp.casework import services as casework
from avhopp.casework.models import TeamMember, Track
from avhopp.casework.policy import Access, Need, authorize
from avhopp.db import utcnow
from avhopp.errors import Conflict, NotFound, ValidationError
from avhopp.followups.models import (
    KINDS,
    RECURRENCES,
    REMINDER_MODES,
    FollowUp,
    OutboxMessage,
    ReminderPreference,
)
from avhopp.followups.recurrence import occurrence_due, parse_custom_rule
from avhopp.followups.settings import FollowUpSettings
from avhopp.permissions import role_has

logger = logging.getLogger(__name__)

register_actions({
    "followup.scheduled": frozenset({"follow_up_id", "kind", "recurrence", "generated"}),
    "followup.completed": frozenset({"follow_up_id", "entry_id", "next_id"}),
    "followup.rescheduled": frozenset({"follow_up_id", "revision"}),
    "followup.cancelled": frozenset({"follow_up_id", "continue_series", "next_id"}),
    "followup.preference_changed": frozenset({"mode", "has_email"}),
    "followup.calendar_link_created": frozenset(),
    "followup.calendar_link_revoked": frozenset(),
})

MAX_LEAD_MINUTES = 60 * 24 * 30
MAX_ESCALATION_MINUTES = 60 * 24 * 60
# How far ahead a follow-up may be planned; a date past this is a typing error.
MAX_AHEAD = dt.timedelta(days=5 * 366)


@dataclass(frozen=True)
class OutcomeInput:
    """The journal entry that records how a follow-up went."""

    occurred_at: dt.datetime
    contact_type: str
    contact_achieved: bool
    note: str
    next_contact_at: dt.datetime | None = None


def _now(now: dt.datetime | None) -> dt.datetime:
    return now or utcnow()


def default_recurrence(risk_level: str | None, settings: FollowUpSettings) -> str:
    """The cadence proposed for a new follow-up contact on a track at this risk level."""
    if risk_level is None:
        return "none"
    return settings.cadence.get(risk_level, "none")


def _minutes(value: Any, *, code: str, maximum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= maximum:
        raise ValidationError(f"{code} out of range", code=code)
    return value


def _check_due(due_at: Any, now: dt.datetime) -> dt.datetime:
    due = casework.aware(due_at, "due_at")
    if due > now + MAX_AHEAD:
        raise ValidationError("too far ahead", code="due_too_far")
    return due


def _team_assignee(session: Session, track: Track, assignee_id: Any) -> uuid.UUID:
    """The assignee is an active worker on the track's team (owner or member)."""
    if not isinstance(assignee_id, uuid.UUID):
        raise ValidationError("choose a staff member", code="assignee")
    user = session.get(User, assignee_id)
    on_team = track.owner_id == assignee_id or bool(session.scalar(select(exists().where(
        TeamMember.track_id == track.id, TeamMember.user_id == assignee_id))))
    if user is None or not user.is_active or not role_has(user.role, "tracks.work") \
            or not on_team:
        raise ValidationError("the assignee must be on the team", code="assignee")
    return assignee_id


def _set_due(row: FollowUp, due: dt.datetime) -> None:
    row.due_at = due
    row.remind_at = due - dt.timedelta(minutes=row.reminder_lead_minutes)
    row.escalate_at = due + dt.timedelta(minutes=row.escalation_delay_minutes)


def _recurrence(recurrence: Any, rule: Any) -> tuple[str, str | None]:
    recurrence = casework.choice(recurrence, RECURRENCES, "recurrence")
    if recurrence == "custom":
        return recurrence, parse_custom_rule(rule)
    return recurrence, None


def schedule(
    session: Session,
    *,
    actor: Actor,
    track_id: uuid.UUID,
    kind: str,
    assignee_id: uuid.UUID,
    due_at: dt.datetime,
    recurrence: str | None = None,
    recurrence_rule: str | None = None,
    reminder_lead_minutes: int | None = None,
    escalation_delay_minutes: int | None = None,
    settings: FollowUpSettings | None = None,
    now: dt.datetime | None = None,
) -> FollowUp:
    """Plan a follow-up on a track (team only). Without a recurrence, a follow-up contact
    takes the cadence of the track's risk level; other kinds do not recur."""
    now = _now(now)
    settings = settings or FollowUpSettings()
    access = authorize(session, actor=actor, need=Need.WORK, track_id=track_id, now=now)
    track = access.track_or_fail
    kind = casework.choice(kind, KINDS, "kind")
    if recurrence is None:
        recurrence = default_recurrence(track.risk_level, settings) if kind == "contact" \
            else "none"
    recurrence, rule = _recurrence(recurrence, recurrence_rule)
    row = _new_row(
        track=track, kind=kind, assignee_id=_team_assignee(session, track, assignee_id),
        due=_check_due(due_at, now), recurrence=recurrence, rule=rule,
        lead=_minutes(settings.reminder_lead_minutes if reminder_lead_minutes is None
                      else reminder_lead_minutes, code="reminder_lead",
                      maximum=MAX_LEAD_MINUTES),
        escalation=_minutes(settings.escalation_delay_minutes
                            if escalation_delay_minutes is None else escalation_delay_minutes,
                            code="escalation_delay", maximum=MAX_ESCALATION_MINUTES),
        created_by=access.user_id, now=now)
    session.add(row)
    session.flush()
    record(session, action="followup.scheduled", actor=actor, object_type="track",
           object_id=track.code, details={"follow_up_id": str(row.id), "kind": kind,
                                          "recurrence": recurrence, "generated": False},
           now=now)
    return row


def _new_row(*, track: Track, kind: str, assignee_id: uuid.UUID, due: dt.datetime,
             recurrence: str, rule: str | None, lead: int, escalation: int,
             created_by: uuid.UUID | None, now: dt.datetime, series_id: uuid.UUID | None = None,
             occurrence: int = 1, anchor: dt.datetime | None = None,
             source_key: str | None = None) -> FollowUp:
    row = FollowUp(
        track_id=track.id, person_id=track.person_id, series_id=series_id or uuid.uuid4(),
        occurrence=occurrence, kind=kind, status="open", assignee_id=assignee_id,
        anchor_at=anchor or due, reminder_lead_minutes=lead,
        escalation_delay_minutes=escalation, recurrence=recurrence, recurrence_rule=rule,
        revision=1, reminded_revision=0, escalated_revision=0, source_key=source_key,
        created_by=created_by, created_at=now)
    _set_due(row, due)
    return row


def _load(session: Session, *, actor: Actor, follow_up_id: Any, now: dt.datetime,
          need: Need = Need.WORK) -> tuple[FollowUp, Access]:
    row = session.get(FollowUp, follow_up_id) if isinstance(follow_up_id, uuid.UUID) else None
    if row is None:
        record(session, action="track.access_denied", actor=actor, outcome="denied",
               details={"need": need.value, "rule": "unknown_follow_up"}, now=now)
        raise NotFound("no such follow-up", code="follow_up_not_found")
    access = authorize(session, actor=actor, need=need, track_id=row.track_id, now=now)
    return row, access


def _open(row: FollowUp) -> None:
    if row.status != "open":
        raise Conflict("the follow-up is no longer open", code="follow_up_closed")


def _check_version(row: FollowUp, expected_version: int | None) -> None:
    if expected_version is not None and row.version != expected_version:
        raise Conflict("the follow-up was changed by someone else", code="stale_version")


def _flush(session: Session) -> None:
    try:
        session.flush()
    except StaleDataError:
        raise Conflict("the follow-up was changed by someone else",
                       code="stale_version") from None


def _drop_pending_mail(session: Session, row: FollowUp) -> None:
    """Reminders not yet sent for an earlier due time are withdrawn (never sent late)."""
    session.execute(
        update(OutboxMessage)
        .where(OutboxMessage.follow_up_id == row.id, OutboxMessage.status == "pending")
        .values(status="cancelled")
        .execution_options(synchronize_session=False))


def _next_occurrence(row: FollowUp, track: Track, settings: FollowUpSettings,
                     now: dt.datetime) -> FollowUp | None:
    if row.recurrence == "none" or track.status in ("closed",):
        return None
    due = occurrence_due(anchor=row.anchor_at, recurrence=row.recurrence,
                         rule=row.recurrence_rule, occurrence=row.occurrence + 1,
                         previous_due=row.due_at, zone=settings.zone)
    if due is None:
        return None
    return _new_row(track=track, kind=row.kind, assignee_id=row.assignee_id, due=due,
                    recurrence=row.recurrence, rule=row.recurrence_rule,
                    lead=row.reminder_lead_minutes, escalation=row.escalation_delay_minutes,
                    created_by=row.created_by, now=now, series_id=row.series_id,
                    occurrence=row.occurrence + 1, anchor=row.anchor_at)


def complete(
    session: Session,
    *,
    actor: Actor,
    follow_up_id: uuid.UUID,
    outcome: OutcomeInput,
    expected_version: int | None = None,
    settings: FollowUpSettings | None = None,
    now: dt.datetime | None = None,
) -> tuple[FollowUp, FollowUp | None]:
    """Record the outcome as a journal entry, close the follow-up, plan the next occurrence."""
    now = _now(now)
    settings = settings or FollowUpSettings()
    row, access = _load(session, actor=actor, follow_up_id=follow_up_id, now=now)
    _open(row)
    _check_version(row, expected_version)
    entry = casework.add_journal_entry(
        session, actor=actor, track_id=row.track_id, occurred_at=outcome.occurred_at,
        contact_type=outcome.contact_type, contact_achieved=outcome.contact_achieved,
        note=outcome.note, next_contact_at=outcome.next_contact_at, now=now)
    row.status = "done"
    row.completed_at = now
    row.completed_by = access.user_id
    row.outcome_entry_id = entry.id
    _drop_pending_mail(session, row)
    following = _next_occurrence(row, access.track_or_fail, settings, now)
    if following is not None:
        session.add(following)
    _flush(session)
    record(session, action="followup.completed", actor=actor, object_type="track",
           object_id=access.track_or_fail.code,
           details={"follow_up_id": str(row.id), "entry_id": str(entry.id),
                    "next_id": str(following.id) if following is not None else ""}, now=now)
    return row, following


def reschedule(
    session: Session,
    *,
    actor: Actor,
    follow_up_id: uuid.UUID,
    due_at: dt.datetime,
    reason: str,
    expected_version: int | None = None,
    now: dt.datetime | None = None,
) -> FollowUp:
    """Move one occurrence (the series keeps its rhythm); reminders follow the new time."""
    now = _now(now)
    row, access = _load(session, actor=actor, follow_up_id=follow_up_id, now=now)
    _open(row)
    _check_version(row, expected_version)
    row.change_reason = casework.clean_text(reason, code="reason", required=True)
    _set_due(row, _check_due(due_at, now))
    row.revision += 1
    _drop_pending_mail(session, row)
    _flush(session)
    record(session, action="followup.rescheduled", actor=actor, object_type="track",
           object_id=access.track_or_fail.code,
           details={"follow_up_id": str(row.id), "revision": row.revision}, now=now)
    return row


def cancel(
    session: Session,
    *,
    actor: Actor,
    follow_up_id: uuid.UUID,
    reason: str,
    continue_series: bool = False,
    expected_version: int | None = None,
    settings: FollowUpSettings | None = None,
    now: dt.datetime | None = None,
) -> FollowUp | None:
    """Cancel one occurrence; the series ends unless `continue_series` plans the next one.
    Returns the next occurrence, if any."""
    now = _now(now)
    settings = settings or FollowUpSettings()
    row, access = _load(session, actor=actor, follow_up_id=follow_up_id, now=now)
    _open(row)
    _check_version(row, expected_version)
    row.change_reason = casework.clean_text(reason, code="reason", required=True)
    row.status = "cancelled"
    row.cancelled_at = now
    _drop_pending_mail(session, row)
    following = (_next_occurrence(row, access.track_or_fail, settings, now)
                 if continue_series else None)
    if following is not None:
        session.add(following)
    _flush(session)
    record(session, action="followup.cancelled", actor=actor, object_type="track",
           object_id=access.track_or_fail.code,
           details={"follow_up_id": str(row.id), "continue_series": bool(continue_series),
                    "next_id": str(following.id) if following is not None else ""}, now=now)
    return following


def set_preference(
    session: Session, *, actor: Actor, mode: str, email: str | None,
    now: dt.datetime | None = None,
) -> ReminderPreference:
    """A staff member's own choice: reminders at once or a daily digest, and the address."""
    now = _now(now)
    mode = casework.choice(mode, REMINDER_MODES, "mode")
    address = casework.clean_text(email, code="email", max_length=254)
    if address and ("@" not in address or "," in address
                    or any(ch.isspace() for ch in address)):
        raise ValidationError("not an e-mail address", code="email")
    if actor is None:
        raise ValidationError("an actor is required", code="actor")
    row = session.get(ReminderPreference, actor.id)
    if row is None:
        row = ReminderPreference(user_id=actor.id)
        session.add(row)
    row.mode = mode
    row.email = address or None
    row.updated_at = now
    session.flush()
    record(session, action="followup.preference_changed", actor=actor,
           details={"mode": mode, "has_email": bool(address)}, now=now)
    return row


def preference_of(session: Session, user_id: uuid.UUID) -> ReminderPreference | None:
    return session.get(ReminderPreference, user_id)


def _own_preference(session: Session, actor: Actor, now: dt.datetime) -> ReminderPreference:
    if actor is None:
        raise ValidationError("an actor is required", code="actor")
    row = session.get(ReminderPreference, actor.id)
    if row is None:
        row = ReminderPreference(user_id=actor.id, mode="immediate", updated_at=now)
        session.add(row)
    return row


def create_calendar_link(session: Session, *, actor: Actor,
                         now: dt.datetime | None = None) -> str:
    """A new secret token for the caller's calendar feed (any earlier link stops working).
    Returned once; only its hash is stored."""
    now = _now(now)
    authorize(session, actor=actor, need=Need.LIST_MINE, now=now)
    row = _own_preference(session, actor, now)
    token = secrets.token_urlsafe(32)
    row.calendar_token_hash = ReminderPreference.hash_token(token)
    row.calendar_created_at = now
    session.flush()
    record(session, action="followup.calendar_link_created", actor=actor, now=now)
    return token


def revoke_calendar_link(session: Session, *, actor: Actor,
                         now: dt.datetime | None = None) -> None:
    now = _now(now)
    row = _own_preference(session, actor, now)
    row.calendar_token_hash = None
    row.calendar_created_at = None
    session.flush()
    record(session, action="followup.calendar_link_revoked", actor=actor, now=now)


# --- generated follow-ups -------------------------------------------------------------------

# A source yields (source_key, track_id, kind, due_at) for rows that should have a follow-up.
Source = Callable[[Session, dt.datetime, FollowUpSettings], Any]
SOURCES: dict[str, Source] = {}


def register_source(name: str, source: Source) -> None:
    """Track features add their own sources (the defector track: risk reassessment dates);
    followups never imports them, so the layering stays one-way."""
    SOURCES[name] = source


def derive_generated(session: Session, *, now: dt.datetime | None = None,
                     settings: FollowUpSettings | None = None) -> int:
    """Create the follow-ups every registered source asks for that do not exist yet.

    Idempotent: each carries a unique `source_key`, so running it again (or in two
    schedulers at once; the loser's INSERT fails on the key and it retries next tick) adds
    nothing. Generated follow-ups go to the track's owner and are recorded as scheduled by the
    system (no actor).
    """
    now = _now(now)
    settings = settings or FollowUpSettings()
    wanted: dict[str, tuple[uuid.UUID, str, dt.datetime]] = {}
    for source in SOURCES.values():
        for key, track_id, kind, due in source(session, now, settings):
            wanted.setdefault(key, (track_id, kind, due))
    if not wanted:
        return 0
    existing = set(session.scalars(select(FollowUp.source_key).where(
        FollowUp.source_key.in_(list(wanted)))))
    created = 0
    tracks: dict[uuid.UUID, Track | None] = {}
    for key, (track_id, kind, due) in wanted.items():
        if key in existing:
            continue
        track = tracks.get(track_id) or session.get(Track, track_id)
        tracks[track_id] = track
        if track is None:
            continue
        row = _new_row(track=track, kind=kind, assignee_id=track.owner_id, due=due,
                       recurrence="none", rule=None, lead=settings.reminder_lead_minutes,
                       escalation=settings.escalation_delay_minutes, created_by=None, now=now,
                       source_key=key)
        session.add(row)
        session.flush()
        record(session, action="followup.scheduled", object_type="track", object_id=track.code,
               details={"follow_up_id": str(row.id), "kind": kind, "recurrence": "none",
                        "generated": True}, now=now)
        created += 1
    return created
