"""The one choke point that writes audit events, in the caller's transaction; and the log's
own operations: signed checkpoints, proofs, verification, board sign-off and redaction."""

from __future__ import annotations

import contextvars
import datetime as dt
import json
import logging
import secrets
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import Table, delete, func, insert, select, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from avhopp.audit.merkle import TreeBuilder, encode_entry, leaf_hash
from avhopp.audit.models import (
    REDACTED_COLUMNS,
    AuditCheckpoint,
    AuditEvent,
    AuditHead,
    AuditSignOff,
    entry_fields,
)
from avhopp.audit.note import (
    NoteError,
    Signer,
    Verifier,
    format_checkpoint,
    open_note,
    parse_checkpoint,
    sign_note,
)

# Actor is re-exported: feature services import it from here.
from avhopp.audit.policy import Actor, AuditSettings, SigningKeySource, require_reviewer
from avhopp.audit.tree import MerkleLevels
from avhopp.audit.verify import Report, WitnessFile, verify_log
from avhopp.db import utcnow
from avhopp.errors import Forbidden, ValidationError

logger = logging.getLogger(__name__)

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
    # The audit log's own operations (this package).
    "audit.checkpoint_signed": frozenset(),
    "audit.viewed": frozenset({"page", "count"}),
    "audit.exported": frozenset({"kind", "count", "size", "from_size"}),
    "audit.verified": frozenset({"result", "size", "first_bad_seq", "problems", "witnesses"}),
    "audit.signed_off": frozenset({"from_seq", "to_seq"}),
    "audit.redacted": frozenset({"count", "through_seq", "before"}),
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
        # Special-category data (environment, background) without that consent in force.
        "consent_required",
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


_HEAD_TABLE = cast(Table, AuditHead.__table__)
_EVENT_TABLE = cast(Table, AuditEvent.__table__)
_NEXT_SEQ = (
    update(_HEAD_TABLE)
    .where(_HEAD_TABLE.c.id == 1)
    .values(size=_HEAD_TABLE.c.size + 1)
    .returning(_HEAD_TABLE.c.size)
)


def _next_seq(session: Session) -> int:
    """Take the next sequence number: one UPDATE ... RETURNING that also locks the head row.

    The row lock (PostgreSQL) or the write lock (SQLite, BEGIN IMMEDIATE) is held to commit, so
    concurrent writers queue here and take consecutive numbers; a rollback returns the number.
    """
    connection = session.connection()
    taken = connection.execute(_NEXT_SEQ).scalar_one_or_none()
    if taken is None:
        # A database the migration did not seed; the primary key keeps this to one row.
        connection.execute(insert(_HEAD_TABLE).values(id=1, size=0))
        taken = connection.execute(_NEXT_SEQ).scalar_one()
    # A head row loaded earlier in this session is now stale.
    loaded = session.identity_map.get(session.identity_key(AuditHead, 1))
    if loaded is not None:
        session.expire(loaded)
    return int(taken)


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
    # The caller's pending changes go first, so the entry follows what it describes.
    session.flush()
    event = AuditEvent(
        seq=_next_seq(session),
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
    # A Core INSERT: the ORM unit of work would double the cost of every audited write. The
    # returned event is not attached to the session (nothing should change it anyway).
    session.connection().execute(
        insert(_EVENT_TABLE),
        {column.key: getattr(event, column.key) for column in _EVENT_TABLE.columns},
    )
    return event


# --- checkpoints ----------------------------------------------------------------------------


def _trusted_frontier(checkpoint: AuditCheckpoint, verifier: Verifier, origin: str) -> bool:
    """Whether a stored checkpoint's frontier is genuine: signed, and hashing to its root."""
    try:
        body = parse_checkpoint(open_note(checkpoint.note, [verifier]))
        builder = TreeBuilder.from_frontier(checkpoint.size, checkpoint.frontier)
    except (NoteError, ValueError):
        return False
    return (
        body.origin == origin
        and body.size == checkpoint.size
        and body.root == checkpoint.root
        and builder.root() == checkpoint.root
    )


def tree_at(session: Session, size: int, *, verifier: Verifier, origin: str) -> TreeBuilder:
    """The tree of the first `size` stored leaf hashes, resumed from the nearest checkpoint."""
    start = session.scalars(
        select(AuditCheckpoint)
        .where(AuditCheckpoint.size <= size)
        .order_by(AuditCheckpoint.size.desc())
        .limit(1)
    ).first()
    builder = TreeBuilder()
    if start is not None:
        if _trusted_frontier(start, verifier, origin):
            builder = TreeBuilder.from_frontier(start.size, start.frontier)
        else:
            logger.warning("audit checkpoint %s does not verify; rehashing from the start",
                           start.size)
    rows = session.execute(
        select(AuditEvent.seq, AuditEvent.leaf_hash)
        .where(AuditEvent.seq > builder.size, AuditEvent.seq <= size)
        .order_by(AuditEvent.seq)
        .execution_options(yield_per=20_000)
    )
    for seq, leaf in rows:
        if seq != builder.size + 1:
            raise AuditError(f"the audit log has a gap at {builder.size + 1}; run "
                             "`avhopp audit verify`")
        builder.append(bytes(leaf))
    if builder.size != size:
        raise AuditError(f"the audit log ends at {builder.size}, before {size}")
    return builder


def sign_checkpoint(
    session: Session,
    *,
    signer: Signer,
    verifier: Verifier,
    origin: str,
    keep_days: int | None = None,
    now: dt.datetime | None = None,
) -> AuditCheckpoint:
    """Append the heartbeat entry, sign the tree head that ends with it, store the checkpoint.

    The heartbeat (`audit.checkpoint_signed`) makes every checkpoint show that the log was
    alive and growing at that moment. Holding the head lock from the heartbeat to the commit
    keeps other writers out, so the signed tree is exactly the first `size` entries.
    """
    if signer.vkey != verifier.vkey:
        raise AuditError("the key ring's audit signing key does not match AUDIT_PUBLIC_KEY; "
                         "refusing to sign checkpoints no verifier would accept")
    now = now or utcnow()
    heartbeat = record(session, action="audit.checkpoint_signed", now=now)
    builder = tree_at(session, heartbeat.seq, verifier=verifier, origin=origin)
    root = builder.root()
    note = sign_note(format_checkpoint(origin, builder.size, root), signer)
    checkpoint = AuditCheckpoint(size=builder.size, root=root, note=note,
                                 frontier=builder.frontier(), signed_at=now)
    session.add(checkpoint)
    session.flush()
    if keep_days is not None:
        prune_checkpoints(session, keep_days=keep_days, now=now)
    return checkpoint


def heartbeat(
    session: Session,
    *,
    settings: AuditSettings,
    keys: SigningKeySource,
    now: dt.datetime | None = None,
) -> AuditCheckpoint:
    """The scheduler's and `avhopp audit checkpoint`'s entry point: sign a checkpoint with the
    configured origin and keys, and thin the old ones."""
    return sign_checkpoint(
        session, signer=settings.signer(keys), verifier=settings.verifier(keys),
        origin=settings.origin, keep_days=settings.checkpoint_keep_days, now=now,
    )


def prune_checkpoints(session: Session, *, keep_days: int, now: dt.datetime) -> int:
    """Keep every checkpoint of the last `keep_days` days and the last one of each older day.

    Verification checks every stored checkpoint; thinning keeps that cost flat over the years.
    Board members' own copies are what a rewrite cannot reach, and proofs can be made between
    any two sizes, so no evidence is lost.
    """
    cutoff = now - dt.timedelta(days=keep_days)
    old = session.execute(
        select(AuditCheckpoint.size, AuditCheckpoint.signed_at)
        .where(AuditCheckpoint.signed_at < cutoff)
    ).all()
    last_of_day: dict[dt.date, int] = {}
    for size, signed_at in old:
        day = signed_at.astimezone(dt.UTC).date()
        last_of_day[day] = max(size, last_of_day.get(day, 0))
    doomed = sorted({size for size, _ in old} - set(last_of_day.values()))
    for i in range(0, len(doomed), 500):
        session.execute(delete(AuditCheckpoint).where(AuditCheckpoint.size.in_(doomed[i:i + 500])))
    return len(doomed)


def latest_checkpoint(session: Session) -> AuditCheckpoint | None:
    return session.scalars(
        select(AuditCheckpoint).order_by(AuditCheckpoint.size.desc()).limit(1)
    ).first()


def checkpoint_for_download(
    session: Session, *, actor: Actor | None, size: int | None = None,
    now: dt.datetime | None = None,
) -> AuditCheckpoint | None:
    """A stored checkpoint (the latest by default); the download is recorded."""
    require_reviewer(actor)
    checkpoint = (
        latest_checkpoint(session) if size is None else session.get(AuditCheckpoint, size)
    )
    if checkpoint is not None:
        record(session, action="audit.exported", actor=actor, object_type="checkpoint",
               object_id=str(checkpoint.size),
               details={"kind": "checkpoint", "size": checkpoint.size}, now=now)
    return checkpoint


def leaf_levels(session: Session, size: int) -> MerkleLevels:
    """All subtree hashes of the first `size` stored leaves (for proofs)."""
    levels = MerkleLevels()
    rows = session.execute(
        select(AuditEvent.seq, AuditEvent.leaf_hash)
        .where(AuditEvent.seq <= size)
        .order_by(AuditEvent.seq)
        .execution_options(yield_per=20_000)
    )
    for seq, leaf in rows:
        if seq != levels.size + 1:
            raise AuditError(f"the audit log has a gap at {levels.size + 1}")
        levels.append(bytes(leaf))
    if levels.size != size:
        raise AuditError(f"the audit log ends at {levels.size}, before {size}")
    return levels


def consistency_proof(
    session: Session, *, actor: Actor | None, old_size: int, new_size: int | None = None,
    now: dt.datetime | None = None,
) -> tuple[int, list[bytes]]:
    """The proof that the tree of `old_size` entries is a prefix of the tree of `new_size`
    (default: the latest stored checkpoint). Returns (new_size, proof); recorded."""
    require_reviewer(actor)
    if new_size is None:
        latest = latest_checkpoint(session)
        if latest is None:
            raise ValidationError("no checkpoint has been signed yet", code="no_checkpoint")
        new_size = latest.size
    head = session.get(AuditHead, 1)
    current = head.size if head is not None else 0
    if not 0 <= old_size <= new_size <= current:
        raise ValidationError(f"sizes must satisfy 0 <= old ({old_size}) <= new ({new_size}) "
                              f"<= {current}", code="bad_sizes")
    proof = leaf_levels(session, new_size).consistency_proof(old_size, new_size)
    record(session, action="audit.exported", actor=actor, object_type="proof",
           object_id=f"{old_size}-{new_size}",
           details={"kind": "proof", "from_size": old_size, "size": new_size}, now=now)
    return new_size, proof


def format_proof(proof: Sequence[bytes]) -> str:
    """One base64 hash per line, the format tools/verify_checkpoint.py reads."""
    import base64

    return "".join(base64.b64encode(h).decode("ascii") + "\n" for h in proof)


# --- verification ---------------------------------------------------------------------------


class VerificationNotRecorded(AuditError):
    """Verification ran but its `audit.verified` entry could not be written."""

    def __init__(self, report: Report) -> None:
        super().__init__("the verification result could not be recorded in the audit log")
        self.report = report


def verify(
    session: Session,
    *,
    actor: Actor | None,
    verifier: Verifier,
    origin: str,
    witnesses: Iterable[WitnessFile] = (),
    progress: Callable[[int, int], None] | None = None,
    now: dt.datetime | None = None,
) -> Report:
    """Verify the whole log (see audit.verify) and record the result as `audit.verified`."""
    require_reviewer(actor)
    witness_list = list(witnesses)
    report, _tree = verify_log(session, verifier=verifier, origin=origin,
                               witnesses=witness_list, progress=progress)
    details: dict[str, Any] = {
        "result": "ok" if report.ok else "failed",
        "size": report.size,
        "problems": report.problem_count,
        "witnesses": len(witness_list),
    }
    if report.first_bad_seq is not None:
        details["first_bad_seq"] = report.first_bad_seq
    try:
        # A savepoint: on a damaged log (say, a head row reset by hand) the entry may not fit,
        # and the caller still gets the report through the exception.
        with session.begin_nested():
            record(session, action="audit.verified", actor=actor,
                   outcome="success" if report.ok else "error", details=details, now=now)
    except (SQLAlchemyError, AuditError) as exc:
        raise VerificationNotRecorded(report) from exc
    return report


# --- board review ---------------------------------------------------------------------------


def record_view(
    session: Session, *, actor: Actor, page: str, count: int | None = None,
    now: dt.datetime | None = None,
) -> AuditEvent:
    """Record that a board member looked at the log (before the page is built)."""
    require_reviewer(actor)
    details: dict[str, Any] = {"page": page}
    if count is not None:
        details["count"] = count
    return record(session, action="audit.viewed", actor=actor, purpose="audit_review",
                  details=details, now=now)


def record_export(
    session: Session, *, actor: Actor, kind: str, count: int, now: dt.datetime | None = None
) -> AuditEvent:
    require_reviewer(actor)
    return record(session, action="audit.exported", actor=actor, purpose="audit_review",
                  details={"kind": kind, "count": count}, now=now)


def sign_off(
    session: Session,
    *,
    actor: Actor,
    from_seq: int,
    to_seq: int,
    verifier: Verifier,
    origin: str,
    now: dt.datetime | None = None,
) -> AuditSignOff:
    """Record that `actor` reviewed entries from_seq..to_seq, pinned by the tree root."""
    require_reviewer(actor)
    if actor is None:
        raise Forbidden("a sign-off needs a board member")
    now = now or utcnow()
    event = record(session, action="audit.signed_off", actor=actor, purpose="audit_review",
                   object_type="range", object_id=f"{from_seq}-{to_seq}",
                   details={"from_seq": from_seq, "to_seq": to_seq}, now=now)
    # The head is locked now; the new entry itself is outside the reviewed range.
    if not 1 <= from_seq <= to_seq < event.seq:
        raise ValidationError(f"the range must lie within 1..{event.seq - 1}", code="bad_range")
    root = tree_at(session, to_seq, verifier=verifier, origin=origin).root()
    signoff = AuditSignOff(from_seq=from_seq, to_seq=to_seq, tree_root=root,
                           signed_off_by=actor.id, signed_off_at=now, event_seq=event.seq)
    session.add(signoff)
    session.flush()
    return signoff


# --- retention of the log itself ------------------------------------------------------------


def redact(
    session: Session,
    *,
    actor: Actor | None,
    before: dt.datetime,
    min_age_days: int,
    now: dt.datetime | None = None,
) -> int:
    """Empty the payload of entries older than `before`, keeping their leaf hashes.

    The tree still verifies (verification uses the stored leaf hash of a redacted entry), and
    the `audit.redacted` entry says up to which sequence number redaction was authorised.
    Only the operator (CLI) or the retention job may do this.
    """
    if actor is not None:
        raise Forbidden("redaction of the audit log is an operator task")
    now = now or utcnow()
    if before.tzinfo is None:
        raise ValidationError("naive datetime", code="naive_datetime")
    if before > now - dt.timedelta(days=min_age_days):
        raise ValidationError(f"entries younger than {min_age_days} days may not be redacted",
                              code="too_recent")
    pending = (AuditEvent.occurred_at < before) & AuditEvent.redacted_at.is_(None)
    through = session.scalar(select(func.max(AuditEvent.seq)).where(pending)) or 0
    result = session.execute(
        update(AuditEvent)
        .where(pending)
        .values({**dict.fromkeys(REDACTED_COLUMNS), "redacted_at": now})
        .execution_options(synchronize_session=False)
    )
    count = int(getattr(result, "rowcount", 0) or 0)
    record(session, action="audit.redacted", actor=actor, details={
        "count": count, "through_seq": through, "before": before.date().isoformat()}, now=now)
    return count


def redact_expired(
    session: Session,
    *,
    retention_days: int,
    min_age_days: int,
    now: dt.datetime | None = None,
) -> int:
    """The scheduler's daily retention of the log: redact entries from before the UTC day
    `retention_days` ago. Records nothing when nothing is due, so a daily job adds no entry on
    days without work. Each run's `audit.redacted` covers the previous one's (it is older), so
    verification always finds a recorded redaction for every redacted entry."""
    now = now or utcnow()
    if retention_days < min_age_days:
        raise ValidationError(f"entries younger than {min_age_days} days may not be redacted",
                              code="too_recent")
    day = (now - dt.timedelta(days=retention_days)).date()
    before = dt.datetime.combine(day, dt.time(), tzinfo=dt.UTC)
    due = session.scalar(select(AuditEvent.seq).where(
        AuditEvent.occurred_at < before, AuditEvent.redacted_at.is_(None)).limit(1))
    if due is None:
        return 0
    return redact(session, actor=None, before=before, min_age_days=min_age_days, now=now)


def register_actions(actions: Mapping[str, frozenset[str]]) -> None:
    """Add a feature's actions to the catalogue (each feature declares its own, at import).

    Re-registering an action with different detail keys is a programming error.
    """
    for action, keys in actions.items():
        existing = ACTIONS.get(action)
        if existing is not None and existing != keys:
            raise AuditError(f"audit action {action} registered twice with different details")
        ACTIONS[action] = frozenset(keys)
