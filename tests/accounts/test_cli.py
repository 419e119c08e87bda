"""`avhopp users ...`: the operator's commands for staff accounts, and the first administrator
of a fresh install (SECURITY.md A8)."""

from __future__ import annotations

import re
from typing import Any

import pytest
from sqlalchemy import func, select

from avhopp.accounts import services
from avhopp.accounts.models import User
from avhopp.cli import main
from avhopp.db import get_database
from tests.conftest import (
    StaffMember,
    audit_actions,
    login_password,
    make_user,
    post_form,
    totp_code,
    user_row,
)

ONE_TIME_RE = re.compile(r"one-time password:\s+(\S+)")
SECRET_RE = re.compile(r'<code class="secret">([A-Z2-7 ]+)</code>')
NEW_PASSWORD = "grusväg under sju tysta kastanjer i mars"


@pytest.fixture
def cli(app: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    """Run `avhopp ...` against the test app; returns (exit code, output)."""
    # Flask's CLI group sets FLASK_RUN_FROM_CLI in os.environ; monkeypatch restores it.
    monkeypatch.setenv("FLASK_RUN_FROM_CLI", "true")
    runner = app.test_cli_runner()

    def run(*args: str) -> Any:
        return runner.invoke(main, list(args))

    return run


def events(db: Any) -> list[tuple[str, str, dict[str, Any]]]:
    rows = audit_actions(db)
    db.rollback()  # SQLite: end the read transaction, it holds the write lock
    return rows


def find_user(db: Any, username: str) -> User | None:
    db.expire_all()
    user = db.scalars(select(User).where(User.username == username)).one_or_none()
    return user


def lock(app: Any, username: str) -> None:
    client = app.test_client()
    for _ in range(10):
        post_form(client, "/login", username=username, password="fel lösenord igen och igen")


# --- users create ---------------------------------------------------------------------------


def test_users_create_prints_a_one_time_password_and_is_audited(app, cli, db):
    result = cli("users", "create", "Karin.Lind", "--role", "coordinator")

    assert result.exit_code == 0, result.output
    one_time = ONE_TIME_RE.search(result.output).group(1)
    user = find_user(db, "karin.lind")
    assert user is not None
    assert (user.role, user.must_change_password, user.has_totp) == ("coordinator", True, False)
    assert services.verify_password(user.password_hash, one_time,
                                    policy=app.extensions["avhopp.account_policy"])
    assert events(db) == [("user.created", "success", {"role": "coordinator"})]


def test_users_create_with_an_unknown_role_gives_a_clear_error(cli, db):
    result = cli("users", "create", "karin.lind", "--role", "superuser")

    assert result.exit_code == 2
    assert "Invalid value for '--role'" in result.output
    assert "Traceback" not in result.output
    assert find_user(db, "karin.lind") is None


@pytest.mark.parametrize("username", ["har mellanslag", "x" * 65, "<script>"],
                         ids=["space", "too_long", "markup"])
def test_users_create_with_a_bad_username_gives_a_clear_error(cli, db, username):
    result = cli("users", "create", username, "--role", "board")

    assert result.exit_code == 1
    assert "could not create user: invalid_username" in result.output
    assert "Traceback" not in result.output
    assert db.scalar(select(func.count()).select_from(User)) == 0


def test_users_create_with_a_taken_username_gives_a_clear_error(app, cli):
    make_user(app, username="karin.lind")

    result = cli("users", "create", "Karin.Lind", "--role", "board")

    assert result.exit_code == 1
    assert "could not create user: username_taken" in result.output


# --- users list -----------------------------------------------------------------------------


def test_users_list_shows_every_account_with_role_state_and_2fa(app, cli):
    make_user(app, username="anna.admin", role="admin")
    make_user(app, username="bo.board", role="board", enrolled=False)
    gone = make_user(app, username="cecilia.stod", role="support_worker")
    with get_database(app).scope() as session:
        services.set_active(session, actor=None, user_id=gone.id, active=False)

    result = cli("users", "list")

    assert result.exit_code == 0, result.output
    lines = [line.split() for line in result.output.splitlines()]
    assert lines == [
        ["anna.admin", "admin", "active", "2fa"],
        ["bo.board", "board", "active", "no-2fa"],
        ["cecilia.stod", "support_worker", "deactivated", "2fa"],
    ]


# --- users deactivate / unlock / reset-2fa --------------------------------------------------


def test_users_deactivate_stops_login_and_is_audited(app, cli, db):
    member = make_user(app, username="karin.lind")

    result = cli("users", "deactivate", "Karin.Lind")

    assert result.exit_code == 0, result.output
    assert user_row(db, member.id).is_active is False
    assert events(db)[-1] == ("user.deactivated", "success", {"sessions": 0})
    assert login_password(app.test_client(), member).status_code == 200


def test_users_unlock_lets_a_locked_user_log_in_and_is_audited(app, cli, db):
    member = make_user(app, username="karin.lind")
    lock(app, "karin.lind")
    assert login_password(app.test_client(), member).status_code == 200

    result = cli("users", "unlock", "karin.lind")

    assert result.exit_code == 0, result.output
    assert events(db)[-1] == ("user.unlocked", "success", {})
    assert login_password(app.test_client(), member).status_code == 302


def test_users_reset_2fa_sends_the_user_to_enrolment_and_is_audited(app, cli, db):
    member = make_user(app, username="karin.lind")

    result = cli("users", "reset-2fa", "karin.lind")

    assert result.exit_code == 0, result.output
    assert user_row(db, member.id).has_totp is False
    assert events(db)[-1] == ("user.totp_reset", "success", {"sessions": 0})
    assert login_password(app.test_client(), member).headers["Location"] == "/login/enrol"


@pytest.mark.parametrize("command", ["deactivate", "unlock", "reset-2fa"])
def test_commands_on_an_unknown_user_give_a_clear_error(cli, db, command):
    result = cli("users", command, "finns.inte")

    assert result.exit_code == 1
    assert "no user named 'finns.inte'" in result.output
    assert "Traceback" not in result.output
    assert events(db) == []


# --- A8: the first administrator ------------------------------------------------------------


def test_ensure_admin_creates_one_admin_without_2fa_who_must_change_password(app, cli, db):
    result = cli("users", "ensure-admin")

    assert result.exit_code == 0, result.output
    assert ONE_TIME_RE.search(result.output)
    users = db.scalars(select(User)).all()
    assert [(u.username, u.role, u.must_change_password, u.has_totp) for u in users] == [
        ("admin", "admin", True, False)]
    db.rollback()
    assert events(db) == [("user.created", "success", {"role": "admin"})]


def test_ensure_admin_does_nothing_when_an_admin_exists(app, cli, db):
    cli("users", "ensure-admin")

    result = cli("users", "ensure-admin")

    assert result.exit_code == 0
    assert "nothing to do" in result.output
    assert not ONE_TIME_RE.search(result.output)
    assert db.scalar(select(func.count()).select_from(User)) == 1


def test_ensure_admin_password_is_random_not_a_default(cli):
    first = ONE_TIME_RE.search(cli("users", "ensure-admin").output).group(1)

    assert len(first) >= 16
    assert first.lower() not in {"admin", "password", "changeme"}


@pytest.mark.parametrize("password", ["admin", "password", "admin123", "changeme"])
def test_default_passwords_do_not_open_the_ensured_admin(app, cli, password):
    cli("users", "ensure-admin")
    admin = StaffMember(id=None, username="admin", role="admin", password=password,
                        totp_secret=None)

    assert login_password(app.test_client(), admin).status_code == 200


def test_first_admin_must_enrol_then_change_password_before_anything_else(
    app, cli, clock, db
):
    one_time = ONE_TIME_RE.search(cli("users", "ensure-admin").output).group(1)
    admin = StaffMember(id=None, username="admin", role="admin", password=one_time,
                        totp_secret=None)
    client = app.test_client()

    # Step 1: the password leads to enrolment only.
    assert login_password(client, admin).headers["Location"] == "/login/enrol"
    assert client.get("/admin/users").headers["Location"] == "/login/enrol"
    page = client.get("/login/enrol").get_data(as_text=True)
    secret = SECRET_RE.search(page).group(1).replace(" ", "")
    codes_page = post_form(client, "/login/enrol", code=totp_code(secret, clock()))
    assert codes_page.status_code == 200
    assert 'href="/account/password"' in codes_page.get_data(as_text=True)

    # Step 2: every page leads to the password change until it is done.
    for path in ("/", "/account", "/admin/users", "/admin/users/new"):
        assert client.get(path).headers["Location"] == "/account/password", path
    forced = client.get("/account/password")
    assert "Du måste välja ett nytt lösenord" in forced.get_data(as_text=True)
    changed = post_form(client, "/account/password", current_password=one_time,
                        new_password=NEW_PASSWORD, confirm=NEW_PASSWORD)
    assert changed.status_code == 302

    # Then the administrator is in.
    assert client.get("/admin/users").status_code == 200
    assert [e[0] for e in events(db)] == [
        "user.created", "auth.login_password", "auth.totp_enrolled", "auth.login_second_factor",
        "auth.password_changed"]


def test_first_admin_cannot_post_admin_actions_before_changing_password(
    app, cli, clock, db
):
    one_time = ONE_TIME_RE.search(cli("users", "ensure-admin").output).group(1)
    admin = StaffMember(id=None, username="admin", role="admin", password=one_time,
                        totp_secret=None)
    client = app.test_client()
    login_password(client, admin)
    secret = SECRET_RE.search(client.get("/login/enrol").get_data(as_text=True)).group(1)
    post_form(client, "/login/enrol", code=totp_code(secret.replace(" ", ""), clock()))

    response = post_form(client, "/account/password", "/admin/users/new",
                         username="smyger.in", role="admin")

    assert response.headers["Location"] == "/account/password"
    assert find_user(db, "smyger.in") is None
