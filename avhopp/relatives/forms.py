"""Forms of the relative track pages: the relative's own (intake, case, the link to a defector
track) and the relative's fields on the shared ones (avhopp.casework.forms, since `cases` and
`relatives` never import each other). They parse and validate only; the views pass plain values
on and fill the choices that come from the database."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import (
    BooleanField,
    DateField,
    HiddenField,
    IntegerField,
    SelectField,
    StringField,
    TextAreaField,
)
from wtforms.validators import DataRequired, InputRequired, Length, NumberRange, Optional
from wtforms.widgets import HiddenInput

from avhopp.casework import forms as shared
from avhopp.casework.forms import (
    CONSENT_FORM_LABELS,
    VERSION_VALIDATORS,
    CheckboxesField,
    check_labels,
    check_uuid,
    choices,
)
from avhopp.casework.models import PROTECTED_DATA_LEVELS
from avhopp.relatives.models import (
    EXIT_ROLES,
    NEEDS,
    OBSERVED_SIGNS,
    PERCEIVED_ENVIRONMENTS,
    RELATIONS,
    YES_NO,
)
from avhopp.translation import lazy_gettext as _l

RELATION_LABELS = {
    "parent": _l("Parent"), "sibling": _l("Sibling"), "partner": _l("Partner"),
    "child": _l("Child"), "other_relative": _l("Other relative"), "friend": _l("Friend"),
    "other": _l("Other"),
}
PERCEIVED_ENVIRONMENT_LABELS = {
    "violent_islamism": _l("Violent Islamism"), "white_power": _l("White power / right-wing"),
    "autonomous_left": _l("Autonomous left-wing"), "other_mixed": _l("Other or mixed"),
    "unknown": _l("Unknown"),
}
SIGN_LABELS = {
    "isolation": _l("Isolation"), "new_rhetoric": _l("New rhetoric"), "symbols": _l("Symbols"),
    "violence": _l("Violence"), "travel_plans": _l("Plans to travel"),
    "online_activity": _l("Online activity"),
}
NEED_LABELS = {
    "information": _l("Information"), "counselling": _l("Counselling"),
    "relating_communicating": _l("How to relate and communicate"),
    "safety_plan": _l("Safety plan"), "network_meeting": _l("Network meeting"),
    "support_group": _l("Support group"), "authority_contact": _l("Contact with an authority"),
    "practical_help": _l("Practical help"),
}
EXIT_ROLE_LABELS = {
    "none": _l("None"), "supportive_contact": _l("Supportive contact"),
    "housing_help": _l("Housing or help when leaving"),
    "contact_bridge": _l("Bridge for contact"),
}
PROTECTED_LABELS = {
    "none": _l("None"), "confidentiality_mark": _l("Confidentiality mark"),
    "protected_registration": _l("Protected registration"),
    "assumed_identity": _l("Assumed identity"),
}
YES_NO_LABELS = {"yes": _l("Yes"), "no": _l("No"), "unknown": _l("Unknown")}

check_labels(((RELATION_LABELS, RELATIONS), (PERCEIVED_ENVIRONMENT_LABELS, PERCEIVED_ENVIRONMENTS),
              (SIGN_LABELS, OBSERVED_SIGNS), (NEED_LABELS, NEEDS), (EXIT_ROLE_LABELS, EXIT_ROLES),
              (YES_NO_LABELS, YES_NO), (PROTECTED_LABELS, PROTECTED_DATA_LEVELS)))


def _birth_year() -> IntegerField:
    return IntegerField(_l("Birth year of the person of concern (optional)"),
                        validators=[Optional(), NumberRange(min=1900, max=2100)])


class IntakeForm(shared.IntakeForm):
    """The shared intake, and the relative's contact and the person of concern."""

    safe_contact_method = StringField(_l("Safe way to contact the relative (optional)"),
                                      validators=[Optional(), Length(max=500)])
    concern_knows_of_contact = SelectField(
        _l("Does the person of concern know of this contact?"),
        choices=choices(YES_NO_LABELS, blank=_l("Not recorded")), validators=[Optional()])
    protected_data_level = SelectField(_l("Protected personal data"),
                                       choices=choices(PROTECTED_LABELS), default="none",
                                       validators=[InputRequired()])
    relation = SelectField(_l("Relation to the person of concern"),
                           choices=choices(RELATION_LABELS), validators=[InputRequired()])
    concern_birth_year = _birth_year()
    concern_environment = SelectField(
        _l("Environment as the relative perceives it"),
        choices=choices(PERCEIVED_ENVIRONMENT_LABELS, blank=_l("Not recorded")),
        validators=[Optional()])


class CaseForm(FlaskForm):
    """The relative's own sections: relation, contact, concern, situation, needs and role."""

    version = IntegerField(widget=HiddenInput(), validators=VERSION_VALIDATORS)
    relation = SelectField(_l("Relation to the person of concern"),
                           choices=choices(RELATION_LABELS), validators=[InputRequired()])
    safe_contact_method = StringField(_l("Safe way to contact the relative (optional)"),
                                      validators=[Optional(), Length(max=500)])
    concern_knows_of_contact = SelectField(
        _l("Does the person of concern know of this contact?"),
        choices=choices(YES_NO_LABELS, blank=_l("Not recorded")), validators=[Optional()])
    concern_birth_year = _birth_year()
    concern_environment = SelectField(
        _l("Environment as the relative perceives it"),
        choices=choices(PERCEIVED_ENVIRONMENT_LABELS, blank=_l("Not recorded")),
        validators=[Optional()])
    observed_signs = CheckboxesField(_l("Observed signs"), choices=choices(SIGN_LABELS),
                                     validators=[Optional()])
    observed_text = TextAreaField(_l("What the relative has observed (optional)"),
                                  validators=[Optional(), Length(max=20_000)])
    children_in_household = SelectField(
        _l("Children in the household"),
        choices=choices(YES_NO_LABELS, blank=_l("Not recorded")), validators=[Optional()])
    concern_report_on = DateField(_l("Report of concern to social services made on (optional)"),
                                  validators=[Optional()])
    threats_against_relative = SelectField(
        _l("Threats or violence against the relative"),
        choices=choices(YES_NO_LABELS, blank=_l("Not recorded")), validators=[Optional()])
    threats_text = TextAreaField(_l("About threats or violence (optional)"),
                                 validators=[Optional(), Length(max=20_000)])
    wellbeing = IntegerField(_l("Own wellbeing, 1 (very poor) to 10 (very good) (optional)"),
                             validators=[Optional(), NumberRange(min=1, max=10)])
    wellbeing_text = TextAreaField(_l("About the relative's wellbeing (optional)"),
                                   validators=[Optional(), Length(max=20_000)])
    needs = CheckboxesField(_l("Needs"), choices=choices(NEED_LABELS), validators=[Optional()])
    exit_role = SelectField(_l("Role in the exit"),
                            choices=choices(EXIT_ROLE_LABELS, blank=_l("Not recorded")),
                            validators=[Optional()])
    agreements = TextAreaField(_l("Agreements and boundaries (optional)"),
                               validators=[Optional(), Length(max=20_000)])


class LinkForm(FlaskForm):
    """Link to a defector track: its code and the relative's consent, recorded with the link."""

    defector_code = StringField(_l("Code of the defector track"),
                                validators=[DataRequired(), Length(max=40)])
    consent_given = BooleanField(
        _l("The relative consents to their track being linked to this defector track"),
        validators=[DataRequired(message=_l("The link needs the relative's consent."))])
    consent_form = SelectField(_l("Form of consent"), choices=choices(CONSENT_FORM_LABELS),
                               validators=[InputRequired()])
    valid_from = DateField(_l("Valid from"), validators=[InputRequired()])
    valid_to = DateField(_l("Valid to (optional)"), validators=[Optional()])


class UnlinkForm(FlaskForm):
    link_id = HiddenField(validators=[DataRequired()])

    def validate_link_id(self, field: HiddenField) -> None:
        check_uuid(field, _l("Choose a link."))


class StatusForm(shared.StatusForm):
    closing_note = TextAreaField(_l("Closing note (optional)"),
                                 validators=[Optional(), Length(max=20_000)])
