"""Forms of the defector track pages: the defector's own (risk, agency contacts, protective
measures, the case's parts) and the defector's fields on the shared ones (avhopp.casework.forms).
They parse and validate only; the views pass plain values on (and fill the choices that come
from the database: forms never query it)."""

from __future__ import annotations

from typing import Any

from flask_wtf import FlaskForm
from wtforms import (
    BooleanField,
    DateField,
    DateTimeLocalField,
    HiddenField,
    IntegerField,
    SelectField,
    StringField,
    TextAreaField,
)
from wtforms.validators import DataRequired, InputRequired, Length, NumberRange, Optional
from wtforms.validators import ValidationError as FieldError
from wtforms.widgets import HiddenInput

from avhopp.cases.models import (
    ARENAS,
    ENVIRONMENTS,
    GENDERS,
    INVOLVEMENTS,
    MEASURE_KINDS,
    MEASURE_STATUSES,
    RISK_DIMENSIONS,
)
from avhopp.casework import forms as shared
from avhopp.casework.forms import (
    CATEGORY_LABELS,
    SENSITIVITY_LABELS,
    VERSION_VALIDATORS,
    CheckboxesField,
    check_labels,
    check_uuid,
    check_uuid_value,
    choices,
)
from avhopp.casework.models import AGENCIES, LEGAL_BASES, RISK_LEVELS
from avhopp.translation import lazy_gettext as _l

RISK_LABELS = {"low": _l("Low"), "medium": _l("Medium"), "high": _l("High"),
               "acute": _l("Acute")}
ENVIRONMENT_LABELS = {
    "violent_islamism": _l("Violent Islamism"), "white_power": _l("White power / right-wing"),
    "autonomous_left": _l("Autonomous left-wing"), "other_mixed": _l("Other or mixed"),
    "not_established": _l("Not established"),
}
INVOLVEMENT_LABELS = {"sympathiser": _l("Sympathiser"), "active": _l("Active"),
                      "leading_recruiter": _l("Leading or recruiter")}
ARENA_LABELS = {"physical_group": _l("Physical group"), "online": _l("Online"),
                "prison": _l("Prison"),
                "conflict_zone_returnee": _l("Returnee from a conflict zone")}
GENDER_LABELS = {"woman": _l("Woman"), "man": _l("Man"), "non_binary": _l("Non-binary"),
                 "not_stated": _l("Not stated")}
YES_NO_LABELS = {"yes": _l("Yes"), "no": _l("No"), "unknown": _l("Not known")}
DIMENSION_LABELS = {
    "threat_from_environment": _l("Threat from the former environment"),
    "violence_to_others": _l("Risk of violence to others"),
    "re_engagement": _l("Risk of re-engagement"),
    "self_harm": _l("Risk of self-harm"),
    "threat_to_relatives": _l("Threat to relatives"),
}
SORT_LABELS = {
    "opened_at": _l("Opened"), "code": _l("Code"), "status": _l("Status"),
    "risk_level": _l("Risk level"), "next_contact_at": _l("Next contact"),
    "owner": _l("Owner"),
}
AGENCY_LABELS = {
    "police": _l("Police"), "social_services": _l("Social services"), "school": _l("School"),
    "security_service": _l("Security Service"),
    "cve": _l("Centre for Preventing Violent Extremism"),
    "prison_probation": _l("Prison and Probation Service"),
    "housing_company": _l("Housing company"), "employment_service": _l("Employment service"),
    "healthcare": _l("Healthcare"), "other": _l("Other"),
}
LEGAL_BASIS_LABELS = {
    "consent": _l("Consent"), "legal_obligation": _l("Legal obligation"),
    "vital_interest": _l("Vital interest"),
}
MEASURE_KIND_LABELS = {
    "protected_data": _l("Protected personal data"),
    "sheltered_housing": _l("Sheltered housing"), "new_phone_number": _l("New phone number"),
    "digital_exit": _l("Digital exit"), "tattoo_removal": _l("Tattoo removal"),
    "other": _l("Other"),
}
MEASURE_STATUS_LABELS = {
    "planned": _l("Planned"), "applied": _l("Applied for"), "granted": _l("Granted"),
    "done": _l("Done"), "refused": _l("Refused"), "stopped": _l("Stopped"),
}


check_labels(((RISK_LABELS, RISK_LEVELS), (ENVIRONMENT_LABELS, ENVIRONMENTS),
              (INVOLVEMENT_LABELS, INVOLVEMENTS), (DIMENSION_LABELS, RISK_DIMENSIONS),
              (AGENCY_LABELS, AGENCIES), (LEGAL_BASIS_LABELS, LEGAL_BASES),
              (MEASURE_KIND_LABELS, MEASURE_KINDS), (ARENA_LABELS, ARENAS),
              (GENDER_LABELS, GENDERS), (MEASURE_STATUS_LABELS, MEASURE_STATUSES)))


class ListForm(shared.ListForm):
    """The shared list filters, and the risk level."""

    risk_level = SelectField(_l("Risk level"),
                             choices=choices(RISK_LABELS, blank=_l("Any risk level")),
                             validators=[Optional()])
    sort = SelectField(_l("Sort by"), choices=choices(SORT_LABELS), default="opened_at",
                       validators=[Optional()])


class IntakeForm(shared.IntakeForm):
    """The shared intake, and the defector's background (special-category data)."""

    special_consent_given = BooleanField(
        _l("The person consents to the processing of special-category data (environment and "
           "background)"),
        description=_l("Needed to record environment or involvement; leave both empty "
                       "otherwise."))
    environment = SelectField(_l("Environment"),
                              choices=choices(ENVIRONMENT_LABELS, blank=_l("Not recorded")),
                              validators=[Optional()])
    involvement = SelectField(_l("Involvement"),
                              choices=choices(INVOLVEMENT_LABELS, blank=_l("Not recorded")),
                              validators=[Optional()])

    def validate(self, extra_validators: Any = None) -> bool:
        if not super().validate(extra_validators):
            return False
        if (self.environment.data or self.involvement.data) and not self.special_consent_given.data:
            self.special_consent_given.errors = [_l(
                "Environment and involvement are special-category data: record the person's "
                "consent to them first, or leave them empty.")]
            return False
        return True


class JournalForm(shared.JournalForm):
    """The shared journal entry, which on a defector track may be shown to named users only."""

    sensitivity = SelectField(_l("Who may read the entry"), choices=choices(SENSITIVITY_LABELS),
                              validators=[InputRequired()])
    # The view offers the track's team (not the whole staff); the service checks the team again.
    # No Optional(): it would stop the chain before validate_named_user_ids when empty.
    named_user_ids = CheckboxesField(_l("Team members who may read the entry"), choices=[],
                                     validate_choice=False)

    def validate_named_user_ids(self, field: Any) -> None:
        chosen = list(field.data or [])
        for value in chosen:
            check_uuid_value(value, _l("Choose team members from the list."))
        if self.sensitivity.data == "named" and not chosen:
            raise FieldError(_l("Name the team members who may read the entry."))
        if self.sensitivity.data != "named" and chosen:
            raise FieldError(_l("Team members are named only for entries shown to named "
                                "users."))


class RiskForm(FlaskForm):
    assessed_on = DateField(_l("Assessed on"), validators=[InputRequired()])
    threat_from_environment = SelectField(DIMENSION_LABELS["threat_from_environment"],
                                          choices=choices(RISK_LABELS))
    violence_to_others = SelectField(DIMENSION_LABELS["violence_to_others"],
                                     choices=choices(RISK_LABELS))
    re_engagement = SelectField(DIMENSION_LABELS["re_engagement"], choices=choices(RISK_LABELS))
    self_harm = SelectField(DIMENSION_LABELS["self_harm"], choices=choices(RISK_LABELS))
    threat_to_relatives = SelectField(DIMENSION_LABELS["threat_to_relatives"],
                                      choices=choices(RISK_LABELS))
    overall_level = SelectField(
        _l("Overall level"), validators=[Optional()],
        choices=choices(RISK_LABELS, blank=_l("The highest of the levels above")))
    protective_factors = TextAreaField(_l("Protective factors (optional)"),
                                       validators=[Optional(), Length(max=20_000)])
    reassess_by = DateField(_l("Reassess by (optional)"), validators=[Optional()])


class StatusForm(shared.StatusForm):
    closing_assessment = TextAreaField(_l("Closing assessment (optional)"),
                                       validators=[Optional(), Length(max=20_000)])


# --- sections shown with the content: plan, consents, agency contacts, protection ---------------


class GoalForm(shared.GoalForm):
    """The shared goal, and how the defector's plan follows it up."""

    sub_goal = TextAreaField(_l("Sub-goal (optional)"),
                             validators=[Optional(), Length(max=20_000)])
    intervention = TextAreaField(_l("Intervention (optional)"),
                                 validators=[Optional(), Length(max=20_000)])
    provider = StringField(_l("Provider (optional)"), validators=[Optional(), Length(max=500)])
    start_on = DateField(_l("Start date (optional)"), validators=[Optional()])
    agreed_on = DateField(_l("Agreed with the client on (optional)"), validators=[Optional()])


class GoalEditForm(GoalForm):
    """Every field of an existing goal, saved at the version the user saw."""

    goal_id = HiddenField(validators=[DataRequired()])
    version = IntegerField(widget=HiddenInput(), validators=VERSION_VALIDATORS)

    def validate_goal_id(self, field: HiddenField) -> None:
        check_uuid(field, _l("Choose a goal."))


class ConsentForm(shared.ConsentForm):
    """The shared consent, and what sharing with an authority needs."""

    recipient_agency = SelectField(
        _l("Recipient authority (when sharing)"),
        choices=choices(AGENCY_LABELS, blank=_l("No authority")), validators=[Optional()])
    purpose = TextAreaField(_l("Purpose (optional)"), validators=[Optional(), Length(max=20_000)])
    withheld = TextAreaField(
        _l("What must be withheld, and from whom (optional)"),
        validators=[Optional(), Length(max=20_000)],
        description=_l("For example what a named relative must not be told."))


class AgencyContactForm(FlaskForm):
    occurred_at = DateTimeLocalField(_l("When (local time)"), validators=[InputRequired()],
                                     format="%Y-%m-%dT%H:%M")
    agency = SelectField(_l("Authority"), choices=choices(AGENCY_LABELS),
                         validators=[InputRequired()])
    unit = StringField(_l("Unit (optional)"), validators=[Optional(), Length(max=500)])
    categories = CheckboxesField(_l("Data categories shared"), choices=choices(CATEGORY_LABELS),
                                 validators=[InputRequired(
                                     message=_l("Choose the data categories shared."))])
    legal_basis = SelectField(_l("Legal basis"), choices=choices(LEGAL_BASIS_LABELS),
                              validators=[InputRequired()])
    # The view offers the track's consents; the service checks the one chosen.
    consent_id = SelectField(_l("Consent"), validate_choice=False, validators=[Optional()])
    contact_role = StringField(_l("Contact person's role (optional)"),
                               validators=[Optional(), Length(max=500)])
    purpose = TextAreaField(_l("Purpose (optional)"), validators=[Optional(), Length(max=20_000)])
    outcome = TextAreaField(_l("Outcome (optional)"), validators=[Optional(), Length(max=20_000)])

    def validate_consent_id(self, field: SelectField) -> None:
        if field.data:
            check_uuid(field, _l("Choose a consent."))


class MeasureForm(FlaskForm):
    kind = SelectField(_l("Measure"), choices=choices(MEASURE_KIND_LABELS),
                       validators=[InputRequired()])
    status = SelectField(_l("Measure status"), choices=choices(MEASURE_STATUS_LABELS),
                         default="planned", validators=[InputRequired()])
    started_on = DateField(_l("Started on (optional)"), validators=[Optional()])
    ended_on = DateField(_l("Ended on (optional)"), validators=[Optional()])
    note = TextAreaField(_l("Note (optional)"), validators=[Optional(), Length(max=20_000)])


class MeasureStatusForm(FlaskForm):
    measure_id = HiddenField(validators=[DataRequired()])
    status = SelectField(_l("Measure status"), choices=choices(MEASURE_STATUS_LABELS),
                         validators=[InputRequired()])
    version = IntegerField(widget=HiddenInput(), validators=VERSION_VALIDATORS)

    def validate_measure_id(self, field: HiddenField) -> None:
        check_uuid(field, _l("Choose a measure."))


CASE_PARTS = ("person_details", "background", "safe_contact", "safety_plan")


class CaseForm(FlaskForm):
    """One part of the defector case (background, safe contact or safety plan), saved at the
    version the user saw; the view passes only the chosen part's fields to the service."""

    part = HiddenField(validators=[DataRequired()])
    version = IntegerField(widget=HiddenInput(), validators=VERSION_VALIDATORS)
    gender = SelectField(_l("Gender"), choices=choices(GENDER_LABELS, blank=_l("Not recorded")),
                         validators=[Optional()])
    language = StringField(_l("Language (optional)"), validators=[Optional(), Length(max=100)])
    interpreter_needed = SelectField(
        _l("Needs an interpreter?"), choices=choices(YES_NO_LABELS, blank=_l("Not recorded")),
        validators=[Optional()])
    children_in_household = SelectField(
        _l("Children in the household?"),
        choices=choices(YES_NO_LABELS, blank=_l("Not recorded")), validators=[Optional()])
    environment = SelectField(_l("Environment"),
                              choices=choices(ENVIRONMENT_LABELS, blank=_l("Not recorded")),
                              validators=[Optional()])
    involvement = SelectField(_l("Involvement"),
                              choices=choices(INVOLVEMENT_LABELS, blank=_l("Not recorded")),
                              validators=[Optional()])
    years_in_environment = IntegerField(_l("Years in the environment (optional)"),
                                        validators=[Optional(), NumberRange(min=0, max=80)])
    arena = SelectField(_l("Arena"), choices=choices(ARENA_LABELS, blank=_l("Not recorded")),
                        validators=[Optional()])
    reasons_for_leaving = TextAreaField(_l("Reasons for leaving (optional)"),
                                        validators=[Optional(), Length(max=20_000)])
    voluntariness_confirmed_on = DateField(_l("Voluntariness confirmed on (optional)"),
                                           validators=[Optional()])
    safe_contact_channel = StringField(_l("Safe contact channel (optional)"),
                                       validators=[Optional(), Length(max=500)])
    safe_contact_times = StringField(_l("Times when contact is safe (optional)"),
                                     validators=[Optional(), Length(max=500)])
    safe_contact_code_word = StringField(_l("Code word (optional)"),
                                         validators=[Optional(), Length(max=500)],
                                         render_kw={"autocomplete": "off"})
    safe_contact_may_leave_messages = SelectField(
        _l("May we leave messages?"), choices=choices(YES_NO_LABELS, blank=_l("Not recorded")),
        validators=[Optional()])
    environment_knows_of_contact = SelectField(
        _l("Does the environment know of the contact?"),
        choices=choices(YES_NO_LABELS, blank=_l("Not recorded")), validators=[Optional()])
    safety_plan = TextAreaField(_l("Safety plan"), validators=[Optional(), Length(max=20_000)])

    def validate_part(self, field: HiddenField) -> None:
        if field.data not in CASE_PARTS:
            raise FieldError(_l("The form could not be read. Reload the page and try again."))
