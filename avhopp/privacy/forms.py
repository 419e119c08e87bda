"""Forms of the data-protection pages: erasure request, approval, cancellation, retention."""

from __future__ import annotations

from typing import Any

from flask_wtf import FlaskForm
from wtforms import DateField, SelectChoice, SelectField, StringField
from wtforms.validators import DataRequired, InputRequired, Length

from avhopp.translation import lazy_gettext as _l

GROUND_LABELS = {
    "data_subject_request": _l("The person has asked to be erased"),
    "no_longer_needed": _l("The data is no longer needed"),
    "retention": _l("The retention period has passed"),
    "other": _l("Other ground"),
}
STATE_LABELS = {
    "pending": _l("Awaiting approval"),
    "approved": _l("Approved, waiting for its date"),
    "executed": _l("Erased"),
    "cancelled": _l("Cancelled"),
}
EXTEND_LABELS = {
    "ongoing_matter": _l("An ongoing matter with an authority"),
    "renewed_contact": _l("The person has been in contact again"),
    "legal_hold": _l("Legal obligation to keep the data"),
    "other": _l("Other reason"),
}


def _choices(labels: dict[str, Any]) -> list[SelectChoice]:
    return [SelectChoice(value, label) for value, label in labels.items()]


class EraseForm(FlaskForm):
    ground = SelectField(_l("Ground"), choices=_choices(GROUND_LABELS),
                         validators=[InputRequired()])
    confirm_code = StringField(
        _l("Type the track code to confirm"), validators=[DataRequired(), Length(max=20)],
        description=_l("Erasure cannot be undone. Everything stored about the person in every "
                       "track of theirs becomes unreadable for good, also in backups."))


class ButtonForm(FlaskForm):
    """A button that only needs the CSRF token."""


class ExtendForm(FlaskForm):
    until = DateField(_l("Keep until"), validators=[InputRequired()])
    reason = SelectField(_l("Reason"), choices=_choices(EXTEND_LABELS),
                         validators=[InputRequired()])
