"""Forms of the defector track pages: list filters, search, intake, content, journal, risk,
status, break-glass, plan goals, consents, agency contacts, protective measures and the team.
They parse and validate only; the views pass plain values on (and fill the choices that come
from the database: forms never query it)."""

from __future__ import annotations

import uuid
from typing import Any

from flask_babel import lazy_gettext as _l
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

from avhopp.cases.models import (
    ARENAS,
    ENVIRONMENTS,
    GENDERS,
    INVOLVEMENTS,
    MEASURE_KINDS,
    MEASURE_STATUSES,
    RISK_DIMENSIONS,
)
from avhopp.casework.models import (
    AGENCIES,
    CLOSURE_REASONS,
    CONSENT_FORMS,
    CONSENT_TYPES,
    CONTACT_TYPES,
    DATA_CATEGORIES,
    GOAL_STATUSES,
    LEGAL_BASES,
    LIFE_DOMAINS,
    REFERRAL_SOURCES,
    RISK_LEVELS,
    SENSITIVITIES,
    STATUSES,
)
from avhopp.casework.services import PURPOSES

STATUS_LABELS = {
    "inquiry": _l("Inquiry"), "intake": _l("Intake"), "active": _l("Active"),
    "dormant": _l("Dormant"), "closed": _l("Closed"), "after_care": _l("After-care"),
}
RISK_LABELS = {"low": _l("Low"), "medium": _l("Medium"), "high": _l("High"),
               "acute": _l("Acute")}
REFERRAL_LABELS = {
    "self": _l("Self"), "relative": _l("Relative"), "social_services": _l("Social services"),
    "police": _l("Police"), "security_service": _l("Security Service"), "school": _l("School"),
    "prison_probation": _l("Prison and Probation Service"),
    "cve": _l("Centre for Preventing Violent Extremism"),
    "relatives_helpline": _l("Relatives' helpline"),
    "other_organisation": _l("Other organisation"),
}
ENVIRONMENT_LABELS = {
    "violent_islamism": _l("Violent Islamism"), "white_power": _l("White power / right-wing"),
    "autonomous_left": _l("Autonomous left-wing"), "other_mixed": _l("Other or mixed"),
    "not_established": _l("Not established"),
}
INVOLVEMENT_LABELS = {"sympathiser": _l("Sympathiser"), "active": _l("Active"),
                      "leading_recruiter": _l("Leading or recruiter")}
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
ARENA_LABELS = {"physical_group": _l("Physical group"), "online": _l("Online"),
                "prison": _l("Prison"),
                "conflict_zone_returnee": _l("Returnee from a conflict zone")}
GENDER_LABELS = {"woman": _l("Woman"), "man": _l("Man"), "non_binary": _l("Non-binary"),
                 "not_stated": _l("Not stated")}
YES_NO_LABELS = {"yes": _l("Yes"), "no": _l("No"), "unknown": _l("Not known")}
PURPOSE_LABELS = {
    "casework": _l("Casework"), "planning": _l("Planning"), "follow_up": _l("Follow-up"),
    "supervision": _l("Supervision"), "emergency": _l("Emergency"),
    "data_subject_request": _l("Request from the data subject"),
    "quality_review": _l("Quality review"),
}
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
PAGE_SIZE = 25
MAX_PAGE_NUMBER = 100_000


def choices(labels: dict[str, Any], *, blank: Any = None) -> list[SelectChoice]:
    found = [SelectChoice(value, label) for value, label in labels.items()]
    return [SelectChoice("", blank), *found] if blank is not None else found


def _check_labels() -> None:
    # The label tables must cover the vocabularies the services accept (and nothing else).
    for labels, codes in ((STATUS_LABELS, STATUSES), (RISK_LABELS, RISK_LEVELS),
                          (REFERRAL_LABELS, REFERRAL_SOURCES), (CLOSURE_LABELS, CLOSURE_REASONS),
                          (CONTACT_TYPE_LABELS, CONTACT_TYPES), (PURPOSE_LABELS, PURPOSES),
                          (ENVIRONMENT_LABELS, ENVIRONMENTS), (INVOLVEMENT_LABELS, INVOLVEMENTS),
                          (DIMENSION_LABELS, RISK_DIMENSIONS), (LIFE_DOMAIN_LABELS, LIFE_DOMAINS),
                          (GOAL_STATUS_LABELS, GOAL_STATUSES), (CONSENT_TYPE_LABELS, CONSENT_TYPES),
                          (CONSENT_FORM_LABELS, CONSENT_FORMS), (CATEGORY_LABELS, DATA_CATEGORIES),
                          (AGENCY_LABELS, AGENCIES), (LEGAL_BASIS_LABELS, LEGAL_BASES),
                          (MEASURE_KIND_LABELS, MEASURE_KINDS),
                          (SENSITIVITY_LABELS, SENSITIVITIES), (ARENA_LABELS, ARENAS),
                          (GENDER_LABELS, GENDERS),
                          (MEASURE_STATUS_LABELS, MEASURE_STATUSES)):
        if set(labels) != set(codes):
            raise RuntimeError("a label table does not match its vocabulary")


_check_labels()


class CheckboxesField(SelectMultipleField):
    """A choice of several codes, shown as checkboxes."""

    widget = ListWidget(prefix_label=False)
    option_widget = CheckboxInput()


class ListForm(FlaskForm):
    """Filters, sort and page of a track list, from the query string (GET, no CSRF)."""

    class Meta:
        csrf = False

    status = SelectField(_l("Status"), choices=choices(STATUS_LABELS, blank=_l("Any status")),
                         validators=[Optional()])
    risk_level = SelectField(_l("Risk level"),
                             choices=choices(RISK_LABELS, blank=_l("Any risk level")),
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
    consent_given = BooleanField(
        _l("The person consents to the processing of their personal data"),
        validators=[DataRequired(message=_l("A consent to processing is needed first."))])
    consent_form = SelectField(_l("Form of consent"), choices=[
        SelectChoice("written", _l("Written")), SelectChoice("oral", _l("Oral"))],
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
    create_anyway = BooleanField(_l("Create a new track anyway"))

    def validate(self, extra_validators: Any = None) -> bool:
        if not super().validate(extra_validators):
            return False
        if (self.environment.data or self.involvement.data) and not self.special_consent_given.data:
            self.special_consent_given.errors = [_l(
                "Environment and involvement are special-category data: record the person's "
                "consent to them first, or leave them empty.")]
            return False
        return True


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
    sensitivity = SelectField(_l("Who may read the entry"), choices=choices(SENSITIVITY_LABELS),
                              validators=[InputRequired()])
    # The view offers the track's team (not the whole staff); the service checks the team again.
    # No Optional(): it would stop the chain before validate_named_user_ids when empty.
    named_user_ids = CheckboxesField(_l("Team members who may read the entry"), choices=[],
                                     validate_choice=False)

    def validate_named_user_ids(self, field: Any) -> None:
        chosen = list(field.data or [])
        for value in chosen:
            _check_uuid_value(value, _l("Choose team members from the list."))
        if self.sensitivity.data == "named" and not chosen:
            raise FieldError(_l("Name the team members who may read the entry."))
        if self.sensitivity.data != "named" and chosen:
            raise FieldError(_l("Team members are named only for entries shown to named "
                                "users."))


class CorrectionForm(FlaskForm):
    entry_id = HiddenField(validators=[DataRequired()])
    note = TextAreaField(_l("Corrected note"), validators=[DataRequired(), Length(max=20_000)])

    def validate_entry_id(self, field: HiddenField) -> None:
        try:
            uuid.UUID(str(field.data))
        except ValueError:
            raise FieldError(_l("Choose an entry to correct.")) from None


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


class StatusForm(FlaskForm):
    to_status = SelectField(_l("New status"), choices=choices(STATUS_LABELS),
                            validators=[InputRequired()])
    # No Optional(): it would stop the chain before validate_closure_reason when empty.
    closure_reason = SelectField(_l("Closure reason (when closing)"),
                                 choices=choices(CLOSURE_LABELS, blank=_l("No closure")))
    closing_assessment = TextAreaField(_l("Closing assessment (optional)"),
                                       validators=[Optional(), Length(max=20_000)])
    version = IntegerField(widget=HiddenInput(),
                           validators=[InputRequired(), NumberRange(min=0, max=2**31)])

    def validate_closure_reason(self, field: SelectField) -> None:
        if self.to_status.data == "closed" and not field.data:
            raise FieldError(_l("Choose a closure reason to close the track."))


class BreakGlassForm(FlaskForm):
    reason = TextAreaField(
        _l("Reason"), validators=[DataRequired(), Length(min=10, max=500)],
        description=_l("Say in a sentence why you need access. The board reviews every "
                       "emergency access."))


# --- sections shown with the content: plan, consents, agency contacts, protection, team ---------


def _check_uuid(field: Any, message: Any) -> None:
    _check_uuid_value(field.data, message)


def _check_uuid_value(value: Any, message: Any) -> None:
    try:
        uuid.UUID(str(value))
    except ValueError:
        raise FieldError(message) from None


VERSION_VALIDATORS = [InputRequired(), NumberRange(min=0, max=2**31)]


class GoalForm(FlaskForm):
    life_domain = SelectField(_l("Life domain"), choices=choices(LIFE_DOMAIN_LABELS),
                              validators=[InputRequired()])
    goal = TextAreaField(_l("Goal"), validators=[DataRequired(), Length(max=20_000)])
    sub_goal = TextAreaField(_l("Sub-goal (optional)"),
                             validators=[Optional(), Length(max=20_000)])
    intervention = TextAreaField(_l("Intervention (optional)"),
                                 validators=[Optional(), Length(max=20_000)])
    provider = StringField(_l("Provider (optional)"), validators=[Optional(), Length(max=500)])
    start_on = DateField(_l("Start date (optional)"), validators=[Optional()])
    target_on = DateField(_l("Target date (optional)"), validators=[Optional()])
    agreed_on = DateField(_l("Agreed with the client on (optional)"), validators=[Optional()])
    status = SelectField(_l("Goal status"), choices=choices(GOAL_STATUS_LABELS),
                         default="not_started", validators=[InputRequired()])


class GoalEditForm(GoalForm):
    """Every field of an existing goal, saved at the version the user saw."""

    goal_id = HiddenField(validators=[DataRequired()])
    version = IntegerField(widget=HiddenInput(), validators=VERSION_VALIDATORS)

    def validate_goal_id(self, field: HiddenField) -> None:
        _check_uuid(field, _l("Choose a goal."))


class GoalStatusForm(FlaskForm):
    goal_id = HiddenField(validators=[DataRequired()])
    status = SelectField(_l("Goal status"), choices=choices(GOAL_STATUS_LABELS),
                         validators=[InputRequired()])
    version = IntegerField(widget=HiddenInput(), validators=VERSION_VALIDATORS)

    def validate_goal_id(self, field: HiddenField) -> None:
        _check_uuid(field, _l("Choose a goal."))


class ConsentForm(FlaskForm):
    consent_type = SelectField(_l("Type of consent"), choices=choices(CONSENT_TYPE_LABELS),
                               validators=[InputRequired()])
    recipient_agency = SelectField(
        _l("Recipient authority (when sharing)"),
        choices=choices(AGENCY_LABELS, blank=_l("No authority")), validators=[Optional()])
    recipient = StringField(_l("Recipient (optional)"), validators=[Optional(), Length(max=500)])
    scope = CheckboxesField(_l("Data categories covered"), choices=choices(CATEGORY_LABELS),
                            validators=[Optional()])
    form = SelectField(_l("Form of consent"), choices=choices(CONSENT_FORM_LABELS),
                       validators=[InputRequired()])
    valid_from = DateField(_l("Valid from"), validators=[InputRequired()])
    valid_to = DateField(_l("Valid to (optional)"), validators=[Optional()])
    purpose = TextAreaField(_l("Purpose (optional)"), validators=[Optional(), Length(max=20_000)])
    withheld = TextAreaField(
        _l("What must be withheld, and from whom (optional)"),
        validators=[Optional(), Length(max=20_000)],
        description=_l("For example what a named relative must not be told."))


class RevokeConsentForm(FlaskForm):
    consent_id = HiddenField(validators=[DataRequired()])

    def validate_consent_id(self, field: HiddenField) -> None:
        _check_uuid(field, _l("Choose a consent."))


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
            _check_uuid(field, _l("Choose a consent."))


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
        _check_uuid(field, _l("Choose a measure."))


class StaffForm(FlaskForm):
    """A staff member for the team or as owner; the view fills the choices."""

    user_id = SelectField(_l("Staff member"), validators=[InputRequired()])

    def validate_user_id(self, field: SelectField) -> None:
        _check_uuid(field, _l("Choose a staff member."))


class RemoveMemberForm(FlaskForm):
    user_id = HiddenField(validators=[DataRequired()])

    def validate_user_id(self, field: HiddenField) -> None:
        _check_uuid(field, _l("Choose a staff member."))


class OwnerForm(FlaskForm):
    """The new owner of a track; the view fills the choices."""

    owner_id = SelectField(_l("New owner"), validators=[InputRequired()])

    def validate_owner_id(self, field: SelectField) -> None:
        _check_uuid(field, _l("Choose a staff member."))


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
