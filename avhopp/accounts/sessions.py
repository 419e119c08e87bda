"""Server-side sessions: the cookie carries a random token, the database holds the state."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import secrets
import uuid
from collections.abc import Callable
from typing import Any

from flask import Flask, Request, Response
from flask.sessions import SessionInterface, SessionMixin
from sqlalchemy import delete
from werkzeug.datastructures import CallbackDict

from avhopp.accounts.models import WebSession
from avhopp.db import discard_request_session, get_database, utcnow

# Writing last_seen on every request would make every page a write; a minute of slack on a
# 20-minute idle timeout is harmless.
TOUCH_INTERVAL = dt.timedelta(seconds=60)


def _row_id(token: str) -> str:
    # Only the hash is stored, so a copy of the table does not yield live session cookies.
    return hashlib.sha256(token.encode()).hexdigest()


class ServerSession(CallbackDict[str, Any], SessionMixin):
    """Flask session backed by a `web_session` row."""

    def __init__(self, initial: dict[str, Any] | None = None, *, row_id: str | None = None,
                 last_seen_at: dt.datetime | None = None) -> None:
        def on_update(_self: Any) -> None:
            self.modified = True

        super().__init__(initial or {}, on_update)
        self.row_id = row_id
        self.last_seen_at = last_seen_at
        self.new = row_id is None
        self.modified = False
        self.rotate_requested = False
        self.destroy_requested = False
        self.expired_reason: str | None = None

    def rotate(self) -> None:
        """Issue a new id at the next save (login, 2FA step: S2)."""
        self.rotate_requested = True
        self.modified = True

    def destroy(self) -> None:
        """Delete the row and the cookie at the next save (logout)."""
        self.clear()
        self.destroy_requested = True


def cookie_name(app: Flask) -> str:
    # __Host- binds the cookie to this exact origin over HTTPS (no Domain, Path=/, Secure).
    return "__Host-avhopp" if app.config.get("HTTPS") else "avhopp_session"


def clock(app: Flask) -> Callable[[], dt.datetime]:
    return app.config.get("CLOCK") or utcnow  # type: ignore[no-any-return]


class DatabaseSessionInterface(SessionInterface):
    def open_session(self, app: Flask, request: Request) -> ServerSession:
        token = request.cookies.get(cookie_name(app))
        if not token or len(token) > 128:
            return ServerSession()
        row_id = _row_id(token)
        now = clock(app)()
        idle = dt.timedelta(minutes=int(app.config["SESSION_IDLE_MINUTES"]))
        absolute = dt.timedelta(hours=int(app.config["SESSION_ABSOLUTE_HOURS"]))
        # Read-mostly: on SQLite this read does not queue for the write lock (an expired row's
        # delete still takes it).
        with get_database(app).scope(read_mostly=True) as db:
            row = db.get(WebSession, row_id)
            if row is None:
                return ServerSession()
            reason = None
            if now - row.last_seen_at > idle:
                reason = "idle_timeout"
            elif now - row.created_at > absolute:
                reason = "absolute_timeout"
            if reason is not None:
                db.delete(row)
                fresh = ServerSession()
                fresh.expired_reason = reason
                fresh.expired_user_id = row.user_id  # type: ignore[attr-defined]
                return fresh
            try:
                data = json.loads(row.data)
            except ValueError:
                data = {}
            return ServerSession(data, row_id=row_id, last_seen_at=row.last_seen_at)

    def save_session(self, app: Flask, session: SessionMixin, response: Response) -> None:
        if not isinstance(session, ServerSession):
            raise TypeError("DatabaseSessionInterface saves only ServerSession objects")
        discard_request_session()
        name = cookie_name(app)
        secure = bool(app.config.get("HTTPS"))
        now = clock(app)()
        database = get_database(app)

        if session.destroy_requested or (not session and session.row_id and session.modified):
            if session.row_id:
                with database.scope() as db:
                    db.execute(delete(WebSession).where(WebSession.id == session.row_id))
            response.delete_cookie(name, path="/", secure=secure, httponly=True, samesite="Lax")
            return
        if not session:
            return  # nothing worth a row: anonymous visitor without form state

        user_id = session.get("_user_id") or session.get("pending_user_id")
        payload = json.dumps(dict(session), sort_keys=True)
        if session.new or session.rotate_requested:
            token = secrets.token_urlsafe(32)
            with database.scope() as db:
                if session.row_id:
                    db.execute(delete(WebSession).where(WebSession.id == session.row_id))
                db.add(
                    WebSession(
                        id=_row_id(token),
                        user_id=_uuid_or_none(user_id),
                        data=payload,
                        # A new id starts a new lifetime: rotation happens at login.
                        created_at=now,
                        last_seen_at=now,
                    )
                )
            response.set_cookie(
                name, token, path="/", secure=secure, httponly=True, samesite="Lax"
            )
            return
        needs_touch = session.last_seen_at is None or now - session.last_seen_at > TOUCH_INTERVAL
        if session.modified or needs_touch:
            with database.scope() as db:
                row = db.get(WebSession, session.row_id)
                if row is None:
                    # Ended meanwhile (logout everywhere, deactivation): do not resurrect it.
                    response.delete_cookie(
                        name, path="/", secure=secure, httponly=True, samesite="Lax"
                    )
                    return
                row.data = payload
                row.user_id = _uuid_or_none(user_id)
                row.last_seen_at = now


def _uuid_or_none(value: Any) -> uuid.UUID | None:
    if not value:
        return None
    try:
        return uuid.UUID(str(value))
    except ValueError:
        return None
