"""SECURITY.md D2 for the audit log: a canary typed into the login and password fields never
reaches the audit entries, nor the database file and its WAL (both engines)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from avhopp.audit.models import AuditEvent
from avhopp.db import get_database
from tests.conftest import csrf_token, database_bytes, login, make_user, post_form

CANARY = "Kanariefågel-9f2c7e-UNIQUE"
# A password made of the canary that passes the policy, so a change is accepted too.
CANARY_PASSWORD = f"{CANARY} sjunger över sju tysta ekar"


def forms(canary: str) -> list[str]:
    """The spellings the app could have turned the canary into (it casefolds usernames)."""
    return [canary, canary.casefold(), canary.upper()]


def audit_bytes(app: Any) -> bytes:
    with get_database(app).scope() as session:
        events = session.scalars(select(AuditEvent)).all()
        parts = []
        for event in events:
            for column in AuditEvent.__table__.columns:
                value = getattr(event, column.key)
                parts.append(value if isinstance(value, bytes) else str(value).encode())
        return b"\x00".join(parts)


def test_a_canary_in_login_and_password_fields_never_reaches_the_log_or_the_file(
    app: Any, client: Any, db: Any, clock: Any
) -> None:
    member = make_user(app, role="coordinator")
    # Failed logins: canary as username, as password, as both.
    for username, password in ((CANARY, "irrelevant password 1"), (member.username, CANARY),
                               (CANARY, CANARY), (CANARY_PASSWORD, CANARY_PASSWORD)):
        post_form(client, "/login", username=username, password=password)
    # A logged-in user gets the current password wrong, then changes it to a canary password,
    # and fails a step-up with the canary.
    login(client, member, clock)
    post_form(client, "/account/password", current_password=CANARY,
              new_password=CANARY_PASSWORD, confirm=CANARY_PASSWORD)
    changed = post_form(client, "/account/password", current_password=member.password,
                        new_password=CANARY_PASSWORD, confirm=CANARY_PASSWORD)
    assert changed.status_code == 302
    client.post("/account/confirm", data={"csrf_token": csrf_token(client, "/account/confirm"),
                                          "password": CANARY})

    logged = audit_bytes(app)
    assert b"auth.login_password" in logged  # the attempts were recorded...
    assert b"auth.password_changed" in logged
    for spelling in forms(CANARY):
        assert spelling.encode() not in logged  # ...without the canary
    with get_database(app).scope() as session:
        stored = database_bytes(session)
    for spelling in forms(CANARY):
        assert spelling.encode() not in stored
        assert spelling.encode("utf-16-le") not in stored
