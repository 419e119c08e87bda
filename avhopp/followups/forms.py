"""Follow-up forms: parse and validate only; choices of staff are set by the view."""

from __future__ import annotations

import uuid

from flask_wtf import FlaskForm
from wtforms import (
    BooleanField,
    DateTimeLocalField,
    HiddenField,
    IntegerField,
    SelectChoice,
    SelectField,
    StringField,
    TextAreaField,
)
from wtforms.validators import DataRequired, InputRequired, Length, NumberRange, Optional
from wtforms.validators import ValidationError as FieldError

from avhopp.translation import lazy_gettext as _l

KIND_LABELS = {
    "contact": _l("Follow-up contact"), "risk_reassessment": _l("Risk reassessment"),
    "consent_renewal": _l("Consent renewal"), "after_care": _l("After-care check-in"),
    "plan_target": _l("Plan target"),
}
RECURRENCE_LABELS = {
    "none": _l("Once"), "twice_weekly": _l("Twice a week"), "weekly": _l("Every week"),
    "biweekly": _l("Every other week"), "monthly": _l("Every month"),
    "custom": _l("Custom rule"),
}
CONTACT_TYPE_LABELS = {
    "meeting": _l("Meeting"), "phone": _l("Phone"), "digital": _l("Digital"),
    "home_visit": _l("Home visit"), "multi_agency_meeting": _l("Multi-agency meeting"),
    "authority_visit": _l("Visit to an authority"),
    "attempt_without_contact": _l("Attempt without contact"),
}
MODE_LABELS = {"immediate": _l("Each reminder at once"), "digest": _l("One digest a day")}
LOCAL_FORMAT = "%Y-%m-%dT%H:%M"


def _choices(labels: dict[str, object]) -> list[SelectChoice]:
    return [SelectChoice(value, label) for value, label in labels.items()]


class _Versioned(FlaskForm):
    version = HiddenField(validators=[DataRequired()])

    def validate_version(self, field: HiddenField) -> None:
        if not str(field.data or "").isdigit() or len(str(field.data)) > 9:
            raise FieldError(_l("Reload the page and try again."))


class ScheduleForm(FlaskForm):
    kind = SelectField(_l("Kind"), choices=_choices(KIND_LABELS), validators=[InputRequired()])
    # Any UUID passes here; whether it is on the team is the service's decision.
    assignee_id = SelectField(_l("Assigned to"), validators=[InputRequired()],
                              validate_choice=False)
    due_at = DateTimeLocalField(_l("Due (local time)"), format=LOCAL_FORMAT,
                                validators=[InputRequired()])
    recurrence = SelectField(_l("Repeats"), choices=_choices(RECURRENCE_LABELS),
                             validators=[InputRequired()])
    recurrence_rule = StringField(
        _l("Custom rule (RRULE, e.g. FREQ=WEEKLY;INTERVAL=3)"),
        validators=[Optional(), Length(max=200)])
    reminder_lead_hours = IntegerField(_l("Reminder, hours before"),
                                       validators=[InputRequired(), NumberRange(0, 720)])
    escalation_delay_hours = IntegerField(_l("Escalate when overdue by, hours"),
                                          validators=[InputRequired(), NumberRange(0, 1440)])

    def validate_assignee_id(self, field: SelectField) -> None:
        try:
            uuid.UUID(str(field.data))
        except ValueError:
            raise FieldError(_l("Choose a staff member on the team.")) from None


class CompleteForm(_Versioned):
    occurred_at = DateTimeLocalField(_l("When (local time)"), format=LOCAL_FORMAT,
                                     validators=[InputRequired()])
    contact_type = SelectField(_l("Contact type"), choices=_choices(CONTACT_TYPE_LABELS),
                               validators=[InputRequired()])
    contact_achieved = BooleanField(_l("Contact achieved"))
    note = TextAreaField(_l("Outcome (saved as a journal entry)"),
                         validators=[DataRequired(), Length(max=20_000)])


class RescheduleForm(_Versioned):
    due_at = DateTimeLocalField(_l("New due time (local time)"), format=LOCAL_FORMAT,
                                validators=[InputRequired()])
    reason = StringField(_l("Reason"), validators=[DataRequired(), Length(max=500)])


class CancelForm(_Versioned):
    reason = StringField(_l("Reason"), validators=[DataRequired(), Length(max=500)])
    continue_series = BooleanField(_l("Keep the series: plan the next occurrence"))


class PreferenceForm(FlaskForm):
    mode = SelectField(_l("Reminders"), choices=_choices(MODE_LABELS),
                       validators=[InputRequired()])
    email = StringField(_l("Work e-mail for reminders"),
                        validators=[Optional(), Length(max=254)])
