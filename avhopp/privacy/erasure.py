"""Erasure by crypto-shredding: request, four-eyes approval, receipt, and the due-erasure job."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from avhopp.audit.policy import Actor
from avhopp.audit.services import record, register_actions
from avhopp.casework.models import Person, Track
from avhopp.db import utcnow
from avhopp.encryption.orm import REGISTRY
from avhopp.encryption.services import erase_subject
from avhopp.errors import Conflict, Forbidden, NotFound, ValidationError
from avhopp.permissions import role_has
from avhopp.privacy.models import ERASURE_GROUNDS, ErasureRequest
from avhopp.relatives.services import remove_links_of_person

PERMISSION = "privacy.erase"

register_actions({
    "erasure.requested": frozenset({"request_id", "scope", "ground", "rule"}),
    "erasure.approved": frozenset({"request_id", "rule"}),
    "erasure.cancelled": frozenset({"request_id"}),
    # The receipt: what was destroyed, on whose request, approved by whom (ids in the entry).
    "erasure.executed": frozenset({"request_id", "scope", "ground", "keys", "rows",
                                   "requested_by", "approved_by"}),
})


@dataclass(frozen=True)
class ErasureSettings:
    reauth_minutes: int = 5


def _now(now: dt.datetime | None) -> dt.datetime:
    return now or utcnow()


def _refuse(session: Session, *, action: str, actor: Actor, rule: str, object_id: str,
            error: Exception, now: dt.datetime) -> Exception:
    record(session, action=action, actor=actor, outcome="denied", object_type="person",
           object_id=object_id, details={"rule": rule}, now=now)
    return error


def _check_step_up(session: Session, *, action: str, actor: Actor, object_id: str,
                   reauthenticated_at: dt.datetime | None, settings: ErasureSettings,
                   now: dt.datetime) -> None:
    stamp = reauthenticated_at
    if (stamp is None or stamp.tzinfo is None or stamp > now
            or now - stamp > dt.timedelta(minutes=settings.reauth_minutes)):
        raise _refuse(session, action=action, actor=actor, rule="reauth_required",
                      object_id=object_id, now=now,
                      error=Forbidden("confirm your password first", code="reauth_required"))


def _check_role(session: Session, *, action: str, actor: Actor, object_id: str,
                now: dt.datetime) -> None:
    if not role_has(actor.role, PERMISSION):
        raise _refuse(session, action=action, actor=actor, rule="role", object_id=object_id,
                      now=now, error=Forbidden("not allowed to erase", code="forbidden"))


def tracks_of(session: Session, person_id: uuid.UUID) -> list[Track]:
    return list(session.scalars(select(Track).where(Track.person_id == person_id)
                                .order_by(Track.opened_at)))


def open_request(session: Session, person_id: uuid.UUID) -> ErasureRequest | None:
    return session.scalars(select(ErasureRequest).where(
        ErasureRequest.person_id == person_id,
        ErasureRequest.state.in_(("pending", "approved")))).first()


def request_erasure(
    session: Session, *, actor: Actor, track_id: uuid.UUID, ground: str, confirm_code: str,
    reauthenticated_at: dt.datetime | None, settings: ErasureSettings | None = None,
    execute_after: dt.datetime | None = None, now: dt.datetime | None = None,
) -> ErasureRequest:
    """Ask to erase the person of a track (and so every track of theirs). The caller types the
    track's code to confirm, and has confirmed their password within the step-up window. A
    second coordinator approves (approve_erasure) before anything is destroyed."""
    now = _now(now)
    settings = settings or ErasureSettings()
    track = session.get(Track, track_id)
    if track is None:
        raise NotFound("no such track", code="not_found")
    object_id = str(track.person_id)
    action = "erasure.requested"
    _check_role(session, action=action, actor=actor, object_id=object_id, now=now)
    _check_step_up(session, action=action, actor=actor, object_id=object_id,
                   reauthenticated_at=reauthenticated_at, settings=settings, now=now)
    if ground not in ERASURE_GROUNDS:
        raise ValidationError("unknown ground", code="ground")
    if confirm_code.strip().upper() != track.code.upper():
        raise _refuse(session, action=action, actor=actor, rule="confirm_mismatch",
                      object_id=object_id, now=now,
                      error=ValidationError("type the track code to confirm",
                                            code="confirm_mismatch"))
    if is_erased(session, track.person_id):
        raise Conflict("already erased", code="already_erased")
    if open_request(session, track.person_id) is not None:
        raise Conflict("an erasure is already requested", code="already_requested")
    return create_request(session, actor=actor, track=track, ground=ground,
                          execute_after=execute_after, now=now)


def create_request(session: Session, *, actor: Actor, track: Track, ground: str,
                   execute_after: dt.datetime | None, now: dt.datetime) -> ErasureRequest:
    """The pending request itself, once the caller has made its checks."""
    request = ErasureRequest(
        id=uuid.uuid4(), person_id=track.person_id, track_id=track.id, scope="track",
        ground=ground, state="pending", requested_by=actor.id, requested_at=now,
        execute_after=execute_after)
    session.add(request)
    session.flush()
    record(session, action="erasure.requested", actor=actor, object_type="person",
           object_id=str(track.person_id),
           details={"request_id": str(request.id), "scope": request.scope, "ground": ground},
           now=now)
    return request


def _load(session: Session, request_id: uuid.UUID) -> ErasureRequest:
    request = session.get(ErasureRequest, request_id)
    if request is None:
        raise NotFound("no such erasure request", code="not_found")
    return request


def approve_erasure(
    session: Session, *, actor: Actor, request_id: uuid.UUID,
    reauthenticated_at: dt.datetime | None, settings: ErasureSettings | None = None,
    now: dt.datetime | None = None,
) -> ErasureRequest:
    """The second pair of eyes: another coordinator, after a step-up. Runs the erasure at once
    unless it waits for a retention date (then run_due_erasures runs it)."""
    now = _now(now)
    settings = settings or ErasureSettings()
    request = _load(session, request_id)
    object_id = str(request.person_id)
    action = "erasure.approved"
    _check_role(session, action=action, actor=actor, object_id=object_id, now=now)
    _check_step_up(session, action=action, actor=actor, object_id=object_id,
                   reauthenticated_at=reauthenticated_at, settings=settings, now=now)
    if request.requested_by == actor.id:
        raise _refuse(session, action=action, actor=actor, rule="four_eyes",
                      object_id=object_id, now=now,
                      error=Forbidden("another coordinator must approve",
                                      code="four_eyes"))
    if request.state != "pending":
        raise Conflict("the request is not pending", code="not_pending")
    request.state = "approved"
    request.approved_by = actor.id
    request.approved_at = now
    session.flush()
    record(session, action=action, actor=actor, object_type="person", object_id=object_id,
           details={"request_id": str(request.id)}, now=now)
    if request.execute_after is None or request.execute_after <= now:
        execute_erasure(session, actor=actor, request=request, now=now)
    return request


def cancel_erasure(session: Session, *, actor: Actor, request_id: uuid.UUID,
                   now: dt.datetime | None = None) -> ErasureRequest:
    now = _now(now)
    request = _load(session, request_id)
    _check_role(session, action="erasure.cancelled", actor=actor,
                object_id=str(request.person_id), now=now)
    if request.state not in ("pending", "approved"):
        raise Conflict("the request can no longer be cancelled", code="not_pending")
    request.state = "cancelled"
    request.cancelled_by = actor.id
    request.cancelled_at = now
    session.flush()
    record(session, action="erasure.cancelled", actor=actor, object_type="person",
           object_id=str(request.person_id), details={"request_id": str(request.id)}, now=now)
    return request


def _encrypted_rows(session: Session, person_id: uuid.UUID) -> int:
    total = 0
    for model in REGISTRY:
        column = getattr(model, getattr(model, "__encryption_subject__", "id"))
        total += int(session.execute(
            select(func.count()).select_from(model).where(column == person_id)).scalar_one())
    return total


def is_erased(session: Session, person_id: uuid.UUID) -> bool:
    return session.scalars(select(ErasureRequest.id).where(
        ErasureRequest.person_id == person_id, ErasureRequest.state == "executed")).first() \
        is not None


def execute_erasure(session: Session, *, actor: Actor | None, request: ErasureRequest,
                    now: dt.datetime | None = None) -> ErasureRequest:
    """Destroy the person's data keys and blind-index values, and write the receipt. The
    caller commits, then calls encryption.services.compact_after_erasure (SQLite's WAL)."""
    now = _now(now)
    if request.state != "approved":
        raise Conflict("only an approved request runs", code="not_approved")
    rows = _encrypted_rows(session, request.person_id)
    keys = erase_subject(session, actor=actor, subject_id=request.person_id, now=now)
    # An erased person's tracks keep no links to other tracks (DOMAIN.md): a link would go on
    # telling the other side that this person exists.
    remove_links_of_person(session, actor=actor, person_id=request.person_id, now=now)
    # Values the person's objects still hold in this session must not outlive the keys.
    for obj in list(session.identity_map.values()):
        if isinstance(obj, Person) and obj.id == request.person_id:
            session.expire(obj)
    request.state = "executed"
    request.executed_at = now
    request.keys_destroyed = keys
    session.flush()
    record(session, action="erasure.executed", actor=actor, object_type="person",
           object_id=str(request.person_id),
           details={"request_id": str(request.id), "scope": request.scope,
                    "ground": request.ground, "keys": keys, "rows": rows,
                    "requested_by": str(request.requested_by),
                    "approved_by": str(request.approved_by)}, now=now)
    return request


def run_due_erasures(session: Session, *, actor: Actor | None = None,
                     now: dt.datetime | None = None) -> list[ErasureRequest]:
    """Run every approved erasure whose time has come (the scheduler calls this daily; so does
    `avhopp retention run`). The caller commits and compacts."""
    now = _now(now)
    query = select(ErasureRequest).where(
        ErasureRequest.state == "approved",
        (ErasureRequest.execute_after.is_(None)) | (ErasureRequest.execute_after <= now),
    ).order_by(ErasureRequest.approved_at)
    if session.get_bind().dialect.name == "postgresql":
        # Two schedulers at once: the second skips the requests the first holds, so each
        # erasure has one receipt. SQLite's BEGIN IMMEDIATE serialises the two runs anyway.
        query = query.with_for_update(skip_locked=True)
    due: Sequence[ErasureRequest] = session.scalars(query).all()
    return [execute_erasure(session, actor=actor, request=r, now=now) for r in due]


def requests(session: Session, *, limit: int = 200) -> list[ErasureRequest]:
    order = ErasureRequest.requested_at.desc()
    return list(session.scalars(select(ErasureRequest).order_by(order).limit(limit)))
