"""The reminder outbox: enqueue due reminders, escalations and daily digests under unique keys,
claim rows with a lease, send them, and record each attempt.

Every e-mail says only what DOMAIN.md allows: a generic subject, counts, due dates, at most a
track code, and a link that needs a normal login. The text is built here from codes and dates
alone; no function in this module can reach an encrypted field.

Delivery is at least once: a sender that dies after the SMTP server accepted a mail but before
it marked the row sent lets the lease expire and another sender tries again, with the same
Message-ID, so mail systems can drop the copy.
"""

from __future__ import annotations

import datetime as dt
import logging
import secrets
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import format_datetime
from typing import Any

from sqlalchemy import and_, case, func, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session, sessionmaker

from avhopp.accounts.models import User
from avhopp.audit.services import record, register_actions
from avhopp.casework.models import OPEN_STATUSES, Track
from avhopp.db import session_scope
from avhopp.followups.mail import Mailer, MailError, PermanentMailError, SmtpSettings
from avhopp.followups.models import FollowUp, OutboxMessage, ReminderPreference
from avhopp.followups.settings import FollowUpSettings
from avhopp.permissions import role_has

logger = logging.getLogger(__name__)

register_actions({
    "mail.sent": frozenset({"kind", "recipient_id", "attempts"}),
    "mail.retry": frozenset({"kind", "recipient_id", "attempts", "error"}),
    "mail.failed": frozenset({"kind", "recipient_id", "attempts", "error"}),
})

MY_DAY_PATH = "/followups/my-day"
LIVE_STATUSES = (*OPEN_STATUSES, "after_care")
ENQUEUE_BATCH = 1000


@dataclass(frozen=True)
class OutboxSettings:
    lease_seconds: int = 300
    max_attempts: int = 8
    retry_base_seconds: int = 60
    retry_max_seconds: int = 6 * 3600
    batch_size: int = 50

    @classmethod
    def from_config(cls, config: Any) -> OutboxSettings:
        return cls(
            lease_seconds=int(config.get("OUTBOX_LEASE_SECONDS", cls.lease_seconds)),
            max_attempts=int(config.get("OUTBOX_MAX_ATTEMPTS", cls.max_attempts)),
            retry_base_seconds=int(config.get("OUTBOX_RETRY_BASE_SECONDS",
                                              cls.retry_base_seconds)),
            batch_size=int(config.get("OUTBOX_BATCH_SIZE", cls.batch_size)),
        )


# --- texts (Swedish; e-mails go out in the organisation's language) -------------------------

FOOTER = ("\n\nLogga in för att se detaljerna: {link}\n\n"
          "Det här meddelandet skickades automatiskt och innehåller inga uppgifter om "
          "de personer ärendena gäller. Svara inte på det.\n")
TEXTS = {
    "reminder": ("Påminnelse om uppföljning",
                 "Du har en uppföljning i ärende {code} som ska göras senast {due}."),
    "escalation": ("Försenad uppföljning",
                   "En uppföljning i ärende {code} skulle ha gjorts senast {due} och är inte "
                   "markerad som gjord."),
    "digest": ("Dina uppföljningar",
               "Dina uppföljningar i dag, {day}:\n\n"
               "  försenade: {overdue}\n  i dag: {today}\n  kommande sju dagar: {week}"),
}


def _text(kind: str, settings: FollowUpSettings, **values: Any) -> tuple[str, str]:
    subject, body = TEXTS[kind]
    return subject, body.format(**values) + FOOTER.format(link=settings.base_url + MY_DAY_PATH)


def _local(when: dt.datetime, settings: FollowUpSettings) -> str:
    return when.astimezone(settings.zone).strftime("%Y-%m-%d %H:%M")


# --- enqueue --------------------------------------------------------------------------------


def _insert_ignoring_duplicates(session: Session, rows: Sequence[dict[str, Any]]) -> int:
    """Insert outbox rows; a row whose key exists already (another scheduler was first) is
    skipped by the database, not by a read-then-write race."""
    if not rows:
        return 0
    dialect = session.get_bind().dialect.name
    maker = pg_insert if dialect == "postgresql" else sqlite_insert
    statement = maker(OutboxMessage).on_conflict_do_nothing(index_elements=["dedupe_key"])
    result = session.execute(statement, list(rows))
    return int(getattr(result, "rowcount", 0) or 0)


def _message_row(*, key: str, kind: str, recipient: uuid.UUID, follow_up: uuid.UUID | None,
                 code: str | None, subject: str, body: str, now: dt.datetime) -> dict[str, Any]:
    return {"id": uuid.uuid4(), "dedupe_key": key, "kind": kind, "recipient_id": recipient,
            "follow_up_id": follow_up, "track_code": code, "subject": subject, "body": body,
            "status": "pending", "attempts": 0, "created_at": now, "next_attempt_at": now}


def _immediate_recipients(session: Session, user_ids: Iterable[uuid.UUID]) -> set[uuid.UUID]:
    """Active staff who want reminders one by one and have an address."""
    ids = set(user_ids)
    if not ids:
        return set()
    return set(session.scalars(
        select(ReminderPreference.user_id)
        .join(User, User.id == ReminderPreference.user_id)
        .where(ReminderPreference.user_id.in_(ids), ReminderPreference.mode == "immediate",
               ReminderPreference.email.is_not(None), User.is_active.is_(True))))


def _with_address(session: Session, user_ids: Iterable[uuid.UUID]) -> set[uuid.UUID]:
    ids = set(user_ids)
    if not ids:
        return set()
    return set(session.scalars(
        select(ReminderPreference.user_id)
        .join(User, User.id == ReminderPreference.user_id)
        .where(ReminderPreference.user_id.in_(ids), ReminderPreference.email.is_not(None),
               User.is_active.is_(True))))


def enqueue_reminders(session: Session, *, now: dt.datetime,
                      settings: FollowUpSettings) -> int:
    """Queue one reminder per open follow-up whose reminder time has come (assignees who chose
    the daily digest get it there instead). Marks the follow-ups so the next tick skips them."""
    queued = 0
    while True:
        due = session.execute(
            select(FollowUp.id, FollowUp.revision, FollowUp.assignee_id, FollowUp.due_at,
                   Track.code, _is_live())
            .join(Track, Track.id == FollowUp.track_id)
            .where(FollowUp.status == "open", FollowUp.remind_at <= now,
                   FollowUp.reminded_revision < FollowUp.revision)
            .order_by(FollowUp.remind_at)
            .limit(ENQUEUE_BATCH)).all()
        if not due:
            return queued
        wanted = _immediate_recipients(session, (row.assignee_id for row in due))
        rows: list[dict[str, Any]] = []
        for row in due:
            if row.assignee_id not in wanted or not row.live:
                continue
            subject, body = _text("reminder", settings, code=row.code,
                                  due=_local(row.due_at, settings))
            rows.append(_message_row(
                key=f"reminder:{row.id}:{row.revision}:{row.assignee_id}", kind="reminder",
                recipient=row.assignee_id, follow_up=row.id, code=row.code, subject=subject,
                body=body, now=now))
        queued += _insert_ignoring_duplicates(session, rows)
        _mark(session, due, FollowUp.reminded_revision)


def _is_live() -> Any:
    """Whether a follow-up still calls for mail: its track is open, or it is an after-care
    check-in (which comes after closure). Follow-ups left open on a closed track are marked
    as handled by the tick without mail; they stay visible on Min dag until someone acts."""
    return or_(Track.status.in_(LIVE_STATUSES), FollowUp.kind == "after_care").label("live")


def _mark(session: Session, due: Sequence[Any], column: Any) -> None:
    for revision in {row.revision for row in due}:
        session.execute(
            update(FollowUp)
            .where(FollowUp.id.in_([row.id for row in due if row.revision == revision]),
                   FollowUp.revision == revision)
            .values({column.key: revision})
            .execution_options(synchronize_session=False))


def _coordinators(session: Session) -> list[uuid.UUID]:
    return [user_id for user_id, role in session.execute(
        select(User.id, User.role).where(User.is_active.is_(True)))
        if role_has(role, "tracks.list")]


def enqueue_escalations(session: Session, *, now: dt.datetime,
                        settings: FollowUpSettings) -> int:
    """A follow-up still open past its escalation delay goes to the track's owner, or, when the
    owner is the assignee, to the coordinators. Escalations are sent at once, digest or not."""
    queued = 0
    coordinators: list[uuid.UUID] | None = None
    while True:
        due = session.execute(
            select(FollowUp.id, FollowUp.revision, FollowUp.assignee_id, FollowUp.due_at,
                   Track.code, _is_live(), Track.owner_id)
            .join(Track, Track.id == FollowUp.track_id)
            .where(FollowUp.status == "open", FollowUp.escalate_at <= now,
                   FollowUp.escalated_revision < FollowUp.revision)
            .order_by(FollowUp.escalate_at)
            .limit(ENQUEUE_BATCH)).all()
        if not due:
            return queued
        targets: dict[Any, list[uuid.UUID]] = {}
        for row in due:
            if not row.live:
                targets[row] = []
            elif row.owner_id != row.assignee_id:
                targets[row] = [row.owner_id]
            else:
                if coordinators is None:
                    coordinators = _coordinators(session)
                targets[row] = [c for c in coordinators if c != row.assignee_id]
        reachable = _with_address(session, (u for ids in targets.values() for u in ids))
        rows: list[dict[str, Any]] = []
        for row, recipients in targets.items():
            subject, body = _text("escalation", settings, code=row.code,
                                  due=_local(row.due_at, settings))
            rows.extend(_message_row(
                key=f"escalation:{row.id}:{row.revision}:{user_id}", kind="escalation",
                recipient=user_id, follow_up=row.id, code=row.code, subject=subject, body=body,
                now=now) for user_id in recipients if user_id in reachable)
        queued += _insert_ignoring_duplicates(session, rows)
        _mark(session, due, FollowUp.escalated_revision)


def enqueue_digests(session: Session, *, now: dt.datetime, settings: FollowUpSettings) -> int:
    """Once a day, from the digest hour on, one digest per staff member who chose it and has
    anything open. Keyed by the local day: a scheduler that was down catches up once."""
    local = now.astimezone(settings.zone)
    if local.hour < settings.digest_hour:
        return 0
    start = dt.datetime.combine(local.date(), dt.time(), tzinfo=settings.zone).astimezone(dt.UTC)
    tomorrow = start + dt.timedelta(days=1)
    week_end = start + dt.timedelta(days=8)
    users = list(session.scalars(
        select(ReminderPreference.user_id)
        .join(User, User.id == ReminderPreference.user_id)
        .where(ReminderPreference.mode == "digest", ReminderPreference.email.is_not(None),
               User.is_active.is_(True))))
    if not users:
        return 0
    counts = session.execute(
        select(FollowUp.assignee_id,
               func.sum(case((FollowUp.due_at < start, 1), else_=0)),
               func.sum(case((and_(FollowUp.due_at >= start, FollowUp.due_at < tomorrow), 1),
                             else_=0)),
               func.sum(case((and_(FollowUp.due_at >= tomorrow, FollowUp.due_at < week_end),
                              1), else_=0)))
        .where(FollowUp.status == "open", FollowUp.assignee_id.in_(users),
               FollowUp.due_at < week_end)
        .group_by(FollowUp.assignee_id)).all()
    rows: list[dict[str, Any]] = []
    for user_id, overdue, today, week in counts:
        if not (overdue or today or week):
            continue
        subject, body = _text("digest", settings, day=local.date().isoformat(),
                              overdue=int(overdue or 0), today=int(today or 0),
                              week=int(week or 0))
        rows.append(_message_row(key=f"digest:{user_id}:{local.date().isoformat()}",
                                 kind="digest", recipient=user_id, follow_up=None, code=None,
                                 subject=subject, body=body, now=now))
    return _insert_ignoring_duplicates(session, rows)


# --- claim and send -------------------------------------------------------------------------


def claim(session: Session, *, now: dt.datetime, owner: str, settings: OutboxSettings,
          limit: int | None = None) -> list[uuid.UUID]:
    """Lease up to `limit` sendable rows to `owner`. PostgreSQL skips rows another sender has
    locked; SQLite serialises writers with BEGIN IMMEDIATE, so the second claimer sees the
    first one's lease. The caller commits, then sends."""
    query = (select(OutboxMessage.id)
             .where(OutboxMessage.status == "pending", OutboxMessage.next_attempt_at <= now,
                    (OutboxMessage.lease_until.is_(None)) | (OutboxMessage.lease_until < now))
             .order_by(OutboxMessage.next_attempt_at)
             .limit(limit or settings.batch_size))
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    ids = list(session.scalars(query))
    if ids:
        session.execute(
            update(OutboxMessage).where(OutboxMessage.id.in_(ids))
            .values(lease_owner=owner, lease_until=now + dt.timedelta(
                seconds=settings.lease_seconds))
            .execution_options(synchronize_session=False))
    return ids


def build_message(row: OutboxMessage, *, to: str, mail_from: str,
                  now: dt.datetime) -> EmailMessage:
    message = EmailMessage()
    message["From"] = mail_from
    message["To"] = to
    message["Subject"] = row.subject
    message["Message-ID"] = row.message_id
    message["Date"] = format_datetime(now)
    # RFC 3834: tells auto-responders and vacation replies to stay quiet.
    message["Auto-Submitted"] = "auto-generated"
    message.set_content(row.body)
    return message


@dataclass
class SendReport:
    sent: int = 0
    retried: int = 0
    failed: int = 0
    errors: list[str] = field(default_factory=list)


def _backoff(attempts: int, settings: OutboxSettings) -> dt.timedelta:
    seconds = min(settings.retry_base_seconds * 2 ** max(attempts - 1, 0),
                  settings.retry_max_seconds)
    return dt.timedelta(seconds=seconds)


def _settle(session: Session, *, row_id: uuid.UUID, owner: str, now: dt.datetime,
            error: MailError | None, settings: OutboxSettings, report: SendReport) -> None:
    row = session.get(OutboxMessage, row_id)
    if row is None or row.lease_owner != owner or row.status != "pending":
        return  # the lease ran out and another sender took over
    row.attempts += 1
    row.lease_owner = None
    row.lease_until = None
    details: dict[str, Any] = {"kind": row.kind, "recipient_id": str(row.recipient_id),
                               "attempts": row.attempts}
    if error is None:
        row.status = "sent"
        row.sent_at = now
        row.last_error = None
        action = "mail.sent"
        report.sent += 1
    elif error.temporary and row.attempts < settings.max_attempts:
        row.next_attempt_at = now + _backoff(row.attempts, settings)
        row.last_error = error.code[:80]
        action = "mail.retry"
        details["error"] = row.last_error
        report.retried += 1
    else:
        row.status = "failed"
        row.last_error = error.code[:80]
        action = "mail.failed"
        details["error"] = row.last_error
        report.failed += 1
    if error is not None:
        report.errors.append(error.code)
    session.flush()
    record(session, action=action, object_type="outbox", object_id=str(row.id),
           outcome="success" if error is None else "error", details=details, now=now)


# Failures of the server rather than of one message: the rest of the batch waits too, rather
# than each mail waiting out its own connection timeout while the lease runs down.
SERVER_ERRORS = frozenset({"unreachable", "tls_verify_failed", "tls_failed",
                           "starttls_not_offered", "connection_lost"})
MAX_BATCHES_PER_TICK = 10


def _release(session: Session, *, ids: Sequence[uuid.UUID], owner: str,
             retry_at: dt.datetime) -> None:
    """Give back leased rows unattempted, to be tried again at `retry_at`."""
    if ids:
        session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.id.in_(list(ids)), OutboxMessage.lease_owner == owner,
                   OutboxMessage.status == "pending")
            .values(lease_owner=None, lease_until=None, next_attempt_at=retry_at)
            .execution_options(synchronize_session=False))


def _send_one(factory: sessionmaker[Session], *, row_id: uuid.UUID, mailer: Mailer,
              smtp: SmtpSettings, clock: Callable[[], dt.datetime]) -> MailError | None:
    with session_scope(factory) as session:
        row = session.get(OutboxMessage, row_id)
        preference = session.get(ReminderPreference, row.recipient_id) if row else None
        message = None
        if row is not None and preference is not None and preference.email:
            message = build_message(row, to=preference.email, mail_from=smtp.mail_from,
                                    now=clock())
    if message is None:
        return PermanentMailError("no_address")
    try:
        mailer.send(message)
    except MailError as exc:
        return exc
    return None


def send_outbox(
    factory: sessionmaker[Session], *, mailer: Mailer, smtp: SmtpSettings,
    settings: OutboxSettings, clock: Callable[[], dt.datetime],
) -> SendReport:
    """Claim a batch, send each mail outside any transaction, settle each in its own; repeat
    while batches come back full (a backlog after downtime drains in one tick)."""
    owner = secrets.token_hex(8)
    report = SendReport()
    for _batch in range(MAX_BATCHES_PER_TICK):
        with session_scope(factory) as session:
            ids = claim(session, now=clock(), owner=owner, settings=settings)
        for index, row_id in enumerate(ids):
            error = _send_one(factory, row_id=row_id, mailer=mailer, smtp=smtp, clock=clock)
            with session_scope(factory) as session:
                _settle(session, row_id=row_id, owner=owner, now=clock(), error=error,
                        settings=settings, report=report)
                if error is not None and error.code in SERVER_ERRORS:
                    _release(session, ids=ids[index + 1:], owner=owner,
                             retry_at=clock() + _backoff(1, settings))
                    return report
        if len(ids) < settings.batch_size:
            return report
    return report
