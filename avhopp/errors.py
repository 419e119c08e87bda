"""Domain exceptions and the handlers that turn every error into a generic page."""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable
from typing import Any

from flask import Flask, render_template, request
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException

from avhopp.crypto.errors import KeyDestroyed
from avhopp.translation import gettext as _
from avhopp.translation import lazy_gettext as _l

logger = logging.getLogger(__name__)


class DomainError(Exception):
    """Base of the errors services raise; views turn them into messages or status codes."""

    status_code = 400

    def __init__(self, message: str = "", *, code: str = "") -> None:
        super().__init__(message or self.__class__.__name__)
        self.message = message
        self.code = code


class NotFound(DomainError):
    status_code = 404


class Forbidden(DomainError):
    status_code = 403


class Conflict(DomainError):
    status_code = 409


class ValidationError(DomainError):
    status_code = 400


def new_incident_id() -> str:
    return secrets.token_hex(6)


_TITLES = {
    400: _l("The request could not be handled"),
    403: _l("You do not have access to this page"),
    404: _l("The page was not found"),
    405: _l("The request could not be handled"),
    409: _l("The information was changed by someone else"),
    410: _l("The information has been erased"),
    413: _l("The request was too large"),
    429: _l("Too many attempts"),
    500: _l("Something went wrong"),
}


def _render(status: int, incident_id: str | None = None, detail: str | None = None) -> Any:
    title = str(_TITLES.get(status, _TITLES[400]))
    try:
        body = render_template(
            "error.html", status=status, title=title, incident_id=incident_id, detail=detail
        )
    except Exception:  # a broken template must not turn an error page into a traceback
        logger.exception("error template failed incident=%s", incident_id)
        body = f"<!doctype html><title>{status}</title><h1>{status}</h1>"
        if incident_id:
            body += f"<p>Incident {incident_id}</p>"
    return body, status


def register_error_handlers(app: Flask, *, on_csrf_rejected: Callable[[], None]) -> None:
    """Install handlers; `on_csrf_rejected` records the refusal (the audit log is a feature,
    and this leaf module must not import features)."""

    @app.errorhandler(CSRFError)
    def _csrf(_exc: CSRFError) -> Any:
        on_csrf_rejected()
        return _render(400, detail=_("The form had expired or was not valid. Please try again."))

    @app.errorhandler(DomainError)
    def _domain(exc: DomainError) -> Any:
        return _render(exc.status_code, detail=exc.message or None)

    @app.errorhandler(KeyDestroyed)
    def _erased(_exc: KeyDestroyed) -> Any:
        # Crypto-shredding worked: what was asked for belongs to an erased person. That is a
        # fact to show, not a fault (the message names no one; the log line has no ids either).
        logger.info("read of erased data endpoint=%s", request.endpoint)
        return _render(410, detail=_(
            "This person's information has been erased and can no longer be shown. The "
            "track's code, dates and audit trail remain."))

    @app.errorhandler(HTTPException)
    def _http(exc: HTTPException) -> Any:
        status = exc.code or 500
        if status >= 500:
            incident = new_incident_id()
            logger.error("http error status=%s incident=%s", status, incident)
            return _render(status, incident)
        return _render(status)

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception) -> Any:
        incident = new_incident_id()
        # The traceback goes to the log (which never holds personal data values by design:
        # exceptions from crypto and services carry ids only); the user sees an incident id.
        logger.exception(
            "unhandled error incident=%s endpoint=%s", incident, request.endpoint
        )
        return _render(500, incident)
