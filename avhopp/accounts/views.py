"""Login, two-factor, password and session views, and the admin pages for staff accounts."""

from __future__ import annotations

import base64
import uuid
from typing import Any

from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_login import current_user, login_user, logout_user

from avhopp.accounts import services
from avhopp.accounts.forms import (
    ROLE_LABELS,
    ChangePasswordForm,
    ChangeRoleForm,
    CreateUserForm,
    EnrolForm,
    LoginForm,
    ReauthForm,
    SecondFactorForm,
    VersionedActionForm,
)
from avhopp.accounts.models import User
from avhopp.crypto.keyring import KeyProvider
from avhopp.db import request_session
from avhopp.errors import DomainError
from avhopp.permissions import AUTHENTICATED, PUBLIC, requires
from avhopp.security import (
    client_addr,
    mark_reauthenticated,
    now,
    require_recent_auth,
    safe_next,
)
from avhopp.translation import gettext as _

bp = Blueprint("accounts", __name__, template_folder="templates")

LOGIN_FAILED = "login_failed"
_ENROL_AAD = b"avhopp/totp-enrolment/v1"


def policy() -> services.AccountPolicy:
    return current_app.extensions["avhopp.account_policy"]  # type: ignore[no-any-return]


def keys() -> KeyProvider:
    return current_app.extensions["avhopp.keys"]  # type: ignore[no-any-return]


def password_message(code: str) -> str:
    p = policy()
    messages = {
        "too_short": _("The password must be at least %(n)d characters.",
                       n=p.password_min_length),
        "too_long": _("The password may be at most %(n)d characters.", n=p.password_max_length),
        "too_guessable": _(
            "The password is too easy to guess. Use a longer phrase of several unrelated words; "
            "avoid the organisation's name, your username and common passwords."
        ),
        "invalid_character": _("The password contains a character that is not allowed."),
        "same_as_current": _("The new password must differ from the current one."),
    }
    return messages.get(code, _("The password could not be accepted."))


def _pending_user() -> User | None:
    raw = session.get("pending_user_id")
    if not raw:
        return None
    try:
        user = request_session().get(User, uuid.UUID(raw))
    except ValueError:
        return None
    if user is None or not user.is_active:
        return None
    return user


def _clear_keeping_language() -> None:
    locale = session.get("locale")
    session.clear()
    if locale:
        session["locale"] = locale


def _finish_login(user: User) -> Any:
    target = session.get("pending_next")
    _clear_keeping_language()
    login_user(user)
    session.rotate()  # type: ignore[attr-defined]
    mark_reauthenticated()  # a fresh two-factor login counts as recent authentication
    if user.must_change_password:
        return url_for("accounts.change_password")
    return safe_next(target)


# --- login ----------------------------------------------------------------------------------


@bp.route("/login", methods=["GET", "POST"])
@requires(PUBLIC)
def login() -> Any:
    if current_user.is_authenticated:
        return redirect(url_for("main.index"))
    form = LoginForm()
    status = 200
    if form.validate_on_submit():
        db = request_session()
        try:
            user = services.check_password(
                db,
                username=form.username.data or "",
                password=form.password.data or "",
                client_addr=client_addr(),
                policy=policy(),
                now=now(),
            )
        except services.LoginRefused as refused:
            db.commit()  # the failure counters and the audit event must persist
            form.form_errors.append(
                _(
                    "Login failed. Check your username and password. After too many attempts "
                    "the account is locked; an administrator can unlock it."
                )
            )
            status = 429 if refused.reason == "address_throttled" else 200
        else:
            target = request.args.get("next")
            _clear_keeping_language()
            session["pending_user_id"] = str(user.id)
            session["pending_stage"] = "totp" if user.has_totp else "enrol"
            session["totp_failures"] = 0
            if target:
                session["pending_next"] = target
            session.rotate()  # type: ignore[attr-defined]
            db.commit()
            if user.has_totp:
                return redirect(url_for("accounts.second_factor"))
            return redirect(url_for("accounts.enrol"))
    return render_template(
        "accounts/login.html", form=form, logged_out=request.args.get("logged_out")
    ), status


@bp.route("/login/code", methods=["GET", "POST"])
@requires(PUBLIC)
def second_factor() -> Any:
    if current_user.is_authenticated:
        return redirect(url_for("main.index"))  # a GET must never end a session
    user = _pending_user()
    if user is None or session.get("pending_stage") != "totp":
        session.clear()
        return redirect(url_for("accounts.login"))
    form = SecondFactorForm()
    if form.validate_on_submit():
        db = request_session()
        try:
            services.check_second_factor(db, user=user, code=form.code.data or "", keys=keys(),
                                         policy=policy(), client_addr=client_addr(), now=now())
        except services.LoginRefused:
            failures = int(session.get("totp_failures", 0)) + 1
            session["totp_failures"] = failures
            if failures >= policy().totp_max_attempts:
                services.record_second_factor_lockout(db, user=user)
                db.commit()
                session.clear()
                flash(_("Too many wrong codes. Log in again with your password."), "error")
                return redirect(url_for("accounts.login"))
            db.commit()
            form.code.errors = [_("The code was not accepted. Try the next code.")]
        else:
            target = _finish_login(user)
            db.commit()
            return redirect(target)
    return render_template("accounts/second_factor.html", form=form)


@bp.route("/login/enrol", methods=["GET", "POST"])
@requires(PUBLIC)
def enrol() -> Any:
    if current_user.is_authenticated:
        return redirect(url_for("main.index"))
    user = _pending_user()
    if user is None or session.get("pending_stage") != "enrol":
        session.clear()
        return redirect(url_for("accounts.login"))
    secret = _enrolment_secret(user)
    form = EnrolForm()
    if form.validate_on_submit():
        db = request_session()
        try:
            codes = services.enrol_totp(
                db, user=user, secret=secret, code=form.code.data or "", keys=keys(),
                policy=policy(), now=now(),
            )
        except DomainError:
            form.code.errors = [_("The code did not match. Check the time on your phone and "
                                  "enter the current code.")]
        else:
            target = _finish_login(user)
            db.commit()
            return render_template("accounts/recovery_codes.html", codes=codes, next=target)
    _uri, qr_data_uri = services.totp_provisioning(secret, username=user.username)
    return render_template(
        "accounts/enrol.html", form=form, qr=qr_data_uri, secret=_group(secret)
    )


def _enrolment_secret(user: User) -> str:
    """The seed being enrolled, kept wrapped in the server-side session until confirmed."""
    wrapped = session.get("enrol_secret")
    aad = _ENROL_AAD + user.id.bytes
    if wrapped:
        kek_id, blob = wrapped.split(":", 1)
        return keys().unwrap(kek_id, base64.b64decode(blob), aad).decode()
    secret = services.new_totp_secret()
    kek_id, blob = keys().wrap(secret.encode(), aad)
    session["enrol_secret"] = f"{kek_id}:{base64.b64encode(blob).decode()}"
    return secret


def _group(secret: str) -> str:
    return " ".join(secret[i : i + 4] for i in range(0, len(secret), 4))


@bp.route("/logout", methods=["POST"])
@requires(AUTHENTICATED)
def logout() -> Any:
    db = request_session()
    services.record_logout(db, actor=current_user._get_current_object())
    db.commit()
    logout_user()
    session.destroy()  # type: ignore[attr-defined]
    response = redirect(url_for("accounts.login", logged_out=1))
    # S6: the browser drops cached pages and storage of this origin.
    response.headers["Clear-Site-Data"] = '"cache", "cookies", "storage"'
    return response


@bp.route("/account/logout-everywhere", methods=["POST"])
@requires(AUTHENTICATED)
def logout_everywhere() -> Any:
    db = request_session()
    services.logout_everywhere(db, actor=current_user._get_current_object())
    db.commit()
    logout_user()
    session.destroy()  # type: ignore[attr-defined]
    response = redirect(url_for("accounts.login", logged_out=1))
    response.headers["Clear-Site-Data"] = '"cache", "cookies", "storage"'
    return response


# --- own account ----------------------------------------------------------------------------


@bp.route("/account")
@requires(AUTHENTICATED)
def account() -> Any:
    user = current_user._get_current_object()
    return render_template(
        "accounts/account.html",
        user=user,
        role_label=ROLE_LABELS.get(user.role, user.role),
        recovery_left=services.unused_recovery_codes(user),
    )


@bp.route("/account/password", methods=["GET", "POST"])
@requires(AUTHENTICATED)
def change_password() -> Any:
    form = ChangePasswordForm()
    if form.validate_on_submit():
        db = request_session()
        try:
            services.change_password(
                db,
                actor=current_user._get_current_object(),
                current_password=form.current_password.data or "",
                new_password=form.new_password.data or "",
                policy=policy(),
                keep_session=getattr(session, "row_id", None),
                now=now(),
            )
        except services.LoginRefused:
            db.commit()  # the refusal is audited (A3)
            form.current_password.errors = [_("The current password is wrong.")]
        except DomainError as exc:
            db.commit()  # the refusal is audited
            form.new_password.errors = [password_message(exc.code)]
        else:
            session.rotate()  # type: ignore[attr-defined]
            db.commit()
            flash(_("Your password has been changed. Other sessions have been ended."), "success")
            return redirect(url_for("main.index"))
    return render_template("accounts/change_password.html", form=form,
                           forced=current_user.must_change_password)


@bp.route("/account/confirm", methods=["GET", "POST"])
@requires(AUTHENTICATED)
def reauthenticate() -> Any:
    form = ReauthForm()
    if form.validate_on_submit():
        db = request_session()
        try:
            services.reauthenticate(db, actor=current_user._get_current_object(),
                                    password=form.password.data or "", policy=policy())
        except services.LoginRefused:
            db.commit()
            form.password.errors = [_("The password is wrong.")]
        else:
            mark_reauthenticated()
            db.commit()
            return redirect(safe_next(request.args.get("next")))
    return render_template("accounts/reauthenticate.html", form=form)


# --- administration -------------------------------------------------------------------------


@bp.route("/admin/users")
@requires("accounts.manage")
def admin_users() -> Any:
    db = request_session()
    users = services.list_users(db, actor=current_user._get_current_object())
    locked = {u.id for u in users if services.is_locked(db, user=u, policy=policy())}
    return render_template("accounts/admin_users.html", users=users, locked=locked,
                           role_labels=ROLE_LABELS)


@bp.route("/admin/users/new", methods=["GET", "POST"])
@requires("accounts.manage")
def admin_create_user() -> Any:
    step_up = require_recent_auth()
    if step_up is not None:
        return step_up
    form = CreateUserForm()
    if form.validate_on_submit():
        db = request_session()
        try:
            user, one_time = services.create_user(
                db, actor=current_user._get_current_object(), username=form.username.data or "",
                role=form.role.data or "", policy=policy(),
            )
        except DomainError as exc:
            form.username.errors = [_admin_message(exc.code)]
        else:
            db.commit()
            return render_template("accounts/one_time_password.html", user=user,
                                   password=one_time)
    return render_template("accounts/admin_create_user.html", form=form)


@bp.route("/admin/users/<uuid:user_id>")
@requires("accounts.manage")
def admin_user(user_id: uuid.UUID) -> Any:
    db = request_session()
    user = services.get_user(db, actor=current_user._get_current_object(), user_id=user_id)
    role_form = ChangeRoleForm(role=user.role, version=user.version)
    return render_template(
        "accounts/admin_user.html",
        user=user,
        role_labels=ROLE_LABELS,
        role_form=role_form,
        action_form=VersionedActionForm(version=user.version),
        locked=services.is_locked(db, user=user, policy=policy()),
        recovery_left=services.unused_recovery_codes(user),
    )


def _step_up_back_to(user_id: uuid.UUID) -> Any:
    """Step-up for a POSTed admin action: after the password prompt, return to the account page
    (a POST cannot be replayed through a redirect)."""
    if require_recent_auth() is None:
        return None
    return redirect(url_for("accounts.reauthenticate",
                            next=url_for("accounts.admin_user", user_id=user_id)))


_ADMIN_ACTIONS = {
    "deactivate": (lambda db, a, uid, v: services.set_active(
        db, actor=a, user_id=uid, active=False, expected_version=v, now=now()), True),
    "reactivate": (lambda db, a, uid, v: services.set_active(
        db, actor=a, user_id=uid, active=True, expected_version=v, now=now()), False),
    "reset-2fa": (lambda db, a, uid, v: services.reset_totp(
        db, actor=a, user_id=uid, expected_version=v), True),
    "unlock": (lambda db, a, uid, v: services.unlock(
        db, actor=a, user_id=uid, policy=policy()), False),
}


@bp.route("/admin/users/<uuid:user_id>/<action>", methods=["POST"])
@requires("accounts.manage")
def admin_user_action(user_id: uuid.UUID, action: str) -> Any:
    if action not in _ADMIN_ACTIONS:
        abort(404)
    handler, needs_step_up = _ADMIN_ACTIONS[action]
    if needs_step_up:
        step_up = _step_up_back_to(user_id)
        if step_up is not None:
            return step_up
    form = VersionedActionForm()
    if not form.validate_on_submit():
        abort(400)
    db = request_session()
    try:
        handler(db, current_user._get_current_object(), user_id, form.version.data)
    except DomainError as exc:
        if exc.status_code in (403, 404):
            raise
        flash(_admin_message(exc.code), "error")
    else:
        db.commit()
        flash(_("The account has been updated."), "success")
    return redirect(url_for("accounts.admin_user", user_id=user_id))


@bp.route("/admin/users/<uuid:user_id>/role", methods=["POST"])
@requires("accounts.manage")
def admin_change_role(user_id: uuid.UUID) -> Any:
    step_up = _step_up_back_to(user_id)
    if step_up is not None:
        return step_up
    form = ChangeRoleForm()
    if not form.validate_on_submit():
        flash(_("Choose a valid role."), "error")
        return redirect(url_for("accounts.admin_user", user_id=user_id))
    db = request_session()
    try:
        services.change_role(db, actor=current_user._get_current_object(), user_id=user_id,
                             role=form.role.data or "", expected_version=form.version.data)
    except DomainError as exc:
        if exc.status_code in (403, 404):
            raise
        flash(_admin_message(exc.code), "error")
    else:
        db.commit()
        flash(_("The role has been changed."), "success")
    return redirect(url_for("accounts.admin_user", user_id=user_id))


@bp.route("/admin/users/<uuid:user_id>/reset-password", methods=["POST"])
@requires("accounts.manage")
def admin_reset_password(user_id: uuid.UUID) -> Any:
    step_up = _step_up_back_to(user_id)
    if step_up is not None:
        return step_up
    form = VersionedActionForm()
    if not form.validate_on_submit():
        abort(400)
    db = request_session()
    try:
        user, one_time = services.reset_password(
            db, actor=current_user._get_current_object(), user_id=user_id, policy=policy(),
            expected_version=form.version.data,
        )
    except DomainError as exc:
        if exc.status_code in (403, 404):
            raise
        flash(_admin_message(exc.code), "error")
        return redirect(url_for("accounts.admin_user", user_id=user_id))
    db.commit()
    return render_template("accounts/one_time_password.html", user=user, password=one_time)


def _admin_message(code: str) -> str:
    messages = {
        "invalid_username": _("Use 2-64 letters, digits or . _ - @ in the username."),
        "username_taken": _("That username is already in use."),
        "invalid_role": _("Choose a valid role."),
        "stale_version": _("Someone else changed the account meanwhile. Check and try again."),
        "cannot_deactivate_self": _("You cannot deactivate your own account."),
        "cannot_change_own_role": _("You cannot change your own role."),
    }
    return messages.get(code, _("The change could not be made."))
