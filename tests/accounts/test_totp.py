"""The second factor: TOTP codes, recovery codes, enrolment and how seeds are stored
(SECURITY.md A6)."""

from __future__ import annotations

import base64
import hashlib
import re
from typing import Any

from sqlalchemy import select

from avhopp.accounts import services
from avhopp.accounts.models import RecoveryCode, User, WebSession
from avhopp.db import get_database
from tests.conftest import (
    audit_actions,
    csrf_token,
    login,
    login_password,
    make_user,
    post_form,
    totp_code,
)

CODE_REFUSED = "Koden godtogs inte"
ENROL_REFUSED = "Koden stämde inte"
SECRET_RE = re.compile(r'<code class="secret">([A-Z2-7 ]+)</code>')
QR_RE = re.compile(r'<img class="qr" src="(data:image/svg\+xml[^"]+)"')
RECOVERY_RE = re.compile(r"<li><code>([0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4})</code></li>")


def events(db: Any) -> list[tuple[str, str, dict[str, Any]]]:
    rows = audit_actions(db)
    db.rollback()  # SQLite: end the read transaction, it holds the write lock
    return rows


def second_factor_events(db: Any) -> list[tuple[str, str, dict[str, Any]]]:
    return [e for e in events(db) if e[0] == "auth.login_second_factor"]


def submit_code(client: Any, code: str) -> Any:
    return post_form(client, "/login/code", code=code)


def logout(client: Any) -> None:
    assert post_form(client, "/", "/logout").status_code == 302


def enrol_with_recovery_codes(app: Any, member: Any, clock: Any) -> list[str]:
    """Enrol `member` (made with enrolled=False) through the service; returns recovery codes."""
    secret = services.new_totp_secret()
    with get_database(app).scope() as session:
        user = session.get(User, member.id)
        codes = services.enrol_totp(
            session, user=user, secret=secret, code=totp_code(secret, clock()),
            keys=app.extensions["avhopp.keys"], policy=app.extensions["avhopp.account_policy"],
            now=clock(),
        )
    member.totp_secret = secret
    clock.advance(seconds=30)  # the enrolment code's step is used up
    return codes


# --- codes work once ------------------------------------------------------------------------


def test_totp_code_logs_in_and_is_audited(app, client, clock, db):
    member = make_user(app)
    login_password(client, member)

    response = submit_code(client, totp_code(member.totp_secret, clock()))

    assert response.status_code == 302
    assert client.get("/").status_code == 200
    assert second_factor_events(db) == [
        ("auth.login_second_factor", "success", {"method": "totp"})
    ]


def test_totp_code_replayed_in_a_new_login_is_refused_and_audited(app, client, clock, db):
    member = make_user(app)
    code = totp_code(member.totp_secret, clock())
    login_password(client, member)
    assert submit_code(client, code).status_code == 302
    logout(client)
    clock.advance(seconds=10)  # still inside the code's window

    login_password(client, member)
    response = submit_code(client, code)

    assert response.status_code == 200
    assert CODE_REFUSED in response.get_data(as_text=True)
    assert client.get("/").headers["Location"] == "/login/code"
    assert second_factor_events(db)[-1] == (
        "auth.login_second_factor", "denied", {"reason": "replayed_code", "method": "totp"}
    )


def test_code_of_an_earlier_step_than_the_last_accepted_is_refused(app, client, clock):
    member = make_user(app)
    earlier = totp_code(member.totp_secret, clock())
    clock.advance(seconds=30)
    login_password(client, member)
    assert submit_code(client, totp_code(member.totp_secret, clock())).status_code == 302
    logout(client)

    login_password(client, member)

    assert submit_code(client, earlier).status_code == 200


def test_next_steps_code_is_accepted_after_a_login(app, client, clock):
    member = make_user(app)
    login(client, member, clock)  # advances the clock one step
    logout(client)

    login_password(client, member)

    assert submit_code(client, totp_code(member.totp_secret, clock())).status_code == 302


def test_four_wrong_codes_still_allow_the_right_one(app, client, clock):
    member = make_user(app)
    login_password(client, member)
    for _ in range(4):
        assert submit_code(client, "000000").status_code == 200

    response = submit_code(client, totp_code(member.totp_secret, clock()))

    assert response.status_code == 302
    assert client.get("/").status_code == 200


def test_five_wrong_codes_send_the_user_back_to_the_password_step(app, client, clock, db):
    member = make_user(app)
    login_password(client, member)
    for _ in range(4):
        assert submit_code(client, "000000").status_code == 200

    response = submit_code(client, "000000")

    assert response.status_code == 302
    assert response.headers["Location"] == "/login"
    assert second_factor_events(db)[-2:] == [
        ("auth.login_second_factor", "denied", {"reason": "bad_code"}),
        ("auth.login_second_factor", "denied", {"reason": "too_many_codes"}),
    ]


def test_after_five_wrong_codes_the_right_code_no_longer_logs_in(app, client, clock):
    member = make_user(app)
    login_password(client, member)
    for _ in range(5):
        submit_code(client, "000000")

    token = csrf_token(client, "/login")
    response = client.post("/login/code", data={
        "csrf_token": token, "code": totp_code(member.totp_secret, clock())})

    assert response.headers["Location"] == "/login"
    assert client.get("/").headers["Location"].startswith("/login")


# --- recovery codes -------------------------------------------------------------------------


def test_recovery_code_logs_in_once_and_is_audited(app, client, clock, db):
    member = make_user(app, enrolled=False)
    codes = enrol_with_recovery_codes(app, member, clock)
    login_password(client, member)

    response = submit_code(client, codes[3])

    assert response.status_code == 302
    assert client.get("/").status_code == 200
    assert second_factor_events(db)[-1] == (
        "auth.login_second_factor", "success", {"method": "recovery_code"}
    )


def test_used_recovery_code_is_refused_and_audited(app, client, clock, db):
    member = make_user(app, enrolled=False)
    codes = enrol_with_recovery_codes(app, member, clock)
    login_password(client, member)
    assert submit_code(client, codes[0]).status_code == 302
    logout(client)

    login_password(client, member)
    response = submit_code(client, codes[0])

    assert response.status_code == 200
    assert CODE_REFUSED in response.get_data(as_text=True)
    assert second_factor_events(db)[-1] == (
        "auth.login_second_factor", "denied", {"reason": "bad_code"}
    )


def test_other_recovery_codes_still_work_after_one_is_used(app, client, clock):
    member = make_user(app, enrolled=False)
    codes = enrol_with_recovery_codes(app, member, clock)
    login_password(client, member)
    submit_code(client, codes[0])
    logout(client)

    login_password(client, member)

    assert submit_code(client, codes[1]).status_code == 302


def test_recovery_codes_are_stored_only_as_sha256(app, clock, db):
    member = make_user(app, enrolled=False)
    codes = enrol_with_recovery_codes(app, member, clock)

    stored = db.scalars(select(RecoveryCode.code_hash).where(
        RecoveryCode.user_id == member.id)).all()

    assert len(stored) == len(codes) == 10
    assert sorted(stored) == sorted(
        hashlib.sha256(c.replace("-", "").encode()).hexdigest() for c in codes
    )
    for code in codes:
        assert code not in stored and code.replace("-", "") not in stored


# --- the seed is never stored in plaintext --------------------------------------------------


def enrol_over_http(client: Any, member: Any) -> tuple[str, Any]:
    """Password step, then the enrolment page; returns the secret shown and the page."""
    assert login_password(client, member).headers["Location"] == "/login/enrol"
    page = client.get("/login/enrol")
    match = SECRET_RE.search(page.get_data(as_text=True))
    assert match, page.get_data(as_text=True)
    return match.group(1).replace(" ", ""), page


def secret_forms(secret: str) -> list[bytes]:
    """The seed as text (grouped or not, any case) and as raw bytes."""
    return [secret.encode(), secret.lower().encode(), base64.b32decode(secret)]


def test_totp_seed_is_not_in_the_database_in_plaintext(app, client, clock, db):
    member = make_user(app, enrolled=False)
    secret, _page = enrol_over_http(client, member)
    stored_during = db.scalars(select(WebSession.data)).all()
    db.rollback()
    post_form(client, "/login/enrol", code=totp_code(secret, clock()))

    user = db.get(User, member.id)
    wrapped = bytes(user.totp_secret_wrapped)
    stored_after = db.scalars(select(WebSession.data)).all()

    assert wrapped
    for form in secret_forms(secret):
        assert form not in wrapped
        for data in stored_during + stored_after:
            assert form not in data.encode()
    assert base64.b64encode(secret.encode()) not in b"".join(d.encode() for d in stored_during)


def test_wrapped_seed_decrypts_to_the_enrolled_secret(app, client, clock, db):
    member = make_user(app, enrolled=False)
    secret, _page = enrol_over_http(client, member)
    post_form(client, "/login/enrol", code=totp_code(secret, clock()))

    user = db.get(User, member.id)

    assert services._totp_secret(user, app.extensions["avhopp.keys"]) == secret


# --- enrolment over HTTP --------------------------------------------------------------------


def test_enrolment_page_shows_a_qr_data_uri_and_the_secret(app, client):
    member = make_user(app, enrolled=False)

    secret, page = enrol_over_http(client, member)

    body = page.get_data(as_text=True)
    assert QR_RE.search(body), body  # drawn by the server, no external QR service
    assert len(base64.b32decode(secret)) == 20  # a 160-bit seed


def test_enrolment_secret_stays_the_same_across_page_loads(app, client):
    member = make_user(app, enrolled=False)
    secret, _page = enrol_over_http(client, member)

    again = SECRET_RE.search(client.get("/login/enrol").get_data(as_text=True)).group(1)

    assert again.replace(" ", "") == secret


def test_enrolment_refuses_a_wrong_code(app, client, clock, db):
    member = make_user(app, enrolled=False)
    secret, _page = enrol_over_http(client, member)
    wrong = "000000" if totp_code(secret, clock()) != "000000" else "111111"

    response = post_form(client, "/login/enrol", code=wrong)

    assert response.status_code == 200
    assert ENROL_REFUSED in response.get_data(as_text=True)
    assert db.get(User, member.id).totp_enrolled_at is None
    db.rollback()
    assert client.get("/").headers["Location"].startswith("/login")


def test_enrolment_with_the_right_code_logs_in_and_shows_ten_recovery_codes(
    app, client, clock, db
):
    member = make_user(app, enrolled=False)
    secret, _page = enrol_over_http(client, member)

    response = post_form(client, "/login/enrol", code=totp_code(secret, clock()))

    assert response.status_code == 200
    codes = RECOVERY_RE.findall(response.get_data(as_text=True))
    assert len(set(codes)) == 10
    assert client.get("/").status_code == 200
    assert ("auth.totp_enrolled", "success", {}) in events(db)
    account = client.get("/account").get_data(as_text=True)
    assert not any(code in account for code in codes)


def test_enrolled_secret_is_the_one_used_at_the_next_login(app, client, clock):
    member = make_user(app, enrolled=False)
    secret, _page = enrol_over_http(client, member)
    post_form(client, "/login/enrol", code=totp_code(secret, clock()))
    logout(client)
    clock.advance(seconds=30)

    login_password(client, member)

    assert submit_code(client, totp_code(secret, clock())).status_code == 302


def test_recovery_codes_shown_at_enrolment_work(app, client, clock):
    member = make_user(app, enrolled=False)
    secret, _page = enrol_over_http(client, member)
    page = post_form(client, "/login/enrol", code=totp_code(secret, clock()))
    codes = RECOVERY_RE.findall(page.get_data(as_text=True))
    logout(client)

    login_password(client, member)

    assert submit_code(client, codes[-1]).status_code == 302


def test_enrolled_user_is_not_offered_enrolment(app, client):
    member = make_user(app)

    response = login_password(client, member)

    assert response.headers["Location"] == "/login/code"
    assert client.get("/login/enrol").headers["Location"] == "/login"
