"""Password hashing, the password policy and changing one's password (SECURITY.md A1-A3)."""

from __future__ import annotations

import dataclasses
import tomllib
from typing import Any

import argon2
import pytest
from sqlalchemy import text

from avhopp.accounts import services
from avhopp.accounts.services import AccountPolicy, password_problems
from avhopp.app import create_app
from avhopp.config import CONFIG_DIR, load_config
from avhopp.db import get_database
from tests.conftest import (
    STRONG_PASSWORD,
    audit_actions,
    login,
    login_password,
    make_user,
    post_form,
    user_row,
)

NEW_PASSWORD = "grusväg under sju tysta kastanjer i mars"
TOO_GUESSABLE = "Lösenordet är för lätt att gissa"
TOO_SHORT = "Lösenordet måste ha minst 12 tecken"
WRONG_CURRENT = "Det nuvarande lösenordet är fel"


@pytest.fixture(scope="module")
def policy() -> AccountPolicy:
    """The testing policy, without a database: the policy is pure."""
    return AccountPolicy.from_config(load_config({"ENV": "testing"}, environ={}))


def events(db: Any) -> list[tuple[str, str, dict[str, Any]]]:
    rows = audit_actions(db)
    db.rollback()  # SQLite: end the read transaction, it holds the write lock
    return rows


def stored_hash(db: Any, user_id: Any) -> str:
    value = user_row(db, user_id).password_hash
    db.rollback()
    return value


def long_passphrase(length: int) -> str:
    words = ["ekorre", "lingon", "fyrtorn", "vante", "kanel", "dragspel", "hängmatta",
             "snöslunga", "kompass"]
    text_ = ""
    n = 0
    while len(text_) < length:
        text_ += words[n % len(words)] + str(n) + " "
        n += 1
    return text_[:length]


# --- A1: argon2id ---------------------------------------------------------------------------


def test_stored_password_hash_is_argon2id(app, db):
    member = make_user(app)

    assert stored_hash(db, member.id).startswith("$argon2id$v=19$")


def test_every_password_hash_in_staff_user_is_argon2id(app, client, clock, db):
    admin = make_user(app, role="admin")
    login(client, admin, clock)
    # One account per way a hash is written: admin page (one-time), reset, own change.
    post_form(client, "/admin/users/new", username="ny.person", role="coordinator")
    other = make_user(app)
    with get_database(app).scope() as session:
        services.reset_password(session, actor=None, user_id=other.id,
                                policy=app.extensions["avhopp.account_policy"])
    post_form(client, "/account/password", current_password=admin.password,
              new_password=NEW_PASSWORD, confirm=NEW_PASSWORD)

    hashes = db.execute(text("SELECT password_hash FROM staff_user")).scalars().all()

    assert len(hashes) == 3
    assert all(h.startswith("$argon2id$v=19$") for h in hashes), hashes


def test_production_argon2_parameters_are_argon2_cffi_defaults_or_stronger():
    with (CONFIG_DIR / "default.toml").open("rb") as fh:
        config = tomllib.load(fh)
    with (CONFIG_DIR / "production.example.toml").open("rb") as fh:
        config.update(tomllib.load(fh))
    defaults = argon2.PasswordHasher()

    assert config["ARGON2_TIME_COST"] >= max(3, defaults.time_cost)
    assert config["ARGON2_MEMORY_COST"] >= max(65536, defaults.memory_cost)
    assert config["ARGON2_PARALLELISM"] >= max(4, defaults.parallelism)


def test_login_rehashes_the_password_when_argon2_parameters_change(app, app_overrides, db):
    member = make_user(app)
    assert "$m=8192,t=1,p=1$" in stored_hash(db, member.id)
    stronger = create_app({**app_overrides, "ARGON2_TIME_COST": 2,
                           "ARGON2_MEMORY_COST": 16384, "ARGON2_PARALLELISM": 2})
    try:
        response = login_password(stronger.test_client(), member)
    finally:
        get_database(stronger).engine.dispose()

    assert response.status_code == 302
    rehashed = stored_hash(db, member.id)
    assert rehashed.startswith("$argon2id$v=19$m=16384,t=2,p=2$")
    assert argon2.PasswordHasher().verify(rehashed, member.password)
    assert events(db)[-1] == ("auth.login_password", "success", {})


def test_login_keeps_the_hash_when_argon2_parameters_are_unchanged(app, client, db):
    member = make_user(app)
    before = stored_hash(db, member.id)

    assert login_password(client, member).status_code == 302

    assert stored_hash(db, member.id) == before


# --- A2: the policy -------------------------------------------------------------------------

ACCEPTED = {
    "exactly_12_characters": "Kx9#mQ2!vB7z",
    "passphrase": STRONG_PASSWORD,
    "128_characters": long_passphrase(128),
    "200_characters": long_passphrase(200),
    "1024_characters": long_passphrase(1024),
    "emoji": "🦊🌲🚲🌙🦉🍄🌊⛰️🎻🧭🪁🐙",
    "cyrillic": "рыжая лиса прыгает через",
    "mixed_scripts": "mössa@Tåg7&Öl 雪",
    "context_word_inside_a_strong_phrase": "blå avhopp-kaffe på tisdagar vid sjön",
}

REFUSED = {
    "11_characters": ("Gx7#qL9!vR2", "too_short"),
    "1025_characters": (long_passphrase(1025), "too_long"),
    "nul_byte": ("kvällsdimma\x00gungar ovanför", "invalid_character"),
    "common_password123456": ("password123456", "too_guessable"),
    "keyboard_walk": ("qwertyuiopasdf", "too_guessable"),
    "organisation_word_twice": ("avhopp2026avhopp", "too_guessable"),
    "extremism_twice": ("extremism!extremism", "too_guessable"),
    "organisation_word_with_capitals": ("Avhopp2026Avhopp!", "too_guessable"),
    "only_context_words": ("avhoppare extremist styrelse", "too_guessable"),
    "username_and_year": ("karin.lindqvist2026", "too_guessable"),
    "username_twice": ("karin.lindqvist!karin", "too_guessable"),
}


@pytest.mark.parametrize("password", list(ACCEPTED.values()), ids=list(ACCEPTED))
def test_policy_accepts(policy, password):
    assert password_problems(password, policy=policy, username="karin.lindqvist") == []


@pytest.mark.parametrize(("password", "code"), list(REFUSED.values()), ids=list(REFUSED))
def test_policy_refuses(policy, password, code):
    assert password_problems(password, policy=policy, username="karin.lindqvist") == [code]


def test_policy_refuses_the_configured_organisation_name(policy):
    ours = dataclasses.replace(policy, organisation_name="Fristaden")

    assert password_problems("Fristaden2026Fristaden!", policy=ours) == ["too_guessable"]
    assert password_problems("Fristaden2026Fristaden!", policy=policy) == []


def test_long_passwords_are_not_truncated(policy):
    password = long_passphrase(200)
    changed_last = password[:-1] + ("X" if password[-1] != "X" else "Y")
    stored = services.hash_password(password, policy=policy)

    assert services.verify_password(stored, password, policy=policy)
    assert not services.verify_password(stored, changed_last, policy=policy)


def test_unicode_password_is_not_normalised(policy):
    composed = "café på månen, sju blå kaniner"  # é as one code point (NFC)
    decomposed = composed.replace("é", "e\u0301")  # é as e + combining accent (NFD)
    stored = services.hash_password(composed, policy=policy)

    assert not services.verify_password(stored, decomposed, policy=policy)


@pytest.mark.parametrize("variant", [STRONG_PASSWORD.upper(), STRONG_PASSWORD.capitalize()],
                         ids=["upper", "capitalised"])
def test_login_with_the_password_in_another_case_fails(app, client, variant):
    member = make_user(app)

    response = login_password(client, member, variant)

    assert response.status_code == 200
    assert "Inloggningen misslyckades" in response.get_data(as_text=True)


def test_long_password_works_for_login_and_its_prefix_does_not(app, client):
    member = make_user(app, password=long_passphrase(300))

    assert login_password(client, member, member.password[:-1]).status_code == 200
    assert login_password(client, member).status_code == 302


@pytest.mark.parametrize(
    "case",
    [
        ("Gx7#qL9!vR2", TOO_SHORT),
        ("password123456", TOO_GUESSABLE),
        ("qwertyuiopasdf", TOO_GUESSABLE),
        ("avhopp2026avhopp", TOO_GUESSABLE),
        ("extremism!extremism", TOO_GUESSABLE),
    ],
    ids=["too_short", "common", "keyboard", "organisation", "extremism"],
)
def test_change_password_form_refuses_a_weak_password_with_a_swedish_message(
    app, client, clock, db, case
):
    new_password, message = case
    member = make_user(app)
    login(client, member, clock)
    before = stored_hash(db, member.id)

    response = post_form(client, "/account/password", current_password=member.password,
                         new_password=new_password, confirm=new_password)

    assert response.status_code == 200
    assert message in response.get_data(as_text=True)
    assert stored_hash(db, member.id) == before


def test_change_password_form_refuses_a_username_based_password(app, client, clock, db):
    member = make_user(app, username="karin.lindqvist")
    login(client, member, clock)

    response = post_form(client, "/account/password", current_password=member.password,
                         new_password="karin.lindqvist!karin", confirm="karin.lindqvist!karin")

    assert response.status_code == 200
    assert TOO_GUESSABLE in response.get_data(as_text=True)


def test_change_password_form_accepts_a_1024_character_password(app, client, clock, db):
    member = make_user(app)
    login(client, member, clock)
    new = long_passphrase(1024)

    response = post_form(client, "/account/password", current_password=member.password,
                         new_password=new, confirm=new)

    assert response.status_code == 302
    assert services.verify_password(stored_hash(db, member.id), new,
                                    policy=app.extensions["avhopp.account_policy"])


# --- A3: the current password is required ---------------------------------------------------


def test_change_password_with_the_right_current_password_succeeds_and_is_audited(
    app, client, clock, db
):
    member = make_user(app)
    login(client, member, clock)

    response = post_form(client, "/account/password", current_password=member.password,
                         new_password=NEW_PASSWORD, confirm=NEW_PASSWORD)

    assert response.status_code == 302
    policy = app.extensions["avhopp.account_policy"]
    assert services.verify_password(stored_hash(db, member.id), NEW_PASSWORD, policy=policy)
    assert events(db)[-1] == ("auth.password_changed", "success", {})
    assert client.get("/").status_code == 200  # this session goes on


def test_old_password_no_longer_logs_in_after_a_change(app, client, clock):
    member = make_user(app)
    login(client, member, clock)
    post_form(client, "/account/password", current_password=member.password,
              new_password=NEW_PASSWORD, confirm=NEW_PASSWORD)

    fresh = app.test_client()

    assert login_password(fresh, member).status_code == 200
    assert login_password(fresh, member, NEW_PASSWORD).status_code == 302


@pytest.mark.parametrize("current", ["fel nuvarande lösenord", STRONG_PASSWORD.upper(), ""],
                         ids=["wrong", "wrong_case", "absent"])
def test_change_password_without_the_right_current_password_is_refused_and_audited(
    app, client, clock, db, current
):
    member = make_user(app)
    login(client, member, clock)
    before = stored_hash(db, member.id)

    response = post_form(client, "/account/password", current_password=current,
                         new_password=NEW_PASSWORD, confirm=NEW_PASSWORD)

    assert response.status_code == 200
    assert WRONG_CURRENT in response.get_data(as_text=True)
    assert stored_hash(db, member.id) == before
    assert events(db)[-1] == (
        "auth.password_changed", "denied", {"reason": "wrong_current_password"}
    )


def test_change_password_with_the_current_field_missing_is_refused_and_audited(
    app, client, clock, db
):
    member = make_user(app)
    login(client, member, clock)
    before = stored_hash(db, member.id)

    response = post_form(client, "/account/password",
                         new_password=NEW_PASSWORD, confirm=NEW_PASSWORD)

    assert response.status_code == 200
    assert stored_hash(db, member.id) == before
    assert events(db)[-1] == (
        "auth.password_changed", "denied", {"reason": "wrong_current_password"}
    )


def test_change_password_ends_the_users_other_sessions(app, client, clock):
    member = make_user(app)
    login(client, member, clock)
    other = app.test_client()
    login(other, member, clock)

    post_form(client, "/account/password", current_password=member.password,
              new_password=NEW_PASSWORD, confirm=NEW_PASSWORD)

    response = other.get("/")
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/login")
    assert client.get("/").status_code == 200


def test_new_password_equal_to_the_current_one_is_refused(app, client, clock, db):
    member = make_user(app)
    login(client, member, clock)
    before = stored_hash(db, member.id)

    response = post_form(client, "/account/password", current_password=member.password,
                         new_password=member.password, confirm=member.password)

    assert response.status_code == 200
    assert "Det nya lösenordet måste skilja sig" in response.get_data(as_text=True)
    assert stored_hash(db, member.id) == before
