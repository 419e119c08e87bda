"""Retention (gallring): rules, retention dates, monthly review and the job the scheduler runs."""

from __future__ import annotations

import calendar
import datetime as dt
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from avhopp.audit.policy import Actor
from avhopp.audit.services import record, register_actions
from avhopp.casework.models import CLOSURE_REASONS, TRACK_KINDS, Track
from avhopp.config import ConfigError
from avhopp.db import utcnow
from avhopp.errors import Conflict, Forbidden, NotFound, ValidationError
from avhopp.permissions import role_has
from avhopp.privacy import erasure
from avhopp.privacy.models import EXTEND_REASONS, ErasureRequest

PERMISSION = "privacy.retention"

register_actions({
    "retention.extended": frozenset({"until", "previous", "ground"}),
    "retention.dates_set": frozenset({"count"}),
    "retention.run": frozenset({"erased", "awaiting_review", "dated"}),
})


@dataclass(frozen=True)
class RetentionRules:
    """Days a closed track is kept after closing: a default, overridden per track kind and per
    closure reason (the longest applicable rule wins)."""

    default_days: int = 3 * 365
    by_kind: Mapping[str, int] = field(default_factory=dict)
    by_reason: Mapping[str, int] = field(default_factory=dict)

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> RetentionRules:
        default = int(config.get("RETENTION_DAYS_AFTER_CLOSURE", cls.default_days))
        by_kind = _parse(config.get("RETENTION_DAYS_BY_KIND", ""), TRACK_KINDS,
                         "RETENTION_DAYS_BY_KIND")
        by_reason = _parse(config.get("RETENTION_DAYS_BY_CLOSURE_REASON", ""), CLOSURE_REASONS,
                           "RETENTION_DAYS_BY_CLOSURE_REASON")
        return cls(default, by_kind, by_reason)

    def days_for(self, track: Track) -> int:
        candidates = [self.by_kind.get(track.kind), self.by_reason.get(track.closure_reason or "")]
        found = [d for d in candidates if d is not None]
        return max(found) if found else self.default_days

    def date_for(self, track: Track) -> dt.date | None:
        if track.closed_at is None:
            return None
        return track.closed_at.date() + dt.timedelta(days=self.days_for(track))


def _parse(spec: Any, allowed: tuple[str, ...], name: str) -> dict[str, int]:
    """'contact_lost=730, returned_to_environment=1825' -> {code: days}."""
    out: dict[str, int] = {}
    for part in str(spec or "").split(","):
        if not part.strip():
            continue
        code, _, days = part.partition("=")
        code = code.strip()
        if code not in allowed or not days.strip().isdigit():
            raise ConfigError(f"{name}: {part.strip()!r} is not CODE=DAYS with a known code")
        out[code] = int(days)
    return out


def assign_dates(session: Session, *, rules: RetentionRules) -> int:
    """Give closed tracks without a retention date the date their rules give."""
    count = 0
    for track in session.scalars(select(Track).where(
            Track.status == "closed", Track.retention_until.is_(None))):
        track.retention_until = rules.date_for(track)
        count += 1
    if count:
        session.flush()
        record(session, action="retention.dates_set", details={"count": count})
    return count


def end_of_month(day: dt.date) -> dt.date:
    return day.replace(day=calendar.monthrange(day.year, day.month)[1])


@dataclass(frozen=True)
class ReviewRow:
    track_id: uuid.UUID
    code: str
    kind: str
    closed_at: dt.datetime | None
    closure_reason: str | None
    retention_until: dt.date
    request_state: str | None


def review_list(session: Session, *, now: dt.datetime | None = None) -> list[ReviewRow]:
    """Closed tracks whose retention date falls in this month or has passed, and whose person
    is not erased yet: the coordinator's monthly review."""
    now = now or utcnow()
    last = end_of_month(now.date())
    tracks = session.scalars(select(Track).where(
        Track.status == "closed", Track.retention_until.is_not(None),
        Track.retention_until <= last).order_by(Track.retention_until, Track.code)).all()
    states = {r.person_id: r.state for r in session.scalars(select(ErasureRequest).where(
        ErasureRequest.person_id.in_([t.person_id for t in tracks]),
        ErasureRequest.state.in_(("pending", "approved", "executed"))))} if tracks else {}
    return [ReviewRow(t.id, t.code, t.kind, t.closed_at, t.closure_reason,
                      t.retention_until, states.get(t.person_id))
            for t in tracks
            if t.retention_until is not None and states.get(t.person_id) != "executed"]


def _check(session: Session, actor: Actor, track_id: uuid.UUID) -> Track:
    if not role_has(actor.role, PERMISSION):
        raise Forbidden("not allowed", code="forbidden")
    track = session.get(Track, track_id)
    if track is None:
        raise NotFound("no such track", code="not_found")
    if track.status != "closed" or track.retention_until is None:
        raise ValidationError("only closed tracks have a retention date", code="not_closed")
    return track


def extend(session: Session, *, actor: Actor, track_id: uuid.UUID, until: dt.date,
           reason: str, now: dt.datetime | None = None) -> Track:
    """Keep a closed track longer, for a stated reason (a code: free text could name people)."""
    now = now or utcnow()
    track = _check(session, actor, track_id)
    if reason not in EXTEND_REASONS:
        raise ValidationError("unknown reason", code="reason")
    previous = track.retention_until
    if previous is None or until <= previous or until <= now.date():
        raise ValidationError("the new date must be later", code="extend_date")
    track.retention_until = until
    session.flush()
    record(session, action="retention.extended", actor=actor, object_type="track",
           object_id=track.code, details={"until": until.isoformat(),
                                          "previous": previous.isoformat(), "ground": reason},
           now=now)
    return track


def propose_erasure(session: Session, *, actor: Actor, track_id: uuid.UUID,
                    now: dt.datetime | None = None) -> ErasureRequest:
    """Request erasure on the retention date; a second coordinator approves it as any other."""
    now = now or utcnow()
    track = _check(session, actor, track_id)
    if erasure.open_request(session, track.person_id) is not None:
        raise Conflict("already requested", code="already_requested")
    if erasure.is_erased(session, track.person_id):
        raise Conflict("already erased", code="already_erased")
    assert track.retention_until is not None  # noqa: S101  # nosec B101 - checked in _check
    due = dt.datetime.combine(track.retention_until, dt.time(), tzinfo=dt.UTC)
    return erasure.create_request(session, actor=actor, track=track, ground="retention",
                                  execute_after=max(due, now), now=now)


@dataclass
class RunResult:
    erased: list[ErasureRequest]
    awaiting_review: list[ReviewRow]
    dated: int


def run_due_erasures(session: Session, *, rules: RetentionRules, now: dt.datetime,
                     dry_run: bool = False) -> RunResult:
    """What the scheduler calls daily: date newly closed tracks, run approved erasures that are
    due, and report tracks past their date still awaiting a decision. The caller commits (and
    then calls encryption.services.compact_after_erasure); a dry run changes nothing."""
    if dry_run:
        due = session.scalars(select(ErasureRequest).where(
            ErasureRequest.state == "approved",
            ErasureRequest.execute_after.is_(None) | (ErasureRequest.execute_after <= now))
            .order_by(ErasureRequest.approved_at)).all()
        waiting = [r for r in review_list(session, now=now)
                   if r.retention_until <= now.date() and r.request_state is None]
        return RunResult(list(due), waiting, 0)
    dated = assign_dates(session, rules=rules)
    done = erasure.run_due_erasures(session, actor=None, now=now)
    waiting = [r for r in review_list(session, now=now)
               if r.retention_until <= now.date() and r.request_state is None]
    record(session, action="retention.run", details={
        "erased": len(done), "awaiting_review": len(waiting), "dated": dated}, now=now)
    return RunResult(done, waiting, dated)
