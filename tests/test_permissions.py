"""Access control: the written matrix, deny by default, each route as each role (Z1 Z2 Z5 Z6)."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from werkzeug.routing import Rule

from avhopp import permissions
from avhopp.permissions import MATRIX, PUBLIC, ROLES, permission_of, requires, role_has
from tests.conftest import audit_actions, csrf_token, login, make_user, user_row

DOC = Path(__file__).resolve().parent.parent / "docs" / "security.md"

# Endpoints whose request (GET or POST) ends the logged-in session; each call gets its own login
# so that the walk goes on with a live session.
SESSION_ENDING = frozenset(
    {"accounts.logout", "accounts.logout_everywhere", "accounts.second_factor", "accounts.enrol"}
)


# --- Z1: the written matrix ------------------------------------------------------------------


def parse_doc_matrix(text: str) -> tuple[list[str], dict[str, frozenset[str]]]:
    """Roles (header order) and permission -> roles holding it, from the marked table."""
    match = re.search(r"<!-- matrix:start -->(.*?)<!-- matrix:end -->", text, re.S)
    assert match, "docs/security.md has no <!-- matrix:start --> ... <!-- matrix:end --> block"
    rows = [
        [cell.strip() for cell in line.strip().strip("|").split("|")]
        for line in match.group(1).strip().splitlines()
        if line.strip()
    ]
    header, separator, body = rows[0], rows[1], rows[2:]
    assert header[:2] == ["Permission", "Function"], header
    assert all(set(cell) <= set("-: ") for cell in separator), separator
    roles = [cell.strip("`") for cell in header[2:]]
    matrix: dict[str, frozenset[str]] = {}
    for row in body:
        assert len(row) == len(header), f"row has {len(row)} cells, header {len(header)}: {row}"
        name = row[0].strip("`")
        assert name not in matrix, f"permission {name} is listed twice"
        cells = row[2:]
        assert all(c in {"yes", "no"} for c in cells), f"{name}: cells must be yes/no: {cells}"
        matrix[name] = frozenset(role for role, cell in zip(roles, cells, strict=True)
                                 if cell == "yes")
    return roles, matrix


def test_doc_matrix_parser_reads_a_known_table() -> None:
    roles, matrix = parse_doc_matrix(
        "<!-- matrix:start -->\n| Permission | Function | a | b |\n|---|---|---|---|\n"
        "| `p` | x | yes | no |\n| `q` | y | no | no |\n<!-- matrix:end -->"
    )
    assert roles == ["a", "b"]
    assert matrix == {"p": frozenset({"a"}), "q": frozenset()}


def test_doc_matrix_lists_exactly_the_roles_of_the_code() -> None:
    roles, _matrix = parse_doc_matrix(DOC.read_text(encoding="utf-8"))
    assert roles == list(ROLES)


def test_doc_matrix_equals_code_matrix_for_every_permission_and_role() -> None:
    _roles, documented = parse_doc_matrix(DOC.read_text(encoding="utf-8"))
    assert set(documented) == set(MATRIX), "permissions differ between docs/security.md and code"
    for permission in MATRIX:
        for role in ROLES:
            assert (role in documented[permission]) == role_has(role, permission), (
                f"{permission} x {role}: docs say {role in documented[permission]}, "
                f"code says {role_has(role, permission)}"
            )


def test_unknown_permission_is_held_by_no_role() -> None:
    assert not any(role_has(role, "no.such.permission") for role in ROLES)
    assert not role_has(None, "authenticated")


def test_requires_rejects_a_permission_missing_from_the_matrix() -> None:
    with pytest.raises(ValueError, match="unknown permission"):
        requires("cases.read_everything")


# --- Z2: every route declares a permission ----------------------------------------------------


def fill_url(rule: Rule) -> str:
    """A concrete URL for `rule`: UUID parameters get a random UUID, anything else "x"."""
    values: dict[str, Any] = {}
    for name in rule.arguments:
        converter = type(rule._converters[name]).__name__
        values[name] = uuid.uuid4() if converter == "UUIDConverter" else "x"
    path = rule.build(values, append_unknown=False)
    assert path is not None
    return path[1]


def app_rules(app: Any) -> list[Rule]:
    return sorted(app.url_map.iter_rules(), key=lambda r: (r.rule, r.endpoint))


def routes(app: Any) -> Iterator[tuple[str, str, str, str]]:
    """(endpoint, method, url, permission) for every rule and every GET/POST it answers."""
    for rule in app_rules(app):
        permission = permission_of(app.view_functions[rule.endpoint])
        assert permission is not None
        for method in ("GET", "POST"):
            if method in (rule.methods or ()):
                yield rule.endpoint, method, fill_url(rule), permission


def test_every_route_declares_a_known_permission(app: Any) -> None:
    undeclared = []
    unknown = []
    for rule in app_rules(app):
        permission = permission_of(app.view_functions[rule.endpoint])
        if permission is None:
            undeclared.append(f"{rule.rule} ({rule.endpoint})")
        elif permission != PUBLIC and permission not in MATRIX:
            unknown.append(f"{rule.rule} ({rule.endpoint}): {permission}")
    assert not undeclared, f"routes without a declared permission: {undeclared}"
    assert not unknown, f"routes with a permission missing from the matrix: {unknown}"


def test_route_walk_covers_get_and_post_routes(app: Any) -> None:
    walked = {(endpoint, method) for endpoint, method, _url, _perm in routes(app)}
    # A sanity floor so that a broken walk (no rules, no methods) cannot pass silently.
    assert ("main.index", "GET") in walked
    assert ("accounts.logout", "POST") in walked
    assert ("accounts.admin_user_action", "POST") in walked
    assert len(walked) >= 20


def is_login_redirect(response: Any) -> bool:
    return response.status_code == 302 and urlsplit(response.location).path == "/login"


def test_anonymous_requests_to_non_public_routes_are_sent_to_login(app: Any) -> None:
    client = app.test_client()
    problems = []
    for endpoint, method, url, permission in routes(app):
        if method == "POST":
            response = client.post(url, data={"csrf_token": csrf_token(client, "/login")})
        else:
            response = client.get(url)
        status = response.status_code
        if status >= 500:
            problems.append(f"{method} {url} ({endpoint}): {status}")
        elif permission != PUBLIC and not is_login_redirect(response):
            problems.append(f"{method} {url} ({endpoint}): {status} {response.location}")
    assert not problems, problems


def test_anonymous_get_of_a_non_public_page_remembers_it_as_next(app: Any) -> None:
    response = app.test_client().get("/account")
    assert is_login_redirect(response)
    assert parse_qs(urlsplit(response.location).query) == {"next": ["/account"]}


def denied_events(db: Any) -> list[dict[str, Any]]:
    events = [details for action, outcome, details in audit_actions(db)
              if action == "security.access_denied" and outcome == "denied"]
    db.rollback()  # end the read transaction: on SQLite it would hold the write lock
    return events


class RoleClient:
    """A logged-in client for one role. Session-ending requests (logout everywhere ends every
    session of the user) are made by a throwaway member of the same role."""

    def __init__(self, app: Any, role: str, clock: Any) -> None:
        self.app = app
        self.role = role
        self.clock = clock
        self.client = self.fresh()

    def fresh(self) -> Any:
        client = self.app.test_client()
        login(client, make_user(self.app, role=self.role), self.clock)
        return client

    def request(self, endpoint: str, method: str, url: str) -> Any:
        client = self.fresh() if endpoint in SESSION_ENDING else self.client
        if method == "POST":
            return client.post(url, data={"csrf_token": csrf_token(client, "/account")})
        return client.get(url)


@pytest.mark.parametrize("role", ROLES)
def test_each_role_reaches_exactly_the_routes_its_permissions_allow(
    app: Any, db: Any, clock: Any, role: str
) -> None:
    caller = RoleClient(app, role, clock)
    problems = []
    for endpoint, method, url, permission in routes(app):
        before = len(denied_events(db))
        response = caller.request(endpoint, method, url)
        events = denied_events(db)[before:]
        status = response.status_code
        body = response.get_data(as_text=True)
        where = f"{role} {method} {url} ({endpoint}, {permission})"
        if status >= 500 or "Traceback" in body:
            problems.append(f"{where}: {status}")
        elif role_has(role, permission):
            sent_away = is_login_redirect(response) and endpoint not in SESSION_ENDING
            if status == 403 or events or sent_away:
                problems.append(f"{where}: allowed but got {status} {response.location} {events}")
        elif status != 403 or events != [{"endpoint": endpoint, "permission": permission}]:
            problems.append(f"{where}: expected 403 + one audit event, got {status} {events}")
    assert not problems, "\n".join(problems)


def test_a_route_without_declared_permission_is_refused_even_for_an_admin(
    app: Any, db: Any, clock: Any
) -> None:
    @app.route("/test-undeclared")
    def undeclared() -> str:
        return "secret content of an undeclared route"

    admin = make_user(app, role="admin")
    client = app.test_client()
    login(client, admin, clock)
    response = client.get("/test-undeclared")
    assert response.status_code == 403
    assert "secret content" not in response.get_data(as_text=True)
    assert denied_events(db)[-1] == {"endpoint": "undeclared"}


def test_a_route_without_declared_permission_is_refused_for_anonymous(app: Any) -> None:
    @app.route("/test-undeclared-anon")
    def undeclared_anon() -> str:
        return "secret content of an undeclared route"

    response = app.test_client().get("/test-undeclared-anon")
    assert response.status_code == 403
    assert "secret content" not in response.get_data(as_text=True)


# --- Z5: changes apply on the next request ----------------------------------------------------


def test_role_change_takes_effect_on_the_next_request(app: Any, db: Any, clock: Any) -> None:
    admin = make_user(app, role="admin")
    client = app.test_client()
    login(client, admin, clock)
    assert client.get("/admin/users").status_code == 200
    user = user_row(db, admin.id)
    user.role = "coordinator"
    db.commit()
    assert client.get("/admin/users").status_code == 403


def test_deactivation_takes_effect_on_the_next_request(app: Any, db: Any, clock: Any) -> None:
    member = make_user(app, role="coordinator")
    client = app.test_client()
    login(client, member, clock)
    assert client.get("/account").status_code == 200
    user = user_row(db, member.id)
    user.is_active = False
    db.commit()
    response = client.get("/account")
    assert is_login_redirect(response)
    assert member.username not in response.get_data(as_text=True)


# --- Z6: the policy failing closed ------------------------------------------------------------


@pytest.mark.parametrize(("role", "path"), [("admin", "/admin/users"), ("board", "/account"),
                                            ("coordinator", "/")])
def test_policy_that_raises_gives_no_data(
    app: Any, clock: Any, monkeypatch: pytest.MonkeyPatch, role: str, path: str
) -> None:
    member = make_user(app, role=role)
    other = make_user(app, role="support_worker")
    client = app.test_client()
    login(client, member, clock)
    assert client.get(path).status_code == 200
    monkeypatch.setattr(permissions, "role_has", _explode)
    monkeypatch.setattr("avhopp.security.role_has", _explode)
    response = client.get(path)
    body = response.get_data(as_text=True)
    assert response.status_code in (403, 500)
    assert member.username not in body
    assert other.username not in body
    assert "Traceback" not in body
    if response.status_code == 500:
        assert re.search(r"[0-9a-f]{12}", body), "500 page without an incident id"


def _explode(role: str | None, permission: str) -> bool:
    raise RuntimeError("policy store unavailable")
