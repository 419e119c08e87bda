"""Per-person data keys and blind-index values (the key store and search index in the database)."""

from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy import BigInteger, Index, Integer, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from avhopp.db import Base, utcnow

INTERNAL = {"data_class": "internal"}


class DataKey(Base):
    """A person's 256-bit data key, wrapped by a key-encryption key (never stored in the clear).

    Destroying it (wrapped = NULL) crypto-shreds every field encrypted under it.
    """

    __tablename__ = "data_key"

    id: Mapped[str] = mapped_column(String(40), primary_key=True, info=INTERNAL)
    subject_id: Mapped[uuid.UUID] = mapped_column(index=True, info=INTERNAL)
    kek_id: Mapped[str | None] = mapped_column(String(64), index=True, info=INTERNAL)
    wrapped: Mapped[bytes | None] = mapped_column(LargeBinary, info=INTERNAL)
    is_active: Mapped[bool] = mapped_column(default=True, info=INTERNAL)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow, info=INTERNAL)
    destroyed_at: Mapped[dt.datetime | None] = mapped_column(info=INTERNAL)


class BlindIndexVersion(Base):
    """One version of the blind index of one encrypted column: its width and its state.

    States: `active` (lookups use it), `backfilling` (written, not yet used), `retired`.
    """

    __tablename__ = "blind_index_version"

    table_name: Mapped[str] = mapped_column(String(40), primary_key=True, info=INTERNAL)
    column_name: Mapped[str] = mapped_column(String(40), primary_key=True, info=INTERNAL)
    version: Mapped[int] = mapped_column(primary_key=True, autoincrement=False, info=INTERNAL)
    bits: Mapped[int] = mapped_column(info=INTERNAL)
    state: Mapped[str] = mapped_column(String(12), info=INTERNAL)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow, info=INTERNAL)


class BlindIndexValue(Base):
    """A truncated keyed hash of one normalised value; shared by several people by design."""

    __tablename__ = "blind_index"

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, info=INTERNAL
    )
    table_name: Mapped[str] = mapped_column(String(40), info=INTERNAL)
    column_name: Mapped[str] = mapped_column(String(40), info=INTERNAL)
    version: Mapped[int] = mapped_column(info=INTERNAL)
    digest: Mapped[bytes] = mapped_column(LargeBinary(32), info=INTERNAL)
    row_id: Mapped[uuid.UUID] = mapped_column(info=INTERNAL)
    subject_id: Mapped[uuid.UUID] = mapped_column(index=True, info=INTERNAL)

    __table_args__ = (
        Index("ix_blind_index_lookup", "table_name", "column_name", "version", "digest"),
        Index("ix_blind_index_row", "table_name", "column_name", "row_id"),
    )
