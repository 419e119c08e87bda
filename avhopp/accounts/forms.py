"""Forms for login, two-factor steps, password change and staff administration."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import (
    HiddenField,
    IntegerField,
    PasswordField,
    SelectChoice,
    SelectField,
    StringField,
)
from wtforms.validators import DataRequired, EqualTo, InputRequired, Length, NumberRange

from avhopp.accounts.models import Role
from avhopp.translation import lazy_gettext as _l

ROLE_LABELS = {
    Role.ADMIN.value: _l("Administrator"),
    Role.COORDINATOR.value: _l("Coordinator"),
    Role.SUPPORT_WORKER.value: _l("Support worker"),
    Role.BOARD.value: _l("Board reviewer"),
}
# wtforms 3.3 deprecates (value, label) tuples as choices (a DeprecationWarning on every form
# instance, an error under the test suite's warning filter); SelectChoice is the supported form.
ROLE_CHOICES = [SelectChoice(value, label) for value, label in ROLE_LABELS.items()]
# Generous limits: long passphrases are welcome; the service enforces the real policy.
PASSWORD_FIELD_MAX = 1024


class LoginForm(FlaskForm):
    username = StringField(
        _l("Username"), validators=[DataRequired(), Length(max=200)],
        render_kw={"autocomplete": "username", "autofocus": True},
    )
    password = PasswordField(
        _l("Password"), validators=[DataRequired(), Length(max=PASSWORD_FIELD_MAX)],
        render_kw={"autocomplete": "current-password"},
    )


class SecondFactorForm(FlaskForm):
    code = StringField(
        _l("Code from your authenticator app, or a recovery code"),
        validators=[DataRequired(), Length(max=40)],
        render_kw={"autocomplete": "one-time-code", "inputmode": "text", "autofocus": True},
    )


class EnrolForm(FlaskForm):
    code = StringField(
        _l("Six-digit code from your authenticator app"),
        validators=[DataRequired(), Length(max=12)],
        render_kw={"autocomplete": "one-time-code", "inputmode": "numeric", "autofocus": True},
    )


class ChangePasswordForm(FlaskForm):
    # No DataRequired: an empty or missing current password must reach the service, which
    # refuses it and audits the refusal (SECURITY.md A3); the browser still asks for it.
    current_password = PasswordField(
        _l("Current password"), validators=[Length(max=PASSWORD_FIELD_MAX)],
        render_kw={"autocomplete": "current-password", "required": True},
    )
    new_password = PasswordField(
        _l("New password"), validators=[DataRequired(), Length(max=PASSWORD_FIELD_MAX)],
        render_kw={"autocomplete": "new-password"},
    )
    confirm = PasswordField(
        _l("Repeat the new password"),
        validators=[DataRequired(), EqualTo("new_password", message=_l("The passwords differ."))],
        render_kw={"autocomplete": "new-password"},
    )


class ReauthForm(FlaskForm):
    password = PasswordField(
        _l("Password"), validators=[DataRequired(), Length(max=PASSWORD_FIELD_MAX)],
        render_kw={"autocomplete": "current-password", "autofocus": True},
    )


class CreateUserForm(FlaskForm):
    username = StringField(
        _l("Username"), validators=[DataRequired(), Length(min=2, max=64)],
        description=_l("Letters, digits and . _ - @ only, for example anna.svensson"),
    )
    role = SelectField(_l("Role"), choices=ROLE_CHOICES,
                       validators=[InputRequired()])


class VersionedActionForm(FlaskForm):
    """A button that changes an account; the version guards against stale pages (D6)."""

    version = IntegerField(validators=[InputRequired(), NumberRange(min=1, max=2**31)],
                           widget=HiddenField.widget)


class ChangeRoleForm(VersionedActionForm):
    role = SelectField(_l("Role"), choices=ROLE_CHOICES,
                       validators=[InputRequired()])


class LanguageForm(FlaskForm):
    locale = SelectField(
        _l("Language"), choices=[SelectChoice("sv", "Svenska"), SelectChoice("en", "English")]
    )
    next = HiddenField()
