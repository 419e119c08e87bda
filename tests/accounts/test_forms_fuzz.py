"""Property-based bad input over the account forms (SECURITY.md B3, B4, B8): login, second
factor, language switch, password change, step-up and the admin forms. Whatever is posted, the
answer is never a 500 or a traceback, a refused post stores no account, and no redirect leaves
the site."""

from __future__ import annotations

import uuid
from typing import Any
from urllib.parse import urlsplit

from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import func, select

from avhopp.accounts import forms
from avhopp.accounts.models import User
from tests.cases.test_forms_fuzz import FUZZ, VALUE, assert_sane, field_names
from tests.cases.test_views import logged_in
from tests.conftest import csrf_token, login_password, make_user


def users(db: Any) -> int:
    db.rollback()
    count = db.scalar(select(func.count()).select_from(User)) or 0
    db.rollback()
    return count


def assert_stays_on_site(response: Any) -> None:
    if response.status_code in (301, 302, 303, 307, 308):
        target = urlsplit(response.location)
        assert target.scheme in ("", "http") and target.netloc in ("", "localhost"), (
            response.location)


def fuzz_posts(app: Any, db: Any, client: Any, token: str,
               cases: list[tuple[str, list[str]]]) -> None:
    @FUZZ
    @given(data=st.data())
    def post_anything(data: Any) -> None:
        url, names = data.draw(st.sampled_from(cases))
        values = {name: data.draw(VALUE, label=name) for name in names}
        before = users(db)
        response = client.post(url, data={"csrf_token": token, **values})
        assert_sane(response)
        assert_stays_on_site(response)
        if response.status_code != 302:
            assert users(db) == before, url

    post_anything()


def test_the_login_forms_survive_arbitrary_input(app, db, clock):
    member = make_user(app, role="support_worker")
    # The second factor first: failed logins from one address are throttled afterwards.
    halfway = app.test_client()
    assert login_password(halfway, member).status_code == 302
    token = csrf_token(halfway, "/login/code")
    fuzz_posts(app, db, halfway, token, [
        ("/login/code", field_names(app, forms.SecondFactorForm)),
        ("/language", field_names(app, forms.LanguageForm)),
    ])
    anonymous = app.test_client()
    token = csrf_token(anonymous, "/login")
    fuzz_posts(app, db, anonymous, token, [
        ("/login", field_names(app, forms.LoginForm)),
        ("/language", field_names(app, forms.LanguageForm)),
    ])


def test_the_own_account_forms_survive_arbitrary_input(app, db, clock):
    client, _member = logged_in(app, clock, "support_worker")
    token = csrf_token(client, "/account")
    fuzz_posts(app, db, client, token, [
        ("/account/password", field_names(app, forms.ChangePasswordForm)),
        ("/account/confirm", field_names(app, forms.ReauthForm)),
    ])


def test_the_admin_forms_survive_arbitrary_input(app, db, clock):
    client, admin = logged_in(app, clock, "admin")
    target = make_user(app, role="support_worker")
    token = csrf_token(client, "/account/confirm")
    confirmed = client.post("/account/confirm",
                            data={"csrf_token": token, "password": admin.password})
    assert confirmed.status_code == 302  # step-up, so the forms themselves are reached
    base = f"/admin/users/{target.id}"
    fuzz_posts(app, db, client, token, [
        ("/admin/users/new", field_names(app, forms.CreateUserForm)),
        (f"{base}/role", field_names(app, forms.ChangeRoleForm)),
        (f"{base}/deactivate", field_names(app, forms.VersionedActionForm)),
        (f"{base}/reset-password", field_names(app, forms.VersionedActionForm)),
        (f"/admin/users/{uuid.uuid4()}/role", field_names(app, forms.ChangeRoleForm)),
    ])
