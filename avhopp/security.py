"""Web security plumbing: the request gate (authentication, permissions), headers, redirects."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import logging
import secrets
from typing import Any
from urllib.parse import urlsplit

from flask import Flask, Response, abort, current_app, g, redirect, request, session, url_for
from flask_login import current_user

from avhopp.accounts.sessions import clock
from avhopp.audit import services as audit
from avhopp.db import request_session
from avhopp.permissions import PUBLIC, permission_of, role_has

logger = logging.getLogger(__name__)

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
)
# Endpoints a user who must change their password may still reach.
PASSWORD_CHANGE_ENDPOINTS = frozenset({"accounts.change_password", "accounts.logout", "static"})


def is_safe_next(target: str | None) -> bool:
    """Only local absolute paths are accepted as redirect targets (B6)."""
    if not target or len(target) > 2000:
        return False
    if any(ord(ch) < 0x20 or ch in "\\\x7f" for ch in target):
        return False
    if not target.startswith("/") or target.startswith("//"):
        return False
    parts = urlsplit(target)
    return not parts.scheme and not parts.netloc


def safe_next(target: str | None, default: str = "main.index") -> str:
    return target if target is not None and is_safe_next(target) else url_for(default)


def client_addr() -> str:
    # ProxyFix (configured from TRUSTED_PROXIES) has already replaced remote_addr when the app
    # sits behind trusted proxies; X-Forwarded-For is never read directly.
    return request.remote_addr or "unknown"


def session_hash(app: Flask) -> str | None:
    row_id = getattr(session, "row_id", None)
    if not row_id:
        return None
    key = str(app.config["SECRET_KEY"]).encode()
    return hmac.new(key, b"audit-session:" + row_id.encode(), hashlib.sha256).hexdigest()[:32]


def now() -> dt.datetime:
    return clock(current_app)()  # type: ignore[arg-type]


def mark_reauthenticated() -> None:
    session["reauth_at"] = now().isoformat()


def reauthenticated_at() -> dt.datetime | None:
    """When the user last confirmed their password (step-up), if they have."""
    try:
        return dt.datetime.fromisoformat(str(session.get("reauth_at", "")))
    except ValueError:
        return None


def recently_authenticated() -> bool:
    at = reauthenticated_at()
    if at is None:
        return False
    limit = dt.timedelta(minutes=int(current_app.config["REAUTH_MINUTES"]))
    return now() - at <= limit


def require_recent_auth() -> Any:
    """Step-up (S5): returns a redirect to the password prompt, or None when recent enough."""
    if recently_authenticated():
        return None
    return redirect(url_for("accounts.reauthenticate", next=request.full_path.rstrip("?")))


def _deny(permission: str | None) -> Any:
    details: dict[str, Any] = {"endpoint": (request.endpoint or "unknown")[:64]}
    if permission:
        details["permission"] = permission
    actor = current_user if current_user.is_authenticated else None
    db = request_session()
    try:
        audit.record(db, action="security.access_denied", actor=actor, outcome="denied",
                     details=details)
        db.commit()
    except Exception:
        db.rollback()
        logger.exception("could not record access denial")
    abort(403)


def _refuse_unusable_input() -> None:
    """B8: refuse input no view can handle before a form or the database sees it.

    Added after tests/test_web.py found 500s: NUL characters reached PostgreSQL (text cannot hold
    them: DataError) and JSON bodies with a valid X-CSRFToken header were fed by Flask-WTF to
    the forms in any shape (lists, numbers, null: TypeError), as were uploaded files in text
    fields. This app takes HTML forms only; no view takes uploads yet (exempt it here when one
    does).
    """
    if request.method not in ("GET", "HEAD", "OPTIONS") and (request.is_json or request.files):
        abort(415)
    for values in (request.args, request.form):
        for key, value in values.items(multi=True):
            if "\x00" in key or "\x00" in value:
                abort(400)


def _gate() -> Any:  # noqa: PLR0911  one early return per way a request is decided
    """Runs before every view: authenticate, enforce the declared permission, deny by default."""
    g.request_id = secrets.token_hex(8)
    g.audit_token = audit.set_context(
        audit.AuditContext(
            client_addr=client_addr(),
            session_hash=session_hash(current_app),  # type: ignore[arg-type]
            request_id=g.request_id,
        )
    )
    expired = getattr(session, "expired_reason", None)
    if expired:
        db = request_session()
        audit.record(db, action="auth.session_expired", outcome="success",
                     details={"reason": expired})
        db.commit()
    if request.endpoint is None:
        return None  # 404/405 handled by the error handlers
    _refuse_unusable_input()
    view = current_app.view_functions.get(request.endpoint)
    permission = permission_of(view)
    if permission is None:
        logger.error("route without declared permission endpoint=%s", request.endpoint)
        return _deny(None)
    if permission == PUBLIC:
        return None
    if not current_user.is_authenticated:
        if session.get("pending_user_id"):
            # Half-way through login: back to the step the user is on (code or enrolment).
            step = "accounts.enrol" if session.get("pending_stage") == "enrol" else (
                "accounts.second_factor")
            return redirect(url_for(step))
        target = request.full_path.rstrip("?") if request.method == "GET" else None
        return redirect(url_for("accounts.login", next=target))
    if current_user.must_change_password and request.endpoint not in PASSWORD_CHANGE_ENDPOINTS:
        return redirect(url_for("accounts.change_password"))
    if not role_has(current_user.role, permission):
        return _deny(permission)
    return None


def _teardown(_exc: BaseException | None) -> None:
    token = g.pop("audit_token", None)
    if token is not None:
        audit.reset_context(token)


def _headers(response: Response) -> Response:
    headers = response.headers
    headers["Content-Security-Policy"] = CSP
    headers["X-Content-Type-Options"] = "nosniff"
    # same-origin, not no-referrer: other sites never learn our URLs, and over HTTPS our own
    # POSTs carry the Referer that Flask-WTF's strict CSRF check requires (with no-referrer
    # every form failed with 400 once HTTPS was on, as `make security` found).
    headers["Referrer-Policy"] = "same-origin"
    headers["X-Frame-Options"] = "DENY"
    # The legacy XSS filter off (OWASP): where a browser still has it, it can be abused to
    # strip legitimate scripts and leak content; the CSP above is the protection.
    headers["X-XSS-Protection"] = "0"
    headers["Cross-Origin-Opener-Policy"] = "same-origin"
    headers["Cross-Origin-Resource-Policy"] = "same-origin"
    headers["Permissions-Policy"] = "camera=(), microphone=(), geolocation=(), interest-cohort=()"
    if current_app.config.get("HTTPS"):
        headers["Strict-Transport-Security"] = "max-age=63072000; includeSubDomains"
    if request.endpoint != "static":
        # Pages may hold personal data: never store them in any cache (S6).
        headers["Cache-Control"] = "no-store"
        headers["Pragma"] = "no-cache"
    return response


def _template_helpers() -> dict[str, Any]:
    from flask_babel import get_locale

    def has_permission(permission: str) -> bool:
        # Only hides links; the gate and the services enforce (STYLE rule 6).
        return bool(current_user.is_authenticated and role_has(current_user.role, permission))

    def current_locale() -> str:
        return str(get_locale() or current_app.config["DEFAULT_LOCALE"])

    return {"has_permission": has_permission, "current_locale": current_locale}


def init_app(app: Flask) -> None:
    app.context_processor(_template_helpers)
    app.before_request(_gate)
    app.after_request(_headers)
    app.teardown_request(_teardown)
    # Flask's own static route: public, but still gets the headers.
    static_view = app.view_functions.get("static")
    if static_view is not None:
        static_view.permission = PUBLIC  # type: ignore[attr-defined]
