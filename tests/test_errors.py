"""Errors show a generic Swedish page with an incident id that is also in the log (B9)."""

from __future__ import annotations

import logging
import re
from typing import Any

import pytest
from flask import g, has_request_context, render_template_string
from jinja2 import ChoiceLoader, DictLoader
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from avhopp.errors import Conflict
from avhopp.permissions import PUBLIC, requires
from tests.conftest import csrf_token, login, make_user

SECRET_DETAIL = "detail-that-must-stay-in-the-log-7f3a"
INCIDENT_RE = re.compile(r'<strong class="code">([0-9a-f]{12})</strong>')


def assert_generic_500(response: Any, caplog: pytest.LogCaptureFixture) -> str:
    """The response is the generic Swedish 500 page; returns its incident id."""
    body = response.get_data(as_text=True)
    assert response.status_code == 500
    assert "Något gick fel" in body
    assert 'lang="sv"' in body
    for leak in ("Traceback", 'File "', SECRET_DETAIL, "RuntimeError", "jinja2",
                 "sqlalchemy", "__debugger__", "Werkzeug Debugger"):
        assert leak not in body, leak
    match = INCIDENT_RE.search(body)
    assert match, "no incident id on the error page"
    incident = match.group(1)
    logged = [r for r in caplog.records if f"incident={incident}" in r.getMessage()]
    assert logged, f"incident {incident} is not in the log"
    assert logged[0].levelno >= logging.ERROR
    return incident


def test_a_view_that_raises_gives_the_generic_page_and_logs_the_incident(
    app: Any, caplog: pytest.LogCaptureFixture
) -> None:
    @app.route("/test-raises")
    @requires(PUBLIC)
    def raises() -> str:
        raise RuntimeError(SECRET_DETAIL)

    response = app.test_client().get("/test-raises")
    incident = assert_generic_500(response, caplog)
    record = next(r for r in caplog.records if incident in r.getMessage())
    # The traceback is for the operators: it is in the log record, not on the page.
    assert record.exc_info is not None
    assert SECRET_DETAIL in str(record.exc_info[1])


def test_incident_ids_differ_between_errors(app: Any, caplog: pytest.LogCaptureFixture) -> None:
    @app.route("/test-raises-twice")
    @requires(PUBLIC)
    def raises_twice() -> str:
        raise RuntimeError(SECRET_DETAIL)

    client = app.test_client()
    first = assert_generic_500(client.get("/test-raises-twice"), caplog)
    second = assert_generic_500(client.get("/test-raises-twice"), caplog)
    assert first != second


def test_a_template_error_in_a_real_page_gives_the_generic_page(
    app: Any, caplog: pytest.LogCaptureFixture
) -> None:
    broken = ('{% extends "base.html" %}{% block content %}'
              "{{ form.username.no_such_attribute.deeper }}{% endblock %}")
    app.jinja_env.loader = ChoiceLoader(
        [DictLoader({"accounts/login.html": broken}), app.jinja_env.loader]
    )
    assert_generic_500(app.test_client().get("/login"), caplog)


def test_a_template_syntax_error_gives_the_generic_page(
    app: Any, caplog: pytest.LogCaptureFixture
) -> None:
    @app.route("/test-bad-template")
    @requires(PUBLIC)
    def bad_template() -> str:
        return render_template_string("{% if %}" + SECRET_DETAIL)

    assert_generic_500(app.test_client().get("/test-bad-template"), caplog)


def test_a_failing_commit_gives_the_generic_page(
    app: Any, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    real_commit = Session.commit

    def failing_commit(self: Session) -> None:
        # Only the view's own unit of work fails; session loading and saving still work.
        if has_request_context() and g.get("db_session") is self:
            raise OperationalError(SECRET_DETAIL, {}, Exception("disk I/O error"))
        real_commit(self)

    monkeypatch.setattr(Session, "commit", failing_commit)
    client = app.test_client()
    # A wrong password is committed by the view (failure counters and audit event).
    response = client.post("/login", data={
        "csrf_token": csrf_token(client, "/login"), "username": "nobody",
        "password": "wrong password entirely"})
    assert_generic_500(response, caplog)


def test_a_failing_commit_after_login_gives_the_generic_page_and_changes_nothing(
    app: Any, clock: Any, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    member = make_user(app, role="coordinator")
    client = app.test_client()
    login(client, member, clock)
    real_commit = Session.commit

    def failing_commit(self: Session) -> None:
        if has_request_context() and g.get("db_session") is self:
            raise OperationalError(SECRET_DETAIL, {}, Exception("disk I/O error"))
        real_commit(self)

    monkeypatch.setattr(Session, "commit", failing_commit)
    response = client.post("/account/logout-everywhere",
                           data={"csrf_token": csrf_token(client, "/account")})
    assert_generic_500(response, caplog)
    # The failed unit of work was rolled back: the session was not ended.
    assert client.get("/account").status_code == 200


def test_domain_errors_get_their_status_without_an_incident(app: Any) -> None:
    @app.route("/test-conflict")
    @requires(PUBLIC)
    def conflict() -> str:
        raise Conflict("internal wording", code="stale_version")

    response = app.test_client().get("/test-conflict")
    body = response.get_data(as_text=True)
    assert response.status_code == 409
    assert "Uppgifterna ändrades av någon annan" in body
    assert not INCIDENT_RE.search(body)


def test_not_found_page_is_generic_and_swedish(app: Any) -> None:
    response = app.test_client().get("/no-such-page")
    body = response.get_data(as_text=True)
    assert response.status_code == 404
    assert 'lang="sv"' in body
    assert "Sidan hittades inte" in body
    assert "Traceback" not in body


def test_debug_stays_off(app: Any) -> None:
    assert app.debug is False
    assert app.config["DEBUG"] is False
    assert app.config.get("PROPAGATE_EXCEPTIONS") in (None, False)


def test_the_avhopp_logger_reaches_the_test_log_capture(
    app: Any, caplog: pytest.LogCaptureFixture
) -> None:
    # Guards avhopp/logs.py: with propagate=False nothing reaches caplog and the incident
    # checks above could not work.
    logging.getLogger("avhopp.errors").error("probe-record")
    assert any(r.getMessage() == "probe-record" for r in caplog.records)
