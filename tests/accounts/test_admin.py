"""The admin pages for staff accounts: one-time passwords, account changes with optimistic
locking, and who may use them (SECURITY.md Z5, D6; docs/security.md accounts.manage)."""

from __future__ import annotations

import re
from typing import Any

import pytest
from sqlalchemy import select

from avhopp.accounts import services
from avhopp.accounts.models import User
from avhopp.db import get_database
from tests.conftest import (
    StaffMember,
    audit_actions,
    login,
    login_password,
    make_user,
    post_form,
    user_row,
)

VERSION_RE = re.compile(r'name="version" type="hidden" value="(\d+)"')
ONE_TIME_RE = re.compile(r'<code class="secret">([^<]+)</code>')
STALE = "Någon annan ändrade kontot under tiden"
UPDATED = "Kontot har uppdaterats"


def events(db: Any) -> list[tuple[str, str, dict[str, Any]]]:
    rows = audit_actions(db)
    db.rollback()  # SQLite: end the read transaction, it holds the write lock
    return rows


def actions_named(db: Any, name: str) -> list[tuple[str, str, dict[str, Any]]]:
    return [e for e in events(db) if e[0] == name]


def snapshot(db: Any, user_id: Any) -> dict[str, Any]:
    user = user_row(db, user_id)
    state = {"role": user.role, "is_active": user.is_active, "has_totp": user.has_totp,
             "version": user.version, "password_hash": user.password_hash,
             "must_change_password": user.must_change_password}
    db.rollback()
    return state


@pytest.fixture
def admin_client(app: Any, clock: Any) -> Any:
    admin = make_user(app, role="admin", username="admin.anna")
    client = app.test_client()
    login(client, admin, clock)
    client.admin = admin  # type: ignore[attr-defined]
    return client


def user_page(client: Any, user_id: Any) -> tuple[str, str]:
    """The account page's path and the version its forms carry."""
    path = f"/admin/users/{user_id}"
    page = client.get(path)
    assert page.status_code == 200
    return path, VERSION_RE.search(page.get_data(as_text=True)).group(1)


def act(client: Any, user_id: Any, action: str, version: str | None = None, **data: Any) -> Any:
    """Press an action button on the account page; returns the page shown afterwards."""
    path, current = user_page(client, user_id)
    response = post_form(client, path, f"{path}/{action}", version=version or current, **data)
    assert response.status_code == 302, response.get_data(as_text=True)
    return client.get(response.headers["Location"])


# --- creating accounts ----------------------------------------------------------------------


def test_admin_creates_an_account_and_sees_its_one_time_password(app, admin_client, db):
    mark = len(events(db))

    response = post_form(admin_client, "/admin/users/new", username="Ny.Kollega",
                         role="support_worker")

    assert response.status_code == 200
    one_time = ONE_TIME_RE.search(response.get_data(as_text=True)).group(1)
    user = db.scalars(select(User).where(User.username == "ny.kollega")).one()
    assert (user.role, user.must_change_password, user.has_totp) == (
        "support_worker", True, False)
    assert services.verify_password(user.password_hash, one_time,
                                    policy=app.extensions["avhopp.account_policy"])
    db.rollback()
    assert events(db)[mark:] == [("user.created", "success", {"role": "support_worker"})]


def test_one_time_password_is_shown_only_once(app, admin_client, db):
    response = post_form(admin_client, "/admin/users/new", username="ny.kollega",
                         role="coordinator")
    one_time = ONE_TIME_RE.search(response.get_data(as_text=True)).group(1)
    user_id = db.scalars(select(User.id).where(User.username == "ny.kollega")).one()
    db.rollback()

    for path in ("/admin/users", f"/admin/users/{user_id}", "/admin/users/new"):
        assert one_time not in admin_client.get(path).get_data(as_text=True)


def test_one_time_password_leads_to_enrolment(app, admin_client):
    response = post_form(admin_client, "/admin/users/new", username="ny.kollega",
                         role="coordinator")
    one_time = ONE_TIME_RE.search(response.get_data(as_text=True)).group(1)
    newcomer = app.test_client()
    member = StaffMember(id=None, username="ny.kollega", role="coordinator", password=one_time,
                         totp_secret=None)

    assert login_password(newcomer, member).headers["Location"] == "/login/enrol"


@pytest.mark.parametrize(
    ("username", "message"),
    [("admin.anna", "Användarnamnet används redan"),
     ("har mellanslag", "Använd 2–64 bokstäver"),
     ("<script>", "Använd 2–64 bokstäver")],
    ids=["taken", "space", "markup"],
)
def test_creating_an_account_with_a_bad_username_shows_an_error(
    admin_client, db, username, message
):
    mark = len(events(db))

    response = post_form(admin_client, "/admin/users/new", username=username, role="board")

    assert response.status_code == 200
    assert message in response.get_data(as_text=True)
    assert events(db)[mark:] == []


def test_creating_an_account_with_an_unknown_role_is_refused(admin_client, db):
    response = post_form(admin_client, "/admin/users/new", username="ny.kollega",
                         role="superuser")

    assert response.status_code == 200
    assert db.scalars(select(User).where(User.username == "ny.kollega")).one_or_none() is None


# --- account actions ------------------------------------------------------------------------


def test_deactivating_an_account_is_audited_and_stops_its_login(app, admin_client, db):
    member = make_user(app)

    page = act(admin_client, member.id, "deactivate")

    assert UPDATED in page.get_data(as_text=True)
    assert snapshot(db, member.id)["is_active"] is False
    assert actions_named(db, "user.deactivated") == [
        ("user.deactivated", "success", {"sessions": 0})]
    assert login_password(app.test_client(), member).status_code == 200


def test_reactivating_an_account_is_audited_and_restores_its_login(app, admin_client, db):
    member = make_user(app)
    act(admin_client, member.id, "deactivate")

    act(admin_client, member.id, "reactivate")

    assert snapshot(db, member.id)["is_active"] is True
    assert actions_named(db, "user.reactivated") == [("user.reactivated", "success", {})]
    assert login_password(app.test_client(), member).status_code == 302


def test_changing_a_role_is_audited(app, admin_client, db):
    member = make_user(app, role="support_worker")

    page = act(admin_client, member.id, "role", role="coordinator")

    assert "Rollen har ändrats" in page.get_data(as_text=True)
    assert snapshot(db, member.id)["role"] == "coordinator"
    assert actions_named(db, "user.role_changed") == [
        ("user.role_changed", "success",
         {"old_role": "support_worker", "new_role": "coordinator"})]


def test_changing_a_role_to_an_unknown_one_is_refused(app, admin_client, db):
    member = make_user(app, role="support_worker")

    act(admin_client, member.id, "role", role="superuser")

    assert snapshot(db, member.id)["role"] == "support_worker"
    assert actions_named(db, "user.role_changed") == []


def test_resetting_2fa_is_audited_and_sends_the_user_to_enrolment(app, admin_client, db):
    member = make_user(app)

    act(admin_client, member.id, "reset-2fa")

    assert snapshot(db, member.id)["has_totp"] is False
    assert actions_named(db, "user.totp_reset") == [
        ("user.totp_reset", "success", {"sessions": 0})]
    assert login_password(app.test_client(), member).headers["Location"] == "/login/enrol"


def test_new_one_time_password_is_shown_once_audited_and_replaces_the_old(app, admin_client, db):
    member = make_user(app)
    path, version = user_page(admin_client, member.id)

    response = post_form(admin_client, path, f"{path}/reset-password", version=version)

    assert response.status_code == 200
    one_time = ONE_TIME_RE.search(response.get_data(as_text=True)).group(1)
    assert one_time not in admin_client.get(path).get_data(as_text=True)
    assert snapshot(db, member.id)["must_change_password"] is True
    assert actions_named(db, "auth.password_changed") == [
        ("auth.password_changed", "success", {"reason": "must_change"})]
    newcomer = app.test_client()
    assert login_password(newcomer, member).status_code == 200
    assert login_password(newcomer, member, one_time).status_code == 302


def test_new_one_time_password_ends_the_users_sessions(app, admin_client, clock):
    member = make_user(app)
    member_client = app.test_client()
    login(member_client, member, clock)
    path, version = user_page(admin_client, member.id)

    post_form(admin_client, path, f"{path}/reset-password", version=version)

    assert member_client.get("/").headers["Location"].startswith("/login")


def test_deactivation_ends_the_users_current_session(app, admin_client, clock):
    member = make_user(app)
    member_client = app.test_client()
    login(member_client, member, clock)

    act(admin_client, member.id, "deactivate")

    assert member_client.get("/").headers["Location"].startswith("/login")


def test_unknown_action_is_not_found(app, admin_client):
    member = make_user(app)
    path, version = user_page(admin_client, member.id)

    response = post_form(admin_client, path, f"{path}/delete", version=version)

    assert response.status_code == 404


# --- optimistic locking ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("action", "data"),
    [("deactivate", {}), ("reset-2fa", {}), ("role", {"role": "board"})],
)
def test_stale_version_shows_a_conflict_and_changes_nothing(app, admin_client, db, action, data):
    member = make_user(app, role="coordinator")
    _path, stale = user_page(admin_client, member.id)
    with get_database(app).scope() as session:  # someone else changes the account meanwhile
        services.change_role(session, actor=None, user_id=member.id, role="support_worker")
    before = snapshot(db, member.id)
    audited = len(events(db))

    page = act(admin_client, member.id, action, version=stale, **data)

    assert STALE in page.get_data(as_text=True)
    assert snapshot(db, member.id) == before
    assert len(events(db)) == audited


# --- self-protection ------------------------------------------------------------------------


def test_admin_cannot_deactivate_themselves(admin_client, db):
    me = admin_client.admin

    page = act(admin_client, me.id, "deactivate")

    assert "Du kan inte inaktivera ditt eget konto" in page.get_data(as_text=True)
    assert snapshot(db, me.id)["is_active"] is True
    assert admin_client.get("/admin/users").status_code == 200


def test_admin_cannot_change_their_own_role(admin_client, db):
    me = admin_client.admin

    page = act(admin_client, me.id, "role", role="board")

    assert "Du kan inte ändra din egen roll" in page.get_data(as_text=True)
    assert snapshot(db, me.id)["role"] == "admin"


# --- who may use the admin pages ------------------------------------------------------------


@pytest.mark.parametrize(
    "case",
    [(role, path) for role in ("coordinator", "support_worker", "board")
     for path in ("/admin/users", "/admin/users/new")],
    ids=lambda case: f"{case[0]}-{case[1]}",
)
def test_non_admins_get_403_on_admin_pages_and_the_refusal_is_audited(
    app, client, clock, db, case
):
    role, path = case
    member = make_user(app, role=role)
    login(client, member, clock)

    response = client.get(path)

    assert response.status_code == 403
    assert events(db)[-1][:2] == ("security.access_denied", "denied")
    assert events(db)[-1][2]["permission"] == "accounts.manage"


def test_coordinator_cannot_post_an_admin_action(app, client, clock, db):
    target = make_user(app)
    member = make_user(app, role="coordinator")
    login(client, member, clock)

    response = post_form(client, "/account", f"/admin/users/{target.id}/deactivate",
                         version="1")

    assert response.status_code == 403
    assert snapshot(db, target.id)["is_active"] is True
    assert events(db)[-1] == ("security.access_denied", "denied", {
        "endpoint": "accounts.admin_user_action", "permission": "accounts.manage"})


def test_demoted_admin_is_refused_on_the_next_request(app, admin_client, clock, db):
    other = make_user(app, role="admin")
    other_client = app.test_client()
    login(other_client, other, clock)
    assert other_client.get("/admin/users").status_code == 200

    act(admin_client, other.id, "role", role="coordinator")

    assert other_client.get("/admin/users").status_code == 403
    assert events(db)[-1][:2] == ("security.access_denied", "denied")
    assert other_client.get("/").status_code == 200  # still logged in, as a coordinator


def test_promoted_user_gets_admin_pages_on_the_next_request(app, admin_client, clock):
    member = make_user(app, role="coordinator")
    member_client = app.test_client()
    login(member_client, member, clock)
    assert member_client.get("/admin/users").status_code == 403

    act(admin_client, member.id, "role", role="admin")

    assert member_client.get("/admin/users").status_code == 200
