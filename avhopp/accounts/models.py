"""Staff users, their recovery codes, server-side sessions and login throttling."""

from __future__ import annotations

import datetime as dt
import enum
import uuid
from typing import Any

from sqlalchemy import ForeignKey, Index, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from avhopp.db import Base, utcnow


def data_class(name: str) -> dict[str, Any]:
    """Column info tag (SECURITY.md D1): public, internal, personal or sensitive."""
    return {"data_class": name}


INTERNAL = data_class("internal")
PUBLIC = data_class("public")


class Role(enum.StrEnum):
    ADMIN = "admin"
    COORDINATOR = "coordinator"
    SUPPORT_WORKER = "support_worker"
    BOARD = "board"


class User(Base):
    """A staff member. Staff are not data subjects of case work: no encrypted fields here,
    except the TOTP seed, which is wrapped under the key-encryption key."""

    __tablename__ = "staff_user"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4, info=INTERNAL)
    username: Mapped[str] = mapped_column(String(64), unique=True, info=INTERNAL)
    role: Mapped[str] = mapped_column(String(20), info=INTERNAL)
    is_active: Mapped[bool] = mapped_column(default=True, info=INTERNAL)
    password_hash: Mapped[str] = mapped_column(String(200), info=INTERNAL)
    must_change_password: Mapped[bool] = mapped_column(default=True, info=INTERNAL)
    password_changed_at: Mapped[dt.datetime] = mapped_column(default=utcnow, info=INTERNAL)
    totp_secret_wrapped: Mapped[bytes | None] = mapped_column(LargeBinary, info=INTERNAL)
    totp_kek_id: Mapped[str | None] = mapped_column(String(64), info=INTERNAL)
    totp_enrolled_at: Mapped[dt.datetime | None] = mapped_column(info=INTERNAL)
    # The last accepted TOTP time step: a code is accepted only for a later step (A6).
    totp_last_step: Mapped[int] = mapped_column(default=0, info=INTERNAL)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow, info=INTERNAL)
    deactivated_at: Mapped[dt.datetime | None] = mapped_column(info=INTERNAL)
    # Optimistic locking (D6): an admin edit based on a stale page gets a conflict.
    version: Mapped[int] = mapped_column(default=1, info=INTERNAL)

    recovery_codes: Mapped[list[RecoveryCode]] = relationship(
        back_populates="user", cascade="all, delete-orphan"
    )

    __mapper_args__ = {"version_id_col": version}

    # Flask-Login's user protocol, spelled out so the model needs no Flask import.
    @property
    def is_authenticated(self) -> bool:
        return True

    @property
    def is_anonymous(self) -> bool:
        return False

    def get_id(self) -> str:
        return str(self.id)

    @property
    def has_totp(self) -> bool:
        return self.totp_enrolled_at is not None


class RecoveryCode(Base):
    """A single-use 2FA recovery code, stored as a SHA-256 hash (codes carry 80 random bits)."""

    __tablename__ = "recovery_code"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4, info=INTERNAL)
    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("staff_user.id", ondelete="CASCADE"), index=True, info=INTERNAL
    )
    code_hash: Mapped[str] = mapped_column(String(64), info=INTERNAL)
    used_at: Mapped[dt.datetime | None] = mapped_column(info=INTERNAL)

    user: Mapped[User] = relationship(back_populates="recovery_codes")


class WebSession(Base):
    """A server-side session. The cookie holds a random token; we store only its SHA-256."""

    __tablename__ = "web_session"

    id: Mapped[str] = mapped_column(String(64), primary_key=True, info=INTERNAL)
    user_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("staff_user.id", ondelete="CASCADE"), info=INTERNAL
    )
    data: Mapped[str] = mapped_column(Text, default="{}", info=INTERNAL)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow, info=INTERNAL)
    last_seen_at: Mapped[dt.datetime] = mapped_column(default=utcnow, info=INTERNAL)

    __table_args__ = (Index("ix_web_session_user_id", "user_id"),)


class LoginThrottle(Base):
    """Failed-login counters per account name and per client address, shared by all workers.

    The key is a keyed hash of "account:<name>" or "address:<ip>", so unknown account names
    are throttled exactly like known ones and the table holds no names or addresses.
    """

    __tablename__ = "login_throttle"

    key: Mapped[str] = mapped_column(String(64), primary_key=True, info=INTERNAL)
    failures: Mapped[int] = mapped_column(default=0, info=INTERNAL)
    window_started_at: Mapped[dt.datetime] = mapped_column(default=utcnow, info=INTERNAL)
    locked_at: Mapped[dt.datetime | None] = mapped_column(info=INTERNAL)
