"""Server-side sessions: ending them, rotating ids, timeouts, cookie attributes, step-up and
cache headers (SECURITY.md S1-S6)."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest
from sqlalchemy import select

from avhopp.accounts import services
from avhopp.accounts.models import WebSession
from avhopp.app import create_app
from avhopp.db import get_database
from tests.conftest import (
    CSRF_RE,
    audit_actions,
    csrf_token,
    login,
    login_password,
    make_user,
    post_form,
    totp_code,
)

COOKIE = "avhopp_session"
NEW_PASSWORD = "grusväg under sju tysta kastanjer i mars"


def events(db: Any) -> list[tuple[str, str, dict[str, Any]]]:
    rows = audit_actions(db)
    db.rollback()  # SQLite: end the read transaction, it holds the write lock
    return rows


def cookie_value(client: Any, name: str = COOKIE) -> str:
    cookie = client.get_cookie(name)
    assert cookie is not None, f"no {name} cookie"
    return cookie.value


def with_cookie(app: Any, value: str) -> Any:
    """A new browser that presents a copied cookie."""
    thief = app.test_client()
    thief.set_cookie(COOKIE, value)
    return thief


def sent_to_login(response: Any) -> bool:
    return response.status_code == 302 and response.headers["Location"].startswith("/login")


def session_rows(db: Any) -> list[str]:
    rows = list(db.scalars(select(WebSession.id)))
    db.rollback()
    return rows


# --- S1: ended sessions are dead in the database --------------------------------------------


def test_cookie_holds_only_a_random_token_whose_hash_is_the_row_id(app, client, clock, db):
    member = make_user(app)
    login(client, member, clock)
    token = cookie_value(client)

    rows = session_rows(db)

    assert rows == [hashlib.sha256(token.encode()).hexdigest()]
    assert token not in rows
    assert len(token) >= 40 and member.username not in token


def test_copied_cookie_is_dead_after_logout(app, client, clock, db):
    member = make_user(app)
    login(client, member, clock)
    copied = cookie_value(client)
    assert with_cookie(app, copied).get("/").status_code == 200

    response = post_form(client, "/", "/logout")

    assert sent_to_login(response)
    assert sent_to_login(with_cookie(app, copied).get("/"))
    assert session_rows(db) == []
    assert events(db)[-1] == ("auth.logout", "success", {})


def test_copied_cookie_is_dead_after_deactivation_even_once_reactivated(app, client, clock, db):
    member = make_user(app)
    login(client, member, clock)
    copied = cookie_value(client)

    with get_database(app).scope() as session:
        services.set_active(session, actor=None, user_id=member.id, active=False)
    with get_database(app).scope() as session:
        services.set_active(session, actor=None, user_id=member.id, active=True)

    assert sent_to_login(with_cookie(app, copied).get("/"))
    assert ("user.deactivated", "success", {"sessions": 1}) in events(db)


def test_copied_cookie_of_another_session_is_dead_after_a_password_change(
    app, client, clock, db
):
    member = make_user(app)
    login(client, member, clock)
    copied = cookie_value(client)
    other = app.test_client()
    login(other, member, clock)

    post_form(other, "/account/password", current_password=member.password,
              new_password=NEW_PASSWORD, confirm=NEW_PASSWORD)

    assert sent_to_login(with_cookie(app, copied).get("/"))
    assert events(db)[-1] == ("auth.password_changed", "success", {})


def test_own_cookie_from_before_a_password_change_is_dead(app, client, clock):
    member = make_user(app)
    login(client, member, clock)
    before = cookie_value(client)

    post_form(client, "/account/password", current_password=member.password,
              new_password=NEW_PASSWORD, confirm=NEW_PASSWORD)

    assert cookie_value(client) != before
    assert sent_to_login(with_cookie(app, before).get("/"))
    assert client.get("/").status_code == 200


def test_copied_cookie_is_dead_after_a_2fa_reset(app, client, clock, db):
    member = make_user(app)
    login(client, member, clock)
    copied = cookie_value(client)

    with get_database(app).scope() as session:
        services.reset_totp(session, actor=None, user_id=member.id)

    assert sent_to_login(with_cookie(app, copied).get("/"))
    assert ("user.totp_reset", "success", {"sessions": 1}) in events(db)


def test_logout_everywhere_kills_every_session_of_the_user(app, client, clock, db):
    member = make_user(app)
    bystander = make_user(app)
    login(client, member, clock)
    other = app.test_client()
    login(other, member, clock)
    third = app.test_client()
    login(third, bystander, clock)
    copies = [cookie_value(client), cookie_value(other)]

    response = post_form(client, "/account", "/account/logout-everywhere")

    assert sent_to_login(response)
    for copied in copies:
        assert sent_to_login(with_cookie(app, copied).get("/"))
    assert third.get("/").status_code == 200
    assert ("auth.logout_everywhere", "success", {"sessions": 2}) in events(db)


def test_back_after_logout_shows_nothing(app, client, clock):
    member = make_user(app)
    login(client, member, clock)
    post_form(client, "/", "/logout")

    for path in ("/", "/account"):
        response = client.get(path)
        assert sent_to_login(response)
        assert member.username not in response.get_data(as_text=True)


# --- S2: a new id after each login step -----------------------------------------------------


def test_cookie_changes_after_the_password_step_and_the_old_one_is_dead(app, client, db):
    member = make_user(app)
    csrf_token(client, "/login")
    before = cookie_value(client)

    login_password(client, member)

    after = cookie_value(client)
    assert after != before
    assert hashlib.sha256(before.encode()).hexdigest() not in session_rows(db)
    assert with_cookie(app, before).get("/login/code").headers["Location"] == "/login"


def test_cookie_changes_after_the_second_factor_and_the_old_one_is_dead(
    app, client, clock, db
):
    member = make_user(app)
    login_password(client, member)
    pending = cookie_value(client)

    post_form(client, "/login/code", code=totp_code(member.totp_secret, clock()))

    assert cookie_value(client) != pending
    assert hashlib.sha256(pending.encode()).hexdigest() not in session_rows(db)
    assert sent_to_login(with_cookie(app, pending).get("/"))
    assert client.get("/").status_code == 200


def test_cookie_planted_before_login_does_not_become_authenticated(app, client, clock):
    member = make_user(app)
    csrf_token(client, "/login")
    planted = cookie_value(client)  # an attacker who knows the victim's pre-login id

    login(client, member, clock)

    assert client.get("/").status_code == 200
    assert with_cookie(app, planted).get("/").status_code == 302


# --- S3: idle timeout and absolute lifetime -------------------------------------------------


def test_session_idle_for_21_minutes_expires_and_is_audited(app, client, clock, db):
    member = make_user(app)
    login(client, member, clock)
    clock.advance(minutes=21)

    response = client.get("/")

    assert sent_to_login(response)
    assert events(db)[-1] == ("auth.session_expired", "success", {"reason": "idle_timeout"})


def test_session_idle_for_19_minutes_is_still_alive(app, client, clock):
    member = make_user(app)
    login(client, member, clock)
    clock.advance(minutes=19)

    assert client.get("/").status_code == 200


def test_activity_every_10_minutes_keeps_the_session_until_the_absolute_lifetime(
    app, client, clock, db
):
    member = make_user(app)
    login(client, member, clock)  # the session was created 30 s ago
    # 59 x 10 min = 9 h 50 min: alive throughout, although far beyond the idle timeout.
    for _ in range(59):
        clock.advance(minutes=10)
        assert client.get("/").status_code == 200

    clock.advance(minutes=10)  # 10 h 0 min 30 s after the session began
    response = client.get("/")

    assert sent_to_login(response)
    assert events(db)[-1] == ("auth.session_expired", "success", {"reason": "absolute_timeout"})


def test_expired_session_row_is_deleted(app, client, clock, db):
    member = make_user(app)
    login(client, member, clock)
    copied = cookie_value(client)
    clock.advance(minutes=21)
    client.get("/")
    clock.advance(minutes=-21)  # even with the clock turned back, the row is gone

    assert sent_to_login(with_cookie(app, copied).get("/"))


# --- S4: cookie attributes ------------------------------------------------------------------


def set_cookies(response: Any) -> list[str]:
    return response.headers.getlist("Set-Cookie")


def full_login_cookies(client: Any, member: Any, clock: Any) -> list[str]:
    """Every Set-Cookie header of a complete login, in order."""
    headers = set_cookies(client.get("/login"))
    token = csrf_token(client, "/login")
    headers += set_cookies(client.post("/login", data={
        "csrf_token": token, "username": member.username, "password": member.password}))
    token = csrf_token(client, "/login/code")
    headers += set_cookies(client.post("/login/code", data={
        "csrf_token": token, "code": totp_code(member.totp_secret, clock())}))
    return headers


def test_login_cookies_are_httponly_samesite_lax_and_expire_with_the_browser(
    app, client, clock
):
    member = make_user(app)

    headers = full_login_cookies(client, member, clock)

    assert len(headers) >= 3  # one per new id: first visit, password step, second factor
    for header in headers:
        attributes = [part.strip().lower() for part in header.split(";")]
        assert attributes[0].startswith(f"{COOKIE}=")
        assert "httponly" in attributes
        assert "samesite=lax" in attributes
        assert not any(a.startswith(("expires", "max-age")) for a in attributes), header


def test_no_remember_me_cookie_is_ever_set(app, client, clock):
    member = make_user(app)

    headers = full_login_cookies(client, member, clock)

    assert {h.split("=", 1)[0] for h in headers} == {COOKIE}
    assert "remember" not in client.get("/login").get_data(as_text=True).lower()


@pytest.fixture
def https_app(app_overrides: dict[str, Any]) -> Any:
    application = create_app({**app_overrides, "HTTPS": True})
    yield application
    get_database(application).engine.dispose()


def test_https_cookie_is_host_prefixed_secure_with_root_path_and_no_domain(https_app, clock):
    member = make_user(https_app)
    client = https_app.test_client()
    client.environ_base["wsgi.url_scheme"] = "https"

    headers = full_login_cookies(client, member, clock)

    assert len(headers) >= 3
    for header in headers:
        attributes = [part.strip().lower() for part in header.split(";")]
        assert header.startswith("__Host-avhopp=")
        assert {"secure", "httponly", "path=/", "samesite=lax"} <= set(attributes), header
        assert not any(a.startswith(("domain", "expires", "max-age")) for a in attributes)
    assert client.get("/").status_code == 200


def test_over_https_our_own_forms_post_and_a_foreign_referer_is_refused(https_app, clock):
    # Flask-WTF's strict check wants a same-origin Referer on every POST over HTTPS; under
    # Referrer-Policy no-referrer browsers sent none and every form answered 400 in production.
    member = make_user(https_app)

    def post_login(referer: str | None) -> Any:
        client = https_app.test_client()  # a fresh session and token for each attempt
        page = client.get("/login", base_url="https://localhost")
        assert page.headers["Referrer-Policy"] == "same-origin"
        assert '<meta name="referrer" content="same-origin">' in page.get_data(as_text=True)
        token = CSRF_RE.search(page.get_data(as_text=True))
        assert token is not None
        form = {"csrf_token": token.group(1) or token.group(2), "username": member.username,
                "password": member.password}
        return client.post("/login", data=form, base_url="https://localhost",
                           headers={"Referer": referer} if referer else {})

    assert post_login(None).status_code == 400
    assert post_login("https://evil.example/login").status_code == 400
    assert post_login("https://localhost/login").status_code == 302


# --- S5: step-up re-authentication ----------------------------------------------------------


def admin_20_minutes_after_login(app: Any, client: Any, clock: Any) -> Any:
    admin = make_user(app, role="admin")
    login(client, admin, clock)
    for _ in range(3):  # 27 minutes, with activity so the session itself stays alive
        clock.advance(minutes=9)
        assert client.get("/admin/users").status_code == 200
    return admin


def test_creating_a_user_right_after_login_needs_no_step_up(app, client, clock):
    admin = make_user(app, role="admin")
    login(client, admin, clock)

    assert client.get("/admin/users/new").status_code == 200


def test_creating_a_user_20_minutes_after_login_asks_for_the_password(app, client, clock):
    admin_20_minutes_after_login(app, client, clock)

    response = client.get("/admin/users/new")

    assert response.status_code == 302
    assert response.headers["Location"] == "/account/confirm?next=/admin/users/new"


def test_step_up_with_a_wrong_password_is_refused_and_audited(app, client, clock, db):
    admin_20_minutes_after_login(app, client, clock)

    response = post_form(client, "/account/confirm?next=/admin/users/new",
                         password="inte mitt lösenord alls")

    assert response.status_code == 200
    assert "Lösenordet är fel" in response.get_data(as_text=True)
    assert events(db)[-1] == (
        "auth.reauthenticated", "denied", {"reason": "wrong_current_password"}
    )
    assert client.get("/admin/users/new").headers["Location"].startswith("/account/confirm")


def test_step_up_with_the_right_password_returns_to_the_form(app, client, clock, db):
    admin = admin_20_minutes_after_login(app, client, clock)

    response = post_form(client, "/account/confirm?next=/admin/users/new",
                         password=admin.password)

    assert response.status_code == 302
    assert response.headers["Location"] == "/admin/users/new"
    assert events(db)[-1] == ("auth.reauthenticated", "success", {})
    created = post_form(client, "/admin/users/new", username="ny.kollega", role="board")
    assert created.status_code == 200
    assert "Engångslösenord för ny.kollega" in created.get_data(as_text=True)


def test_step_up_is_needed_again_after_five_more_minutes(app, client, clock):
    admin = admin_20_minutes_after_login(app, client, clock)
    post_form(client, "/account/confirm?next=/admin/users/new", password=admin.password)
    clock.advance(minutes=6)

    assert client.get("/admin/users/new").headers["Location"].startswith("/account/confirm")


def test_deactivating_20_minutes_after_login_asks_for_the_password_and_changes_nothing(
    app, client, clock, db
):
    admin_20_minutes_after_login(app, client, clock)
    member = make_user(app)
    page = f"/admin/users/{member.id}"

    response = post_form(client, page, f"{page}/deactivate", version="1")

    assert response.headers["Location"].startswith("/account/confirm")
    assert not [e for e in events(db) if e[0] == "user.deactivated"]
    assert login_password(app.test_client(), member).status_code == 302


# --- S6: caching ----------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/", "/account", "/admin/users", "/account/password"])
def test_authenticated_pages_are_not_stored_in_any_cache(app, client, clock, path):
    admin = make_user(app, role="admin")
    login(client, admin, clock)

    response = client.get(path)

    assert response.status_code == 200
    assert "no-store" in response.headers["Cache-Control"]


@pytest.mark.parametrize("action", ["/logout", "/account/logout-everywhere"])
def test_logout_clears_site_data(app, client, clock, action):
    member = make_user(app)
    login(client, member, clock)

    response = post_form(client, "/account", action)

    clear = response.headers.get("Clear-Site-Data", "")
    assert {'"cache"', '"cookies"', '"storage"'} <= {p.strip() for p in clear.split(",")}
