"""Forms of the board's audit review: the filter, sign-off, proof download and buttons."""

from __future__ import annotations

import datetime as dt

from flask_wtf import FlaskForm
from wtforms import DateField, IntegerField, SelectChoice, SelectField, StringField
from wtforms.validators import InputRequired, Length, NumberRange, Optional
from wtforms.validators import ValidationError as FieldError

from avhopp.translation import lazy_gettext as _l

OUTCOME_LABELS = {
    "success": _l("Succeeded"),
    "denied": _l("Denied"),
    "error": _l("Failed"),
}
FLAG_LABELS = {
    "break_glass": _l("Break-glass access"),
    "after_hours": _l("Outside working hours"),
    "high_volume": _l("Unusual volume"),
    "denied": _l("Denied attempt"),
    "export": _l("Export"),
    "legal_basis": _l("Disclosure without consent"),
}
# The unusual-volume flag groups reads per person and hour; a bounded period keeps it quick.
VOLUME_MAX_DAYS = 31
MAX_SEQ = 2**62


class FilterForm(FlaskForm):
    """Read from the query string (GET): no state changes, so no CSRF token."""

    class Meta:
        csrf = False

    date_from = DateField(_l("From date"), validators=[Optional()])
    date_to = DateField(_l("To date"), validators=[Optional()],
                        description=_l("Dates are local time and include the whole day."))
    actor = SelectField(_l("Staff member"), choices=[], validators=[Optional()])
    action = SelectField(_l("Action"), choices=[], validators=[Optional()])
    outcome = SelectField(
        _l("Outcome"),
        choices=[SelectChoice("", _l("Any outcome")),
                 *(SelectChoice(v, label) for v, label in OUTCOME_LABELS.items())],
        validators=[Optional()],
    )
    object_code = StringField(_l("Object code or id"),
                              validators=[Optional(), Length(max=64)])
    flag = SelectField(
        _l("Flag"),
        choices=[SelectChoice("", _l("Any")),
                 *(SelectChoice(v, label) for v, label in FLAG_LABELS.items())],
        validators=[Optional()],
    )

    def validate_date_to(self, field: DateField) -> None:
        start, end = self.date_from.data, field.data
        if start and end and end < start:
            raise FieldError(_l("The end date is before the start date."))

    def validate_flag(self, field: SelectField) -> None:
        if field.data != "high_volume":
            return
        start, end = self.date_from.data, self.date_to.data
        if not start or not end or (end - start) > dt.timedelta(days=VOLUME_MAX_DAYS - 1):
            raise FieldError(_l("Choose a period of at most %(days)d days for this flag.",
                                days=VOLUME_MAX_DAYS))


class ButtonForm(FlaskForm):
    """A button that posts (verify now, CSV export): only the CSRF token."""


class SignOffForm(FlaskForm):
    from_seq = IntegerField(_l("From entry number"),
                            validators=[InputRequired(), NumberRange(min=1, max=MAX_SEQ)])
    to_seq = IntegerField(_l("To entry number"),
                          validators=[InputRequired(), NumberRange(min=1, max=MAX_SEQ)])

    def validate_to_seq(self, field: IntegerField) -> None:
        if self.from_seq.data and field.data and field.data < self.from_seq.data:
            raise FieldError(_l("The last entry must come after the first."))


class ProofForm(FlaskForm):
    old_size = IntegerField(
        _l("Size of your saved checkpoint"),
        validators=[InputRequired(), NumberRange(min=0, max=MAX_SEQ)],
        description=_l("The number on the second line of the checkpoint file you kept."),
    )
