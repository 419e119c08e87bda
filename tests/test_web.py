"""Browser-facing protections: CSRF (B1), headers (B2), redirects (B6), hostile input (B8)."""

from __future__ import annotations

import io
import json
import re
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import pytest
from sqlalchemy import func, select
from werkzeug.datastructures import MultiDict

from avhopp.accounts.models import User, WebSession
from avhopp.permissions import PUBLIC, requires
from avhopp.security import is_safe_next
from tests.conftest import (
    audit_actions,
    csrf_token,
    login,
    login_password,
    make_user,
)

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "security.md"


def actions(db: Any) -> list[str]:
    names = [action for action, _outcome, _details in audit_actions(db)]
    db.rollback()  # end the read transaction: on SQLite it would hold the write lock
    return names


def count_users(db: Any) -> int:
    n = db.scalar(select(func.count()).select_from(User))
    db.rollback()
    return int(n or 0)


def logged_in(app: Any, clock: Any, role: str = "coordinator") -> Any:
    client = app.test_client()
    login(client, make_user(app, role=role), clock)
    return client


def closed(response: Any) -> Any:
    """Buffer the body and close the response (static files are streamed from an open file)."""
    response.get_data()
    response.close()
    return response


def is_session_alive(client: Any) -> bool:
    return client.get("/account").status_code == 200


# --- B1: CSRF and safe methods ----------------------------------------------------------------


def test_logout_without_csrf_token_is_refused_audited_and_keeps_the_session(
    app: Any, db: Any, clock: Any
) -> None:
    client = logged_in(app, clock)
    response = client.post("/logout")
    assert response.status_code == 400
    assert actions(db)[-1] == "security.csrf_rejected"
    assert is_session_alive(client)


def test_logout_with_a_token_from_another_session_is_refused_and_audited(
    app: Any, db: Any, clock: Any
) -> None:
    victim = logged_in(app, clock)
    attacker = app.test_client()
    foreign = csrf_token(attacker, "/login")
    response = victim.post("/logout", data={"csrf_token": foreign})
    assert response.status_code == 400
    assert actions(db)[-1] == "security.csrf_rejected"
    assert is_session_alive(victim)


def test_logout_with_a_garbled_token_is_refused(app: Any, clock: Any) -> None:
    client = logged_in(app, clock)
    token = csrf_token(client, "/account")
    response = client.post("/logout", data={"csrf_token": token[:-4] + "AAAA"})
    assert response.status_code == 400
    assert is_session_alive(client)


def test_logout_with_a_valid_token_ends_the_session(app: Any, clock: Any) -> None:
    # The counterpart of the refusals above: the same request with the right token works.
    client = logged_in(app, clock)
    response = client.post("/logout", data={"csrf_token": csrf_token(client, "/account")})
    assert response.status_code == 302
    assert not is_session_alive(client)


def test_admin_create_user_without_token_creates_nothing(app: Any, db: Any, clock: Any) -> None:
    admin = logged_in(app, clock, role="admin")
    before = count_users(db)
    response = admin.post("/admin/users/new", data={"username": "mallory", "role": "admin"})
    assert response.status_code == 400
    assert count_users(db) == before
    assert actions(db)[-1] == "security.csrf_rejected"


def test_admin_create_user_with_foreign_token_creates_nothing(
    app: Any, db: Any, clock: Any
) -> None:
    admin = logged_in(app, clock, role="admin")
    foreign = csrf_token(logged_in(app, clock, role="admin"), "/account")
    before = count_users(db)
    response = admin.post("/admin/users/new",
                          data={"csrf_token": foreign, "username": "mallory", "role": "admin"})
    assert response.status_code == 400
    assert count_users(db) == before


def test_every_post_route_refuses_a_missing_token(app: Any, db: Any, clock: Any) -> None:
    client = logged_in(app, clock, role="admin")
    problems = []
    for rule in app.url_map.iter_rules():
        if "POST" not in (rule.methods or ()):
            continue
        url = re.sub(r"<uuid:\w+>", str(uuid.uuid4()), rule.rule).replace("<action>", "x")
        before = len(actions(db))
        response = client.post(url, data={"username": "x", "locale": "en", "version": "1"})
        new = actions(db)[before:]
        if response.status_code != 400 or new != ["security.csrf_rejected"]:
            problems.append(f"{url}: {response.status_code} {new}")
    assert not problems, problems
    assert is_session_alive(client)


def test_get_logout_is_not_allowed_and_keeps_the_session(app: Any, clock: Any) -> None:
    client = logged_in(app, clock)
    assert client.get("/logout").status_code == 405
    assert is_session_alive(client)


def session_rows(db: Any) -> int:
    n = db.scalar(select(func.count()).select_from(WebSession))
    db.rollback()
    return int(n or 0)


def test_get_requests_never_end_a_logged_in_session(app: Any, db: Any, clock: Any) -> None:
    client = logged_in(app, clock, role="admin")
    ended = []
    for rule in sorted(app.url_map.iter_rules(), key=lambda r: r.rule):
        if "GET" not in (rule.methods or ()):
            continue
        url = rule.rule.replace("<uuid:user_id>", str(uuid.uuid4())).replace(
            "<path:filename>", "css/app.css")
        closed(client.get(url))
        if not is_session_alive(client):
            ended.append(url)
            client = logged_in(app, clock, role="admin")
    assert not ended, f"a GET ended the session (B1: no state change on GET): {ended}"


# --- B2: headers on every response ------------------------------------------------------------


def documented_csp() -> str:
    text = DOC.read_text(encoding="utf-8")
    match = re.search(r"`Content-Security-Policy:\s*(.*?)`", text, re.S)
    assert match, "docs/security.md does not state the Content-Security-Policy"
    return " ".join(match.group(1).split())


def test_documented_csp_has_the_checklist_directives() -> None:
    csp = documented_csp()
    for directive in ("default-src 'self'", "script-src 'self'", "object-src 'none'",
                      "base-uri 'none'", "frame-ancestors 'none'", "form-action 'self'"):
        assert directive in csp


@pytest.fixture
def app_with_error_route(app: Any) -> Any:
    @app.route("/test-crash")
    @requires(PUBLIC)
    def crash() -> str:
        raise RuntimeError("boom")

    return app


def sample_responses(app: Any, clock: Any) -> dict[str, Any]:
    anonymous = app.test_client()
    coordinator = logged_in(app, clock)
    return {
        "page": anonymous.get("/login"),
        "authenticated page": coordinator.get("/"),
        "json": anonymous.get("/health"),
        "redirect": anonymous.get("/"),
        "404": anonymous.get("/no-such-page"),
        "405": anonymous.get("/logout"),
        "403": coordinator.get("/admin/users"),
        "400": anonymous.post("/login", data={"username": "a", "password": "b"}),
        "500": anonymous.get("/test-crash"),
    }


def test_sample_responses_have_the_expected_statuses(app_with_error_route: Any,
                                                     clock: Any) -> None:
    statuses = {k: r.status_code for k, r in sample_responses(app_with_error_route,
                                                              clock).items()}
    assert statuses == {"page": 200, "authenticated page": 200, "json": 200, "redirect": 302,
                        "404": 404, "405": 405, "403": 403, "400": 400, "500": 500}


def test_every_kind_of_response_carries_the_security_headers(
    app_with_error_route: Any, clock: Any
) -> None:
    csp = documented_csp()
    responses = sample_responses(app_with_error_route, clock)
    responses["static"] = closed(
        app_with_error_route.test_client().get("/static/css/app.css"))
    assert responses["static"].status_code == 200
    for kind, response in responses.items():
        h = response.headers
        assert h.get("Content-Security-Policy") == csp, kind
        assert h.get("X-Content-Type-Options") == "nosniff", kind
        assert h.get("Referrer-Policy") == "same-origin", kind
        assert h.get("X-Frame-Options") == "DENY", kind
        assert h.get("X-XSS-Protection") == "0", kind  # the legacy filter off (OWASP)
        assert h.get("Cross-Origin-Opener-Policy") == "same-origin", kind
        assert h.get("Cross-Origin-Resource-Policy") == "same-origin", kind
        assert "Strict-Transport-Security" not in h, f"{kind}: HSTS without HTTPS"


def test_pages_and_errors_are_not_stored_in_caches(app_with_error_route: Any,
                                                   clock: Any) -> None:
    for kind, response in sample_responses(app_with_error_route, clock).items():
        assert response.headers.get("Cache-Control") == "no-store", kind


def test_static_files_may_be_cached(app: Any) -> None:
    response = closed(app.test_client().get("/static/css/app.css"))
    assert response.status_code == 200
    assert "no-store" not in response.headers.get("Cache-Control", "")


def test_hsts_is_sent_only_when_https_is_configured(app_overrides: dict[str, Any]) -> None:
    from avhopp.app import create_app
    from avhopp.db import get_database

    https_app = create_app({**app_overrides, "HTTPS": True})
    try:
        client = https_app.test_client()
        for path in ("/login", "/static/css/app.css", "/no-such-page"):
            response = closed(client.get(path, base_url="https://localhost"))
            hsts = response.headers.get("Strict-Transport-Security", "")
            assert hsts.startswith("max-age="), path
            assert int(hsts.split("=", 1)[1].split(";")[0]) >= 31536000, hsts
    finally:
        get_database(https_app).engine.dispose()


TEMPLATE_FILES = sorted((ROOT / "avhopp").glob("**/templates/**/*.html"))
FORBIDDEN_IN_TEMPLATES = {
    "inline script": re.compile(r"<script(?![^>]*\bsrc=)", re.I),
    "style element": re.compile(r"<style\b", re.I),
    "style attribute": re.compile(r"\sstyle\s*=", re.I),
    "event handler attribute": re.compile(r"\son[a-z]+\s*=", re.I),
    "javascript: URL": re.compile(r"javascript:", re.I),
    "|safe": re.compile(r"\|\s*safe\b"),
}


def test_there_are_templates_to_check() -> None:
    assert len(TEMPLATE_FILES) >= 10


@pytest.mark.parametrize("path", TEMPLATE_FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_template_has_no_inline_code_styles_or_safe_filter(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    found = [name for name, pattern in FORBIDDEN_IN_TEMPLATES.items() if pattern.search(text)]
    assert not found, f"{path.relative_to(ROOT)}: {found}"


def test_template_checks_catch_the_forbidden_constructs() -> None:
    samples = {
        "inline script": "<script>alert(1)</script>",
        "style element": "<style>p{}</style>",
        "style attribute": '<p style="color:red">',
        "event handler attribute": '<a onclick="x()">',
        "javascript: URL": '<a href="javascript:x()">',
        "|safe": "{{ note | safe }}",
    }
    for name, sample in samples.items():
        assert FORBIDDEN_IN_TEMPLATES[name].search(sample), name
    assert not FORBIDDEN_IN_TEMPLATES["inline script"].search('<script src="/static/a.js">')


# --- B6: redirect targets ---------------------------------------------------------------------

REFUSED_TARGETS = [
    "//evil.example",
    "/\\evil.example",
    "https:evil.example",
    "https://evil.example",
    "javascript:alert(1)",
    "/%5Cevil.example",  # as typed in a link: the server decodes it to /\evil.example
    "\t//evil.example",
    "/\t/evil.example",
    "///evil.example",
    "evil.example",
    "",
]
ACCEPTED_TARGET = "/ok/path"


def encoded(value: str) -> str:
    """The value as an attacker writes it into a URL or form body (existing %XX kept)."""
    return quote(value, safe="/%:")


def full_login(client: Any, member: Any, clock: Any, next_value: str) -> Any:
    query = "next=" + encoded(next_value)
    token = csrf_token(client, "/login?" + query)
    first = client.post("/login?" + query, data={
        "csrf_token": token, "username": member.username, "password": member.password})
    assert first.status_code == 302, first.status_code
    from tests.conftest import totp_code

    token = csrf_token(client, "/login/code")
    response = client.post("/login/code", data={
        "csrf_token": token, "code": totp_code(member.totp_secret, clock())})
    clock.advance(seconds=30)
    assert response.status_code == 302
    return response


def stays_on_site(location: str) -> bool:
    parts = urlsplit(location)
    return not parts.scheme and not parts.netloc and location.startswith("/") \
        and not location.startswith("//") and "\\" not in location


@pytest.mark.parametrize("target", REFUSED_TARGETS)
def test_login_next_refuses_foreign_targets(app: Any, clock: Any, target: str) -> None:
    member = make_user(app)
    response = full_login(app.test_client(), member, clock, target)
    assert response.location == "/", response.location


def test_login_next_accepts_a_local_path(app: Any, clock: Any) -> None:
    member = make_user(app)
    response = full_login(app.test_client(), member, clock, ACCEPTED_TARGET)
    assert response.location == ACCEPTED_TARGET


def post_language(client: Any, next_value: str) -> Any:
    token = csrf_token(client, "/login")
    body = f"csrf_token={quote(token)}&locale=en&next={encoded(next_value)}"
    return client.post("/language", data=body,
                       content_type="application/x-www-form-urlencoded")


@pytest.mark.parametrize("target", REFUSED_TARGETS)
def test_language_next_refuses_foreign_targets(app: Any, target: str) -> None:
    response = post_language(app.test_client(), target)
    assert response.status_code == 302
    assert response.location == "/", response.location


def test_language_next_accepts_a_local_path(app: Any) -> None:
    response = post_language(app.test_client(), ACCEPTED_TARGET)
    assert response.status_code == 302
    assert response.location == ACCEPTED_TARGET


@pytest.mark.parametrize("target", [
    "//evil.example", "/\\evil.example", "https:evil.example", "https://evil.example",
    "javascript:alert(1)", "\t//evil.example", "/\t/evil.example", "/\r\n/evil.example",
    "/\x00", "/\x7f", "http:/evil.example", "evil.example", "./x", " /x", "", None,
    "/" + "a" * 2001, "\\\\evil.example",
])
def test_is_safe_next_refuses(target: str | None) -> None:
    assert not is_safe_next(target)


@pytest.mark.parametrize("target", ["/", "/ok/path", "/account?x=1", "/a/b#frag", "/ok:colon"])
def test_is_safe_next_accepts_local_paths(target: str) -> None:
    assert is_safe_next(target)
    assert stays_on_site(target)


# --- B8: hostile input never causes a 500 -----------------------------------------------------

FIELDS = ("username", "password", "code", "current_password", "new_password", "confirm",
          "role", "locale", "next", "version")
HUGE_ID = str(10**30)


def _fields(value: str) -> dict[str, str]:
    return dict.fromkeys(FIELDS, value)


def json_with_header(body: Any) -> Any:
    """A JSON body with a valid token in the header, which Flask-WTF accepts for CSRF."""
    return lambda token: {"data": json.dumps(body), "content_type": "application/json",
                          "headers": {"X-CSRFToken": token}}


def payloads() -> dict[str, Any]:
    """name -> function(token) returning keyword arguments for client.post."""

    def form(value: str) -> Any:
        return lambda token: {"data": {"csrf_token": token, **_fields(value)}}

    def raw(body: bytes) -> Any:
        return lambda token: {
            "data": b"csrf_token=" + quote(token).encode() + b"&" + body,
            "content_type": "application/x-www-form-urlencoded",
        }

    return {
        "100 kB": form("x" * 100_000),
        "NUL bytes": form("adm\x00in\x00"),
        "invalid UTF-8 raw": raw(b"&".join(f.encode() + b"=\xff\xfe\xc3(" for f in FIELDS)),
        "invalid UTF-8 escaped": raw(b"&".join(f.encode() + b"=%ff%fe%c3%28" for f in FIELDS)),
        "RTL override": form("\u202eadmin\u202c"),
        "NFD": form("A\u030angstro\u0308m kva\u0308ll"),
        "huge id": form(HUGE_ID),
        "negative id": form("-" + HUGE_ID),
        "duplicate parameters": lambda token: {"data": MultiDict([
            ("csrf_token", token), ("csrf_token", "bogus"),
            *[(f, v) for f in FIELDS for v in ("1", "sv", "admin")]])},
        "JSON body": lambda token: {
            "data": json.dumps({"csrf_token": token, **_fields("x")}),
            "content_type": "application/json"},
        "JSON header with form body": lambda token: {
            "data": f"csrf_token={quote(token)}&username=x",
            "content_type": "application/json"},
        "JSON with CSRF header, object": json_with_header({**_fields("a\x00"), "version": 5}),
        "JSON with CSRF header, list": json_with_header([1, 2]),
        "JSON with CSRF header, string": json_with_header("x"),
        "JSON with CSRF header, nested": json_with_header(
            {"username": ["a", "b"], "password": {"x": 1}, "code": None}),
        "file upload in every field": lambda token: {
            "data": {"csrf_token": token,
                     **{f: (io.BytesIO(b"x" * 1000), "x.txt") for f in FIELDS}},
            "content_type": "multipart/form-data"},
        "multipart": lambda token: {
            "data": {"csrf_token": token, **_fields("\u202e\x00x")},
            "content_type": "multipart/form-data"},
        "no body": lambda _token: {},
    }


def assert_no_crash(response: Any, where: str) -> None:
    body = response.get_data(as_text=True)
    assert response.status_code < 500, f"{where}: {response.status_code}"
    assert "Traceback" not in body, where
    assert 'File "' not in body, where


@pytest.mark.parametrize("payload", list(payloads()))
def test_hostile_input_to_anonymous_forms_never_causes_a_500(app: Any, payload: str) -> None:
    make_kwargs = payloads()[payload]
    client = app.test_client()
    for path in ("/login", "/language"):
        response = client.post(path, **make_kwargs(csrf_token(client, "/login")))
        assert_no_crash(response, f"{payload} -> {path}")


@pytest.mark.parametrize("payload", list(payloads()))
def test_hostile_input_to_the_code_step_never_causes_a_500(
    app: Any, clock: Any, payload: str
) -> None:
    member = make_user(app)
    client = app.test_client()
    assert login_password(client, member).status_code == 302
    response = client.post("/login/code", **payloads()[payload](csrf_token(client, "/login/code")))
    assert_no_crash(response, f"{payload} -> /login/code")


@pytest.mark.parametrize("payload", list(payloads()))
def test_hostile_input_to_authenticated_forms_never_causes_a_500(
    app: Any, clock: Any, payload: str
) -> None:
    make_kwargs = payloads()[payload]
    client = logged_in(app, clock, role="admin")
    for path in ("/account/password", "/admin/users/new", "/language"):
        response = client.post(path, **make_kwargs(csrf_token(client, "/account")))
        assert_no_crash(response, f"{payload} -> {path}")
    assert is_session_alive(client)


@pytest.mark.parametrize("path", [
    f"/admin/users/{HUGE_ID}", f"/admin/users/{HUGE_ID}/deactivate", "/admin/users/%00",
    "/admin/users/" + "9" * 5000, "/%ff%fe", "/login?next=%ff%00",
])
def test_hostile_urls_never_cause_a_500(app: Any, clock: Any, path: str) -> None:
    client = logged_in(app, clock, role="admin")
    assert_no_crash(client.get(path), path)
    assert_no_crash(client.post(path, data={"csrf_token": csrf_token(client, "/account")}), path)
