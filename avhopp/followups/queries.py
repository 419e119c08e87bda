"""Read-only follow-up lists: Min dag, the coordinator's overview, a track's follow-ups.

Codes, kinds, staff names and dates only: nothing here decrypts, so the pages are cheap and
show no personal data. Access goes through the track policy like every other list.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from functools import cache
from typing import Any

from sqlalchemy import and_, exists, func, nulls_first, or_, select
from sqlalchemy.orm import Session, aliased

from avhopp.accounts.models import User
from avhopp.audit.policy import Actor
from avhopp.audit.services import record
from avhopp.casework.models import OPEN_STATUSES, JournalEntry, TeamMember, Track
from avhopp.casework.policy import Need, authorize, team_condition
from avhopp.errors import NotFound
from avhopp.followups.models import FollowUp, OutboxMessage, ReminderPreference
from avhopp.followups.settings import FollowUpSettings
from avhopp.permissions import role_has

LIST_LIMIT = 200


@dataclass(frozen=True)
class FollowUpRow:
    id: uuid.UUID
    track_id: uuid.UUID
    track_code: str
    track_kind: str
    kind: str
    status: str
    due_at: dt.datetime
    assignee: str
    occurrence: int
    recurrence: str
    version: int
    completed_at: dt.datetime | None = None
    cancelled_at: dt.datetime | None = None


@dataclass(frozen=True)
class QuietTrack:
    id: uuid.UUID
    code: str
    last_contact_at: dt.datetime | None


@dataclass(frozen=True)
class MyDay:
    overdue: list[FollowUpRow]
    today: list[FollowUpRow]
    week: list[FollowUpRow]
    nothing_planned: list[QuietTrack]
    no_contact: list[QuietTrack]
    no_contact_days: int


@dataclass(frozen=True)
class MailProblem:
    id: uuid.UUID
    kind: str
    track_code: str | None
    recipient: str
    status: str
    attempts: int
    last_error: str | None
    created_at: dt.datetime


@dataclass(frozen=True)
class Overview:
    overdue: list[FollowUpRow]
    week: list[FollowUpRow]
    mail_problems: list[MailProblem]


@cache
def _rows_select() -> Any:
    # Built once (statements are immutable; callers add their own conditions).
    return (select(FollowUp.id, FollowUp.track_id, Track.code, Track.kind, FollowUp.kind,
                   FollowUp.status, FollowUp.due_at, User.username, FollowUp.occurrence,
                   FollowUp.recurrence,
                   FollowUp.version, FollowUp.completed_at, FollowUp.cancelled_at)
            .join(Track, Track.id == FollowUp.track_id)
            .join(User, User.id == FollowUp.assignee_id))


def _rows(session: Session, query: Any) -> list[FollowUpRow]:
    return [FollowUpRow(*row) for row in session.execute(query)]


def day_bounds(now: dt.datetime, settings: FollowUpSettings) -> tuple[dt.datetime, ...]:
    """Start of today, tomorrow and a week after tomorrow, in local days, as UTC."""
    local = now.astimezone(settings.zone).date()
    start = dt.datetime.combine(local, dt.time(), tzinfo=settings.zone)
    tomorrow = dt.datetime.combine(local + dt.timedelta(days=1), dt.time(), tzinfo=settings.zone)
    week = dt.datetime.combine(local + dt.timedelta(days=8), dt.time(), tzinfo=settings.zone)
    return start.astimezone(dt.UTC), tomorrow.astimezone(dt.UTC), week.astimezone(dt.UTC)


def my_day(session: Session, *, actor: Actor, now: dt.datetime,
           settings: FollowUpSettings) -> MyDay:
    access = authorize(session, actor=actor, need=Need.LIST_MINE, now=now)
    me = access.user_id
    start, tomorrow, week_end = day_bounds(now, settings)
    mine = _rows_select().where(FollowUp.assignee_id == me, FollowUp.status == "open")
    overdue = _rows(session, mine.where(FollowUp.due_at < start)
                    .order_by(FollowUp.due_at).limit(LIST_LIMIT))
    upcoming = _rows(session, mine.where(FollowUp.due_at >= start, FollowUp.due_at < week_end)
                     .order_by(FollowUp.due_at).limit(LIST_LIMIT))
    my_open_tracks = and_(team_condition(session, me), Track.status.in_(OPEN_STATUSES))
    planned = exists().where(FollowUp.track_id == Track.id, FollowUp.status == "open")
    nothing = [QuietTrack(i, c, None) for i, c in session.execute(
        select(Track.id, Track.code).where(my_open_tracks, ~planned)
        .order_by(Track.code).limit(LIST_LIMIT))]
    limit = now - dt.timedelta(days=settings.no_contact_days)
    last_contact = (select(func.max(JournalEntry.occurred_at))
                    .where(JournalEntry.track_id == Track.id,
                           JournalEntry.contact_achieved.is_(True))
                    .correlate(Track).scalar_subquery())
    last = last_contact.label("last")
    quiet = [QuietTrack(*row) for row in session.execute(
        select(Track.id, Track.code, last)
        .where(my_open_tracks, Track.opened_at < limit,
               or_(last_contact.is_(None), last_contact < limit))
        # Longest silence first: never reached, then the oldest last contact.
        .order_by(nulls_first(last.asc()), Track.code).limit(LIST_LIMIT))]
    return MyDay(
        overdue=overdue,
        today=[r for r in upcoming if r.due_at < tomorrow],
        week=[r for r in upcoming if r.due_at >= tomorrow],
        nothing_planned=nothing, no_contact=quiet, no_contact_days=settings.no_contact_days)


def overview(session: Session, *, actor: Actor, now: dt.datetime,
             settings: FollowUpSettings) -> Overview:
    """Every track's overdue and coming follow-ups, and mail that could not be sent."""
    authorize(session, actor=actor, need=Need.LIST_ALL, now=now)
    _start, _tomorrow, week_end = day_bounds(now, settings)
    open_rows = _rows_select().where(FollowUp.status == "open")
    recipient = aliased(User)
    problems = [MailProblem(*row) for row in session.execute(
        select(OutboxMessage.id, OutboxMessage.kind, OutboxMessage.track_code,
               recipient.username, OutboxMessage.status, OutboxMessage.attempts,
               OutboxMessage.last_error, OutboxMessage.created_at)
        .join(recipient, recipient.id == OutboxMessage.recipient_id)
        .where(or_(OutboxMessage.status == "failed",
                   and_(OutboxMessage.status == "pending",
                        OutboxMessage.last_error.is_not(None))))
        .order_by(OutboxMessage.created_at.desc()).limit(LIST_LIMIT))]
    return Overview(
        overdue=_rows(session, open_rows.where(FollowUp.due_at < now)
                      .order_by(FollowUp.due_at).limit(LIST_LIMIT)),
        week=_rows(session, open_rows.where(FollowUp.due_at >= now, FollowUp.due_at < week_end)
                   .order_by(FollowUp.due_at).limit(LIST_LIMIT)),
        mail_problems=problems)


@dataclass(frozen=True)
class TrackFollowUps:
    open: list[FollowUpRow]
    history: list[FollowUpRow]
    may_work: bool


def for_track(session: Session, *, actor: Actor, track_id: uuid.UUID,
              now: dt.datetime) -> TrackFollowUps:
    """A track's follow-ups for its page (anyone who may see the track's list row)."""
    access = authorize(session, actor=actor, need=Need.SEE, track_id=track_id, now=now)
    base = _rows_select().where(FollowUp.track_id == track_id)
    return TrackFollowUps(
        open=_rows(session, base.where(FollowUp.status == "open").order_by(FollowUp.due_at)
                   .limit(LIST_LIMIT)),
        history=_rows(session, base.where(FollowUp.status != "open")
                      .order_by(FollowUp.due_at.desc()).limit(20)),
        may_work=access.via == "team")


def one(session: Session, *, actor: Actor, follow_up_id: uuid.UUID,
        now: dt.datetime) -> FollowUpRow:
    """One follow-up, for the page where it is completed, moved or cancelled (team only)."""
    track_id = session.scalar(select(FollowUp.track_id).where(FollowUp.id == follow_up_id))
    if track_id is None:
        record(session, action="track.access_denied", actor=actor, outcome="denied",
               details={"need": Need.WORK.value, "rule": "unknown_follow_up"}, now=now)
        raise NotFound("no such follow-up", code="follow_up_not_found")
    authorize(session, actor=actor, need=Need.WORK, track_id=track_id, now=now)
    return _rows(session, _rows_select().where(FollowUp.id == follow_up_id))[0]


def track_header(session: Session, *, actor: Actor, track_id: uuid.UUID,
                 now: dt.datetime) -> tuple[Track, list[tuple[uuid.UUID, str]]]:
    """The track (code, kind, risk level) and its team, for the scheduling form (team only)."""
    access = authorize(session, actor=actor, need=Need.WORK, track_id=track_id, now=now)
    track = access.track_or_fail
    members = select(TeamMember.user_id).where(TeamMember.track_id == track_id)
    team = [(i, n) for i, n in session.execute(
        select(User.id, User.username)
        .where(or_(User.id == track.owner_id, User.id.in_(members)), User.is_active.is_(True))
        .order_by(User.username))]
    return track, team


CALENDAR_PAST = dt.timedelta(days=30)
CALENDAR_AHEAD = dt.timedelta(days=366)
CALENDAR_LIMIT = 1000


def calendar(session: Session, *, token: str, now: dt.datetime) -> list[FollowUpRow] | None:
    """The open follow-ups of the owner of a calendar token, or None for an unknown or revoked
    token or an owner who may no longer work tracks. Codes and times only."""
    owner = session.execute(
        select(User.id, User.role)
        .join(ReminderPreference, ReminderPreference.user_id == User.id)
        .where(ReminderPreference.calendar_token_hash == ReminderPreference.hash_token(token),
               User.is_active.is_(True))).one_or_none()
    if owner is None or not role_has(owner.role, "tracks.work"):
        return None
    return _rows(session, _rows_select().where(
        FollowUp.assignee_id == owner.id, FollowUp.status == "open",
        FollowUp.due_at >= now - CALENDAR_PAST, FollowUp.due_at < now + CALENDAR_AHEAD)
        .order_by(FollowUp.due_at).limit(CALENDAR_LIMIT))
