"""Forms and label tables both track kinds share; a kind adds its own fields by subclassing."""

from __future__ import annotations

import uuid
from typing import Any

from flask_wtf import FlaskForm
from wtforms import (
    BooleanField,
    DateField,
    DateTimeLocalField,
    HiddenField,
    IntegerField,
    SelectChoice,
    SelectField,
    SelectMultipleField,
    StringField,
    TextAreaField,
)
from wtforms.validators import DataRequired, InputRequired, Length, NumberRange, Optional
from wtforms.validators import ValidationError as FieldError
from wtforms.widgets import CheckboxInput, HiddenInput, ListWidget

from avhopp.casework.models import (
    CLOSURE_REASONS,
    CONSENT_FORMS,
    CONSENT_TYPES,
    CONTACT_TYPES,
    DATA_CATEGORIES,
    GOAL_STATUSES,
    LIFE_DOMAINS,
    REFERRAL_SOURCES,
    SENSITIVITIES,
    STATUSES,
)
from avhopp.casework.services import PURPOSES
from avhopp.translation import lazy_gettext as _l

STATUS_LABELS = {
    "inquiry": _l("Inquiry"), "intake": _l("Intake"), "active": _l("Active"),
    "dormant": _l("Dormant"), "closed": _l("Closed"), "after_care": _l("After-care"),
}
REFERRAL_LABELS = {
    "self": _l("Self"), "relative": _l("Relative"), "social_services": _l("Social services"),
    "police": _l("Police"), "security_service": _l("Security Service"), "school": _l("School"),
    "prison_probation": _l("Prison and Probation Service"),
    "cve": _l("Centre for Preventing Violent Extremism"),
    "relatives_helpline": _l("Relatives' helpline"),
    "other_organisation": _l("Other organisation"),
}
CLOSURE_LABELS = {
    "goal_reached": _l("Goal reached"), "client_ended": _l("The client ended the contact"),
    "contact_lost": _l("Contact lost"), "handed_over": _l("Handed over"),
    "moved": _l("Moved"), "returned_to_environment": _l("Returned to the environment"),
    "other": _l("Other"),
}
CONTACT_TYPE_LABELS = {
    "meeting": _l("Meeting"), "phone": _l("Phone"), "digital": _l("Digital"),
    "home_visit": _l("Home visit"), "multi_agency_meeting": _l("Multi-agency meeting"),
    "authority_visit": _l("Visit to an authority"),
    "attempt_without_contact": _l("Attempt without contact"),
}
SENSITIVITY_LABELS = {"normal": _l("Normal"), "team": _l("Team only"),
                      "named": _l("Named users only")}
# What every track's journal offers; entries for named users only are a defector-track feature
# (cases.forms.JournalForm adds them).
TEAM_SENSITIVITY_LABELS = {k: v for k, v in SENSITIVITY_LABELS.items() if k != "named"}
PURPOSE_LABELS = {
    "casework": _l("Casework"), "planning": _l("Planning"), "follow_up": _l("Follow-up"),
    "supervision": _l("Supervision"), "emergency": _l("Emergency"),
    "data_subject_request": _l("Request from the data subject"),
    "quality_review": _l("Quality review"),
}
SORT_LABELS = {
    "opened_at": _l("Opened"), "code": _l("Code"), "status": _l("Status"),
    "next_contact_at": _l("Next contact"), "owner": _l("Owner"),
}
LIFE_DOMAIN_LABELS = {
    "housing": _l("Housing"), "income_work": _l("Income and work"),
    "education": _l("Education"), "health": _l("Health"), "addiction": _l("Addiction"),
    "social_network": _l("Social network"), "identity_ideology": _l("Identity and ideology"),
    "safety": _l("Safety"), "legal": _l("Legal matters"), "digital": _l("Digital life"),
}
GOAL_STATUS_LABELS = {
    "not_started": _l("Not started"), "ongoing": _l("Ongoing"), "achieved": _l("Achieved"),
    "partly": _l("Partly achieved"), "stopped": _l("Stopped"),
}
CONSENT_TYPE_LABELS = {
    "processing": _l("Processing of personal data"),
    "special_category": _l("Processing of sensitive personal data"),
    "sharing": _l("Sharing with an authority"), "relative_contact": _l("Contact with a relative"),
    "statistics": _l("Statistics"),
}
CONSENT_FORM_LABELS = {"written": _l("Written"), "oral": _l("Oral")}
CATEGORY_LABELS = {
    "identity": _l("Identity"), "contact_details": _l("Contact details"),
    "risk_threat": _l("Risk and threat"), "planned_interventions": _l("Planned interventions"),
    "health": _l("Health"), "environment": _l("Environment"),
}
PAGE_SIZE = 25
MAX_PAGE_NUMBER = 100_000


def choices(labels: dict[str, Any], *, blank: Any = None) -> list[SelectChoice]:
    found = [SelectChoice(value, label) for value, label in labels.items()]
    return [SelectChoice("", blank), *found] if blank is not None else found


def check_labels(pairs: tuple[tuple[dict[str, Any], tuple[str, ...]], ...]) -> None:
    """The label tables must cover the vocabularies the services accept (and nothing else)."""
    for labels, codes in pairs:
        if set(labels) != set(codes):
            raise RuntimeError("a label table does not match its vocabulary")


check_labels(((STATUS_LABELS, STATUSES), (REFERRAL_LABELS, REFERRAL_SOURCES),
              (CLOSURE_LABELS, CLOSURE_REASONS), (CONTACT_TYPE_LABELS, CONTACT_TYPES),
              (PURPOSE_LABELS, PURPOSES), (LIFE_DOMAIN_LABELS, LIFE_DOMAINS),
              (GOAL_STATUS_LABELS, GOAL_STATUSES), (CONSENT_TYPE_LABELS, CONSENT_TYPES),
              (CONSENT_FORM_LABELS, CONSENT_FORMS), (CATEGORY_LABELS, DATA_CATEGORIES),
              (SENSITIVITY_LABELS, SENSITIVITIES)))


def check_uuid(field: Any, message: Any) -> None:
    check_uuid_value(field.data, message)


def check_uuid_value(value: Any, message: Any) -> None:
    try:
        uuid.UUID(str(value))
    except ValueError:
        raise FieldError(message) from None


class CheckboxesField(SelectMultipleField):
    """A choice of several codes, shown as checkboxes."""

    widget = ListWidget(prefix_label=False)
    option_widget = CheckboxInput()


VERSION_VALIDATORS = [InputRequired(), NumberRange(min=0, max=2**31)]


# --- lists and search ---------------------------------------------------------------------------


class ListForm(FlaskForm):
    """Filters, sort and page of a track list, from the query string (GET, no CSRF)."""

    class Meta:
        csrf = False

    status = SelectField(_l("Status"), choices=choices(STATUS_LABELS, blank=_l("Any status")),
                         validators=[Optional()])
    sort = SelectField(_l("Sort by"), choices=choices(SORT_LABELS), default="opened_at",
                       validators=[Optional()])
    direction = SelectField(_l("Order"), default="desc", validators=[Optional()], choices=[
        SelectChoice("desc", _l("Descending")), SelectChoice("asc", _l("Ascending"))])
    page = IntegerField(_l("Page"), default=1,
                        validators=[Optional(), NumberRange(min=1, max=MAX_PAGE_NUMBER)])


class CodeSearchForm(FlaskForm):
    """Search by track code: a code is not personal data, so GET is fine."""

    class Meta:
        csrf = False

    code = StringField(_l("Track code"), validators=[DataRequired(), Length(max=40)])


class IdentifierSearchForm(FlaskForm):
    """Search by personnummer, phone or e-mail: POST only, nothing personal in a URL (B5)."""

    personnummer = StringField(_l("Personnummer or samordningsnummer"),
                               validators=[Optional(), Length(max=40)],
                               render_kw={"autocomplete": "off"})
    phone = StringField(_l("Phone"), validators=[Optional(), Length(max=40)],
                        render_kw={"autocomplete": "off"})
    email = StringField(_l("E-mail"), validators=[Optional(), Length(max=200)],
                        render_kw={"autocomplete": "off"})

    def validate(self, extra_validators: Any = None) -> bool:
        if not super().validate(extra_validators):
            return False
        if not any((f.data or "").strip() for f in (self.personnummer, self.phone, self.email)):
            self.form_errors.append(_l("Give a personnummer, a phone number or an e-mail."))
            return False
        return True


class IntakeForm(FlaskForm):
    """What every intake asks: consent, the person's name and identifiers, who referred."""

    consent_given = BooleanField(
        _l("The person consents to the processing of their personal data"),
        validators=[DataRequired(message=_l("A consent to processing is needed first."))])
    consent_form = SelectField(_l("Form of consent"), choices=choices(CONSENT_FORM_LABELS),
                               validators=[InputRequired()])
    name = StringField(_l("Name"), validators=[DataRequired(), Length(max=200)],
                       render_kw={"autocomplete": "off"})
    personnummer = StringField(_l("Personnummer or samordningsnummer (optional)"),
                               validators=[Optional(), Length(max=40)],
                               render_kw={"autocomplete": "off"})
    phone = StringField(_l("Phone (optional)"), validators=[Optional(), Length(max=40)],
                        render_kw={"autocomplete": "off"})
    email = StringField(_l("E-mail (optional)"), validators=[Optional(), Length(max=200)],
                        render_kw={"autocomplete": "off"})
    referral_source = SelectField(_l("Referred by"), choices=choices(REFERRAL_LABELS),
                                  validators=[InputRequired()])
    create_anyway = BooleanField(_l("Create a new track anyway"))


# --- the track page -----------------------------------------------------------------------------


class ContentForm(FlaskForm):
    purpose = SelectField(_l("Purpose"), choices=choices(PURPOSE_LABELS),
                          validators=[InputRequired()])
    reveal_contact = HiddenField(default="")


class JournalForm(FlaskForm):
    occurred_at = DateTimeLocalField(_l("When (local time)"), validators=[InputRequired()],
                                     format="%Y-%m-%dT%H:%M")
    contact_type = SelectField(_l("Contact type"), choices=choices(CONTACT_TYPE_LABELS),
                               validators=[InputRequired()])
    contact_achieved = BooleanField(_l("Contact achieved"))
    duration_minutes = IntegerField(_l("Duration in minutes (optional)"),
                                    validators=[Optional(), NumberRange(min=0, max=24 * 60)])
    participants = StringField(_l("Participants (optional)"),
                               validators=[Optional(), Length(max=500)])
    note = TextAreaField(_l("Note"), validators=[DataRequired(), Length(max=20_000)])
    sensitivity = SelectField(_l("Who may read the entry"),
                              choices=choices(TEAM_SENSITIVITY_LABELS),
                              validators=[InputRequired()])


class CorrectionForm(FlaskForm):
    entry_id = HiddenField(validators=[DataRequired()])
    note = TextAreaField(_l("Corrected note"), validators=[DataRequired(), Length(max=20_000)])

    def validate_entry_id(self, field: HiddenField) -> None:
        check_uuid(field, _l("Choose an entry to correct."))


class StatusForm(FlaskForm):
    """A new status; each kind adds its own closing text."""

    to_status = SelectField(_l("New status"), choices=choices(STATUS_LABELS),
                            validators=[InputRequired()])
    # No Optional(): it would stop the chain before validate_closure_reason when empty.
    closure_reason = SelectField(_l("Closure reason (when closing)"),
                                 choices=choices(CLOSURE_LABELS, blank=_l("No closure")))
    version = IntegerField(widget=HiddenInput(), validators=VERSION_VALIDATORS)

    def validate_closure_reason(self, field: SelectField) -> None:
        if self.to_status.data == "closed" and not field.data:
            raise FieldError(_l("Choose a closure reason to close the track."))


class BreakGlassForm(FlaskForm):
    reason = TextAreaField(
        _l("Reason"), validators=[DataRequired(), Length(min=10, max=500)],
        description=_l("Say in a sentence why you need access. The board reviews every "
                       "emergency access."))


# --- plan, consents, team -----------------------------------------------------------------------


class GoalForm(FlaskForm):
    life_domain = SelectField(_l("Life domain"), choices=choices(LIFE_DOMAIN_LABELS),
                              validators=[InputRequired()])
    goal = TextAreaField(_l("Goal"), validators=[DataRequired(), Length(max=20_000)])
    target_on = DateField(_l("Target date (optional)"), validators=[Optional()])
    status = SelectField(_l("Goal status"), choices=choices(GOAL_STATUS_LABELS),
                         default="not_started", validators=[InputRequired()])


class GoalStatusForm(FlaskForm):
    goal_id = HiddenField(validators=[DataRequired()])
    status = SelectField(_l("Goal status"), choices=choices(GOAL_STATUS_LABELS),
                         validators=[InputRequired()])
    version = IntegerField(widget=HiddenInput(), validators=VERSION_VALIDATORS)

    def validate_goal_id(self, field: HiddenField) -> None:
        check_uuid(field, _l("Choose a goal."))


class ConsentForm(FlaskForm):
    consent_type = SelectField(_l("Type of consent"), choices=choices(CONSENT_TYPE_LABELS),
                               validators=[InputRequired()])
    recipient = StringField(_l("Recipient (optional)"), validators=[Optional(), Length(max=500)])
    scope = CheckboxesField(_l("Data categories covered"), choices=choices(CATEGORY_LABELS),
                            validators=[Optional()])
    form = SelectField(_l("Form of consent"), choices=choices(CONSENT_FORM_LABELS),
                       validators=[InputRequired()])
    valid_from = DateField(_l("Valid from"), validators=[InputRequired()])
    valid_to = DateField(_l("Valid to (optional)"), validators=[Optional()])


class RevokeConsentForm(FlaskForm):
    consent_id = HiddenField(validators=[DataRequired()])

    def validate_consent_id(self, field: HiddenField) -> None:
        check_uuid(field, _l("Choose a consent."))


class StaffForm(FlaskForm):
    """A staff member for the team or as owner; the view fills the choices."""

    user_id = SelectField(_l("Staff member"), validators=[InputRequired()])

    def validate_user_id(self, field: SelectField) -> None:
        check_uuid(field, _l("Choose a staff member."))


class RemoveMemberForm(FlaskForm):
    user_id = HiddenField(validators=[DataRequired()])

    def validate_user_id(self, field: HiddenField) -> None:
        check_uuid(field, _l("Choose a staff member."))


class OwnerForm(FlaskForm):
    """The new owner of a track; the view fills the choices."""

    owner_id = SelectField(_l("New owner"), validators=[InputRequired()])

    def validate_owner_id(self, field: SelectField) -> None:
        check_uuid(field, _l("Choose a staff member."))
