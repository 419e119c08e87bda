"""The append-only audit event table and the single-row head that hands out sequence numbers."""

from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy import BigInteger, Integer, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from avhopp.db import Base

INTERNAL = {"data_class": "internal"}


class AuditEvent(Base):
    """One leaf of the audit Merkle tree. Holds ids, codes and field names, never values."""

    __tablename__ = "audit_event"

    seq: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"),
        primary_key=True,
        autoincrement=False,
        info=INTERNAL,
    )
    occurred_at: Mapped[dt.datetime] = mapped_column(info=INTERNAL)
    actor_id: Mapped[uuid.UUID | None] = mapped_column(index=True, info=INTERNAL)
    actor_role: Mapped[str | None] = mapped_column(String(20), info=INTERNAL)
    session_hash: Mapped[str | None] = mapped_column(String(64), info=INTERNAL)
    client_addr: Mapped[str | None] = mapped_column(String(64), info=INTERNAL)
    action: Mapped[str] = mapped_column(String(64), index=True, info=INTERNAL)
    object_type: Mapped[str | None] = mapped_column(String(32), info=INTERNAL)
    object_id: Mapped[str | None] = mapped_column(String(64), index=True, info=INTERNAL)
    outcome: Mapped[str] = mapped_column(String(10), info=INTERNAL)
    purpose: Mapped[str | None] = mapped_column(String(64), info=INTERNAL)
    details: Mapped[str] = mapped_column(Text, default="{}", info=INTERNAL)
    request_id: Mapped[str | None] = mapped_column(String(32), info=INTERNAL)
    nonce: Mapped[bytes] = mapped_column(LargeBinary(16), info=INTERNAL)
    leaf_hash: Mapped[bytes] = mapped_column(LargeBinary(32), info=INTERNAL)


class AuditHead(Base):
    """Exactly one row (id=1): the current tree size. Locking it makes the sequence gap-free
    across workers and hosts, because a rolled-back writer also rolls back its increment."""

    __tablename__ = "audit_head"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False, info=INTERNAL)
    size: Mapped[int] = mapped_column(BigInteger, default=0, info=INTERNAL)
