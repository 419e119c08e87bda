"""The one choke point that writes audit events, in the caller's transaction."""

from __future__ import annotations

import contextvars
import datetime as dt
import json
import secrets
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from sqlalchemy import select
from sqlalchemy.orm import Session

from avhopp.audit.merkle import encode_entry, leaf_hash
from avhopp.audit.models import AuditEvent, AuditHead
from avhopp.db import utcnow

OUTCOMES = ("success", "denied", "error")

# The fixed catalogue: action -> detail keys it may carry. Details hold field names, counts and
# reason codes only; anything else is refused so a value can never slip into the log.
ACTIONS: dict[str, frozenset[str]] = {
    "auth.login_password": frozenset({"reason"}),
    "auth.login_second_factor": frozenset({"reason", "method"}),
    "auth.totp_enrolled": frozenset(),
    "auth.logout": frozenset(),
    "auth.logout_everywhere": frozenset({"sessions"}),
    "auth.password_changed": frozenset({"reason"}),
    "auth.reauthenticated": frozenset({"reason"}),
    "auth.session_expired": frozenset({"reason"}),
    "user.created": frozenset({"role"}),
    "user.deactivated": frozenset({"sessions"}),
    "user.reactivated": frozenset(),
    "user.role_changed": frozenset({"old_role", "new_role"}),
    "user.totp_reset": frozenset({"sessions"}),
    "user.unlocked": frozenset(),
    "user.listed": frozenset({"count"}),
    "security.csrf_rejected": frozenset({"endpoint"}),
    "security.access_denied": frozenset({"endpoint", "permission"}),
    "key.subject_erased": frozenset({"keys"}),
    "key.subject_rotated": frozenset({"rows"}),
    "key.kek_rotated": frozenset({"keys", "staff"}),
    "key.kek_added": frozenset(),
    "key.kek_retired": frozenset(),
    "key.index_version_added": frozenset({"version"}),
    "key.index_switched": frozenset({"version"}),
}

REASON_CODES = frozenset(
    {
        "bad_credentials",
        "locked",
        "address_throttled",
        "inactive",
        "bad_code",
        "replayed_code",
        "too_many_codes",
        "wrong_current_password",
        "weak_password",
        "must_change",
        "idle_timeout",
        "absolute_timeout",
        "stale_version",
    }
)


class AuditError(Exception):
    """An audit event could not be recorded; the surrounding transaction must not commit."""


@dataclass(frozen=True)
class AuditContext:
    """Who and where, set once per request by the web layer (or by the CLI / scheduler)."""

    client_addr: str | None = None
    session_hash: str | None = None
    request_id: str | None = None
    channel: str = "web"


_CLI_CONTEXT = AuditContext(channel="cli")
_context: contextvars.ContextVar[AuditContext | None] = contextvars.ContextVar(
    "avhopp_audit_context", default=None
)


def set_context(ctx: AuditContext) -> contextvars.Token[AuditContext | None]:
    return _context.set(ctx)


def reset_context(token: contextvars.Token[AuditContext | None]) -> None:
    _context.reset(token)


def current_context() -> AuditContext:
    return _context.get() or _CLI_CONTEXT


class Actor(Protocol):
    @property
    def id(self) -> uuid.UUID: ...

    @property
    def role(self) -> str: ...


def _check_details(action: str, details: Mapping[str, Any]) -> str:
    allowed = ACTIONS.get(action)
    if allowed is None:
        raise AuditError(f"unknown audit action {action!r}")
    extra = set(details) - allowed
    if extra:
        raise AuditError(f"detail keys not allowed for {action}: {sorted(extra)}")
    for key, value in details.items():
        if key == "reason" and value not in REASON_CODES:
            raise AuditError(f"unknown reason code for {action}")
        if not isinstance(value, (int, str, bool)) or (isinstance(value, str) and len(value) > 64):
            raise AuditError(f"detail {key} of {action} must be a short code or a number")
    return json.dumps(dict(details), sort_keys=True, separators=(",", ":"))


def entry_fields(event: AuditEvent) -> Sequence[bytes | str | int | None]:
    """The fields that go into the leaf hash, in their fixed order (docs/audit.md)."""
    return (
        event.seq,
        event.occurred_at.astimezone(dt.UTC).isoformat(timespec="microseconds"),
        str(event.actor_id) if event.actor_id else None,
        event.actor_role,
        event.session_hash,
        event.client_addr,
        event.action,
        event.object_type,
        event.object_id,
        event.outcome,
        event.purpose,
        event.details,
        event.request_id,
        event.nonce,
    )


def _lock_head(session: Session) -> AuditHead:
    stmt = select(AuditHead).where(AuditHead.id == 1)
    if session.get_bind().dialect.name == "postgresql":
        # Row lock held to commit: concurrent writers queue here and take consecutive numbers.
        stmt = stmt.with_for_update()
    head = session.scalars(stmt).one_or_none()
    if head is None:
        head = AuditHead(id=1, size=0)
        session.add(head)
        session.flush()
    return head


def record(
    session: Session,
    *,
    action: str,
    actor: Actor | None = None,
    outcome: str = "success",
    object_type: str | None = None,
    object_id: str | None = None,
    purpose: str | None = None,
    details: Mapping[str, Any] | None = None,
    now: dt.datetime | None = None,
) -> AuditEvent:
    """Append one event in the caller's transaction and flush it.

    Raises AuditError (or a database error) if the event cannot be written; callers let it
    propagate so that the change it describes is rolled back with it.
    """
    if outcome not in OUTCOMES:
        raise AuditError(f"unknown outcome {outcome!r}")
    details_json = _check_details(action, details or {})
    ctx = current_context()
    head = _lock_head(session)
    head.size += 1
    event = AuditEvent(
        seq=head.size,
        occurred_at=now or utcnow(),
        actor_id=actor.id if actor is not None else None,
        actor_role=actor.role if actor is not None else None,
        session_hash=ctx.session_hash,
        client_addr=ctx.client_addr,
        action=action,
        object_type=object_type,
        object_id=object_id,
        outcome=outcome,
        purpose=purpose,
        details=details_json,
        request_id=ctx.request_id,
        nonce=secrets.token_bytes(16),
    )
    event.leaf_hash = leaf_hash(encode_entry(entry_fields(event)))
    session.add(event)
    session.flush()
    return event
