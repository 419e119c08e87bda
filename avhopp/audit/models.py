"""The append-only audit event table, its sequence head, signed checkpoints and board sign-offs."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence

from sqlalchemy import BigInteger, Index, Integer, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from avhopp.audit.merkle import encode_entry, leaf_hash
from avhopp.db import Base

INTERNAL = {"data_class": "internal"}

# Columns emptied when an old entry is redacted for retention (docs/audit.md). What stays is
# enough to keep the tree verifiable (seq, leaf_hash) and to count what happened when
# (occurred_at, action, outcome); the database triggers allow exactly this change.
REDACTED_COLUMNS = (
    "actor_id",
    "actor_role",
    "session_hash",
    "client_addr",
    "object_type",
    "object_id",
    "purpose",
    "details",
    "request_id",
    "nonce",
)


class AuditEvent(Base):
    """One leaf of the audit Merkle tree. Holds ids, codes and field names, never values."""

    __tablename__ = "audit_event"

    seq: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"),
        primary_key=True,
        autoincrement=False,
        info=INTERNAL,
    )
    occurred_at: Mapped[dt.datetime] = mapped_column(index=True, info=INTERNAL)
    actor_id: Mapped[uuid.UUID | None] = mapped_column(index=True, info=INTERNAL)
    actor_role: Mapped[str | None] = mapped_column(String(20), info=INTERNAL)
    session_hash: Mapped[str | None] = mapped_column(String(64), info=INTERNAL)
    client_addr: Mapped[str | None] = mapped_column(String(64), info=INTERNAL)
    action: Mapped[str] = mapped_column(String(64), index=True, info=INTERNAL)
    object_type: Mapped[str | None] = mapped_column(String(32), info=INTERNAL)
    object_id: Mapped[str | None] = mapped_column(String(64), index=True, info=INTERNAL)
    outcome: Mapped[str] = mapped_column(String(10), index=True, info=INTERNAL)
    purpose: Mapped[str | None] = mapped_column(String(64), info=INTERNAL)
    # NULL only on redacted entries; record() always writes a JSON object.
    details: Mapped[str | None] = mapped_column(Text, default="{}", info=INTERNAL)
    request_id: Mapped[str | None] = mapped_column(String(32), info=INTERNAL)
    nonce: Mapped[bytes | None] = mapped_column(LargeBinary(16), info=INTERNAL)
    leaf_hash: Mapped[bytes] = mapped_column(LargeBinary(32), info=INTERNAL)
    redacted_at: Mapped[dt.datetime | None] = mapped_column(info=INTERNAL)

    __table_args__ = (
        # The board's "unusual volume" flag counts one actor's reads in one hour.
        Index("ix_audit_event_actor_time", "actor_id", "occurred_at"),
    )


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


def computed_leaf_hash(event: AuditEvent) -> bytes:
    """The leaf hash the entry's fields give now (equal to event.leaf_hash unless tampered)."""
    return leaf_hash(encode_entry(entry_fields(event)))


class AuditHead(Base):
    """Exactly one row (id=1): the current tree size. Locking it makes the sequence gap-free
    across workers and hosts, because a rolled-back writer also rolls back its increment."""

    __tablename__ = "audit_head"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False, info=INTERNAL)
    size: Mapped[int] = mapped_column(BigInteger, default=0, info=INTERNAL)


class AuditCheckpoint(Base):
    """A signed tree head (C2SP checkpoint) over the first `size` entries.

    `note` is the complete signed note as handed to board members; `size` and `root` repeat
    its body for querying, and `frontier` (the roots of the perfect subtrees of the tree of
    that size, largest first) lets the next checkpoint be computed without rereading the log.
    """

    __tablename__ = "audit_checkpoint"

    size: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"),
        primary_key=True,
        autoincrement=False,
        info=INTERNAL,
    )
    root: Mapped[bytes] = mapped_column(LargeBinary(32), info=INTERNAL)
    note: Mapped[str] = mapped_column(Text, info=INTERNAL)
    frontier: Mapped[bytes] = mapped_column(LargeBinary, info=INTERNAL)
    signed_at: Mapped[dt.datetime] = mapped_column(index=True, info=INTERNAL)


class AuditSignOff(Base):
    """A board member's sign-off of a reviewed range of entries, pinned by the tree root."""

    __tablename__ = "audit_signoff"

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, info=INTERNAL
    )
    from_seq: Mapped[int] = mapped_column(BigInteger, info=INTERNAL)
    to_seq: Mapped[int] = mapped_column(BigInteger, info=INTERNAL)
    # Root of the tree of the first `to_seq` entries when the range was signed off: the
    # reviewed entries cannot later change without this disagreeing with the log.
    tree_root: Mapped[bytes] = mapped_column(LargeBinary(32), info=INTERNAL)
    signed_off_by: Mapped[uuid.UUID] = mapped_column(info=INTERNAL)
    signed_off_at: Mapped[dt.datetime] = mapped_column(info=INTERNAL)
    # The audit.signed_off entry that records this sign-off in the log itself.
    event_seq: Mapped[int] = mapped_column(BigInteger, info=INTERNAL)
