"""Defector track pages: lists, search, intake, the track page with content shown on request,
journal, risk assessment, status and break-glass. Views parse a form, call a service with the
current user as actor, commit and redirect; every decision about access is the services'. The
handlers both track kinds share are avhopp.casework.views'; the routes stay here."""

from __future__ import annotations

import uuid
from typing import Any

from flask import Blueprint, flash, render_template, request
from sqlalchemy.orm import Session

from avhopp.cases import services as cases
from avhopp.cases.forms import (
    AGENCY_LABELS,
    ARENA_LABELS,
    CASE_PARTS,
    DIMENSION_LABELS,
    ENVIRONMENT_LABELS,
    GENDER_LABELS,
    INVOLVEMENT_LABELS,
    LEGAL_BASIS_LABELS,
    MEASURE_KIND_LABELS,
    MEASURE_STATUS_LABELS,
    RISK_LABELS,
    YES_NO_LABELS,
    AgencyContactForm,
    CaseForm,
    ConsentForm,
    GoalEditForm,
    GoalForm,
    IntakeForm,
    JournalForm,
    ListForm,
    MeasureForm,
    MeasureStatusForm,
    RiskForm,
    StatusForm,
)
from avhopp.cases.models import RISK_DIMENSIONS
from avhopp.cases.services import BACKGROUND_FIELDS, PERSON_DETAIL_FIELDS, SAFE_CONTACT_FIELDS
from avhopp.casework import queries, staff
from avhopp.casework import services as casework
from avhopp.casework.forms import (
    CATEGORY_LABELS,
    CLOSURE_LABELS,
    CONSENT_FORM_LABELS,
    CONSENT_TYPE_LABELS,
    CONTACT_TYPE_LABELS,
    GOAL_STATUS_LABELS,
    LIFE_DOMAIN_LABELS,
    PURPOSE_LABELS,
    REFERRAL_LABELS,
    SENSITIVITY_LABELS,
    STATUS_LABELS,
    ContentForm,
    CorrectionForm,
    GoalStatusForm,
    RemoveMemberForm,
    RevokeConsentForm,
)
from avhopp.casework.views import (
    TrackPages,
    actor,
    goal_input,
    lazy_forms,
    local_zone,
    page_reads,
    read_page,
    run,
    settings,
)
from avhopp.followups import queries as followup_queries
from avhopp.permissions import requires
from avhopp.security import now
from avhopp.translation import gettext as _

bp = Blueprint("cases", __name__, template_folder="templates", url_prefix="/tracks")

LABELS = {
    "status": STATUS_LABELS, "risk": RISK_LABELS, "referral": REFERRAL_LABELS,
    "closure": CLOSURE_LABELS, "contact_type": CONTACT_TYPE_LABELS,
    "sensitivity": SENSITIVITY_LABELS, "purpose": PURPOSE_LABELS,
    "dimension": DIMENSION_LABELS, "environment": ENVIRONMENT_LABELS,
    "involvement": INVOLVEMENT_LABELS, "life_domain": LIFE_DOMAIN_LABELS,
    "goal_status": GOAL_STATUS_LABELS, "consent_type": CONSENT_TYPE_LABELS,
    "consent_form": CONSENT_FORM_LABELS, "category": CATEGORY_LABELS, "agency": AGENCY_LABELS,
    "legal_basis": LEGAL_BASIS_LABELS, "measure_kind": MEASURE_KIND_LABELS,
    "measure_status": MEASURE_STATUS_LABELS, "arena": ARENA_LABELS, "yes_no": YES_NO_LABELS,
    "gender": GENDER_LABELS,
}


def _own_messages() -> dict[str, str]:
    """The refusals only defector tracks give (background, risk, agency contacts, measures,
    entries for named users); the shared ones are casework.views.shared_messages."""
    return {
        "handed_over_to_required": _("Say in the closing assessment to whom the track was "
                                     "handed over."),
        "reassess_by": _("The reassessment date must come after the assessment."),
        "special_category_consent_required": _(
            "Environment and background are special-category data: they are recorded only "
            "with the person's consent to that, in force. Record the consent first."),
        "no_valid_consent": _("The contact needs a consent to sharing with this authority that "
                              "is in force and covers every category shared. Choose such a "
                              "consent or another legal basis."),
        "categories_required": _("Choose the data categories shared."),
        "ended_before_started": _("The measure cannot end before it starts."),
        "named_users": _("Name at least one other team member who may read the entry."),
        "named_user_not_team": _("Only members of the track's team can be named."),
    }


pages = TrackPages("cases", kind="defector", messages=_own_messages)


@bp.before_request
def _defector_tracks_only() -> None:
    """Every route with a track id serves defector tracks only: a relative track's id is
    answered as unknown (404) and the refusal recorded (casework.policy.require_kind)."""
    pages.only_this_kind()


@bp.app_context_processor
def _labels() -> dict[str, Any]:
    return {"case_labels": LABELS}


# --- lists and search ---------------------------------------------------------------------------


@bp.route("/mine")
@requires("tracks.work")
def mine() -> Any:
    return pages.track_list("mine", ListForm(formdata=request.args), ("status", "risk_level"))


@bp.route("/all")
@requires("tracks.list")
def all_tracks() -> Any:
    return pages.track_list("all", ListForm(formdata=request.args), ("status", "risk_level"))


@bp.route("/search", methods=["GET", "POST"])
@requires("tracks.work")
def search() -> Any:
    return pages.search()


# --- intake -------------------------------------------------------------------------------------


@bp.route("/new", methods=["GET", "POST"])
@requires("tracks.intake")
def intake() -> Any:
    form = IntakeForm()

    def open_track(db: Session) -> Any:
        today = now().astimezone(local_zone()).date()
        consents = [casework.ConsentInput(consent_type="processing",
                                          form=form.consent_form.data or "", valid_from=today)]
        if form.special_consent_given.data:
            consents.append(casework.ConsentInput(consent_type="special_category",
                                                  form=form.consent_form.data or "",
                                                  valid_from=today))
        return cases.open_defector_track(
            db, actor=actor(), now=now(), referral_source=form.referral_source.data or "",
            allow_duplicate=bool(form.create_anyway.data), consents=consents,
            person=casework.PersonInput(
                name=form.name.data, personnummer=form.personnummer.data or None,
                phone=form.phone.data or None, email=form.email.data or None),
            background=cases.BackgroundInput(environment=form.environment.data or None,
                                             involvement=form.involvement.data or None))

    return pages.intake(form, open_track,
                        lambda code: _("The track %(code)s has been opened.", code=code))


# --- the track page -----------------------------------------------------------------------------


@pages.track_page
def track_page(track_id: uuid.UUID, *, status: int = 200, **parts: Any) -> Any:
    """The track page: the header (which the policy must allow), forms, and content when the
    caller has just asked for it (never stored, never in a URL)."""
    def read(db: Session) -> tuple[Any, ...]:
        return (queries.track_row(db, actor=actor(), track_id=track_id, now=now()),
                followup_queries.for_track(db, actor=actor(), track_id=track_id, now=now()),
                staff.team_names(db, actor=actor(), track_id=track_id, now=now()),
                page_reads(db, kind="defector", track_id=track_id))

    row, followups_section, names, extra = read_page(read)
    local_now = now().astimezone(local_zone()).replace(tzinfo=None, second=0, microsecond=0)
    forms: dict[str, Any] = lazy_forms(
        content_form=lambda: ContentForm(formdata=None),
        journal_form=lambda: JournalForm(formdata=None, occurred_at=local_now),
        correction_form=lambda: CorrectionForm(formdata=None),
        risk_form=lambda: RiskForm(formdata=None, assessed_on=local_now.date()),
        status_form=lambda: StatusForm(formdata=None, version=row.version),
        goal_form=lambda: GoalForm(formdata=None),
        goal_status_form=lambda: GoalStatusForm(formdata=None),
        new_consent_form=lambda: ConsentForm(formdata=None, valid_from=local_now.date()),
        revoke_form=lambda: RevokeConsentForm(formdata=None),
        agency_form=lambda: AgencyContactForm(formdata=None, occurred_at=local_now),
        measure_form=lambda: MeasureForm(formdata=None),
        measure_status_form=lambda: MeasureStatusForm(formdata=None),
        remove_member_form=lambda: RemoveMemberForm(formdata=None),
        goal_edit_form=lambda: GoalEditForm(formdata=None),
    )
    forms.update(parts)
    forms["case_forms"] = _case_forms(parts.get("defector"), parts.get("case_form"))
    forms["case_part_fields"] = CASE_PART_FIELDS
    # The follow-up section (a partial any track page can include).
    forms["followups_section"] = followups_section
    if parts.get("content") is not None or "agency_form" in parts:
        # The agency form is shown only with the content (or posted back with its errors).
        _consent_choices(forms["agency_form"], parts.get("content"))
    forms["journal_form"].named_user_ids.choices = [
        (str(m.id), m.username) for m in names if m.id != actor().id]
    pages.team_section(track_id, forms)
    return render_template("cases/track.html", row=row, page_reads=extra, **forms), status


CASE_PART_FIELDS = {"person_details": PERSON_DETAIL_FIELDS, "background": BACKGROUND_FIELDS,
                    "safe_contact": SAFE_CONTACT_FIELDS, "safety_plan": ("safety_plan",)}


def _case_forms(defector: Any, posted: CaseForm | None) -> dict[str, CaseForm]:
    """The edit forms of the case's parts: filled from the content just read (a part that was
    not read, like a hidden safe contact, gets no form), or the one just posted, as posted."""
    if posted is not None:
        return {str(posted.part.data): posted} if posted.part.data in CASE_PARTS else {}
    if defector is None:
        return {}
    found: dict[str, CaseForm] = {}
    for part, values in (("person_details", defector.person_details),
                         ("background", defector.background),
                         ("safe_contact", defector.safe_contact),
                         ("safety_plan", {"safety_plan": defector.safety_plan}
                          if defector.measures is not None else None)):
        if values is not None:
            found[part] = CaseForm(formdata=None, part=part, version=defector.case_version,
                                   **{k: v for k, v in values.items() if v is not None})
    return found


def _consent_choices(form: AgencyContactForm, content: Any) -> None:
    """The consents an agency contact may rest on: the track's sharing consents in force
    (known only when the content has been read); a choice already posted is kept."""
    found = [("", _("No consent"))]
    if content is not None and content.consents is not None:
        found += [(str(c.id), f"{AGENCY_LABELS.get(c.recipient_agency or '', '–')}, "
                              f"{c.valid_from.isoformat()}")
                  for c in content.consents if c.is_valid and c.consent_type == "sharing"]
    posted = form.consent_id.data
    if posted and posted not in {value for value, _label in found}:
        found.append((posted, _("The consent chosen earlier")))
    form.consent_id.choices = found


@bp.route("/<uuid:track_id>")
@requires("tracks.work")
def track(track_id: uuid.UUID) -> Any:
    return track_page(track_id)


@bp.route("/<uuid:track_id>/content", methods=["POST"])
@requires("tracks.work")
def content(track_id: uuid.UUID) -> Any:
    form = ContentForm()
    if not form.validate_on_submit():
        return track_page(track_id, content_form=form)
    purpose = form.purpose.data or ""
    reveal = form.reveal_contact.data == "1"

    def read(db: Session) -> tuple[Any, Any]:
        # Two services, one request: the shared sections and the defector's own; each read is
        # audited with the purpose before anything is decrypted.
        shared = casework.read_track_content(db, actor=actor(), track_id=track_id,
                                             purpose=purpose, reveal_contact=reveal, now=now())
        if shared.track.kind != "defector":
            return shared, None
        sections = [s for s in cases.SECTIONS
                    if s != "safe_contact" or (shared.person and not shared.person.contact_hidden)]
        return shared, cases.read_defector_content(db, actor=actor(), track_id=track_id,
                                                   purpose=purpose, sections=sections, now=now())

    result, error = run(read)
    if error is not None:
        form.purpose.errors = [pages.error_message(error)]
        return track_page(track_id, content_form=form)
    shared, defector = result
    return track_page(track_id, content_form=form, content=shared, defector=defector,
                      correction_form=CorrectionForm(formdata=None))


@bp.route("/<uuid:track_id>/journal", methods=["POST"])
@requires("tracks.work")
def add_journal(track_id: uuid.UUID) -> Any:
    return pages.add_journal(track_id, JournalForm())


@bp.route("/<uuid:track_id>/journal/correct", methods=["POST"])
@requires("tracks.work")
def correct_journal(track_id: uuid.UUID) -> Any:
    return pages.correct_journal(track_id)


@bp.route("/<uuid:track_id>/risk", methods=["POST"])
@requires("tracks.work")
def add_risk(track_id: uuid.UUID) -> Any:
    form = RiskForm()
    if form.validate_on_submit():
        _row, error = run(lambda db: cases.add_risk_assessment(
            db, actor=actor(), track_id=track_id, now=now(),
            assessed_on=form.assessed_on.data,
            levels={d: getattr(form, d).data for d in RISK_DIMENSIONS},
            overall_level=form.overall_level.data or None,
            protective_factors=form.protective_factors.data or None,
            reassess_by=form.reassess_by.data))
        if error is None:
            return pages.saved(track_id, _("The risk assessment has been saved."))
        form.form_errors.append(pages.error_message(error))
    return track_page(track_id, risk_form=form)


@bp.route("/<uuid:track_id>/status", methods=["POST"])
@requires("tracks.work")
def change_status(track_id: uuid.UUID) -> Any:
    form = StatusForm()

    def close(db: Session, reason: str) -> Any:
        # Closing also records the closing assessment (cases.close_track).
        return cases.close_track(
            db, actor=actor(), track_id=track_id, closure_reason=reason,
            closing_assessment=form.closing_assessment.data or None,
            expected_version=form.version.data, settings=settings(), now=now())

    return pages.change_status(track_id, form, close)


@bp.route("/<uuid:track_id>/break-glass", methods=["GET", "POST"])
@requires("tracks.break_glass")
def break_glass(track_id: uuid.UUID) -> Any:
    return pages.break_glass(track_id)


# --- plan goals, consents, agency contacts ------------------------------------------------------


@bp.route("/<uuid:track_id>/goals", methods=["POST"])
@requires("tracks.work")
def add_goal(track_id: uuid.UUID) -> Any:
    return pages.add_goal(track_id, GoalForm())


@bp.route("/<uuid:track_id>/goals/edit", methods=["POST"])
@requires("tracks.work")
def edit_goal(track_id: uuid.UUID) -> Any:
    form = GoalEditForm()
    if form.validate_on_submit():
        goal = goal_input(form)
        changes = {name: getattr(goal, name) for name in casework.GOAL_FIELDS}
        _goal, error = run(lambda db: casework.update_plan_goal(
            db, actor=actor(), track_id=track_id, goal_id=uuid.UUID(form.goal_id.data),
            expected_version=form.version.data, changes=changes, now=now()))
        if error is None:
            return pages.saved(track_id, _("The goal has been saved."))
        form.form_errors.append(pages.stale(error, _(
            "Someone else changed the goal meanwhile: nothing was saved. Show the content "
            "again, check the goal and try again.")))
    return track_page(track_id, goal_edit_form=form)


@bp.route("/<uuid:track_id>/case", methods=["POST"])
@requires("tracks.work")
def update_case(track_id: uuid.UUID) -> Any:
    form = CaseForm()
    if form.part.data not in CASE_PARTS:
        # Only a tampered or outdated page sends this; there is nothing typed to keep. The page
        # is rendered here, not redirected to, so the track's access check (and a refusal's
        # record) comes with this request.
        flash(_("The form could not be read. Reload the page and try again."), "error")
        return track_page(track_id, status=400)
    if form.validate_on_submit():
        changes = {name: _blank_is_none(getattr(form, name).data)
                   for name in CASE_PART_FIELDS[str(form.part.data)]}
        _case, error = run(lambda db: cases.update_case(
            db, actor=actor(), track_id=track_id, expected_version=form.version.data,
            changes=changes, now=now()))
        if error is None:
            return pages.saved(track_id, _("The case has been saved."))
        form.form_errors.append(pages.stale(error, _(
            "Someone else changed the case meanwhile: nothing was saved. Show the content "
            "again, check the information and try again.")))
    return track_page(track_id, case_form=form)


def _blank_is_none(value: Any) -> Any:
    return None if isinstance(value, str) and not value.strip() else value


@bp.route("/<uuid:track_id>/goals/status", methods=["POST"])
@requires("tracks.work")
def update_goal(track_id: uuid.UUID) -> Any:
    return pages.update_goal(track_id)


@bp.route("/<uuid:track_id>/consents", methods=["POST"])
@requires("tracks.work")
def add_consent(track_id: uuid.UUID) -> Any:
    return pages.add_consent(track_id, ConsentForm())


@bp.route("/<uuid:track_id>/consents/revoke", methods=["POST"])
@requires("tracks.work")
def revoke_consent(track_id: uuid.UUID) -> Any:
    return pages.revoke_consent(track_id)


@bp.route("/<uuid:track_id>/agency-contacts", methods=["POST"])
@requires("tracks.work")
def add_agency_contact(track_id: uuid.UUID) -> Any:
    form = AgencyContactForm()
    form.consent_id.choices = []  # not checked against a list: the service checks the consent
    if form.validate_on_submit():
        occurred = form.occurred_at.data
        consent = form.consent_id.data
        _contact, error = run(lambda db: casework.add_agency_contact(
            db, actor=actor(), track_id=track_id, now=now(), agency=form.agency.data or "",
            shared_categories=list(form.categories.data or []),
            legal_basis=form.legal_basis.data or "",
            occurred_at=occurred.replace(tzinfo=local_zone()) if occurred else None,
            consent_id=uuid.UUID(consent) if consent else None,
            unit=form.unit.data or None, contact_role=form.contact_role.data or None,
            purpose=form.purpose.data or None, outcome=form.outcome.data or None),
            shown=("no_valid_consent",))
        if error is None:
            basis = form.legal_basis.data or ""
            if basis != "consent":
                flash(_("Recorded without a consent, on the legal basis \"%(basis)s\". The "
                        "board sees the disclosure.", basis=LEGAL_BASIS_LABELS[basis]), "warning")
            return pages.saved(track_id, _("The agency contact has been recorded."))
        form.form_errors.append(pages.error_message(error))
    return track_page(track_id, agency_form=form)


# --- protective measures ------------------------------------------------------------------------


@bp.route("/<uuid:track_id>/measures", methods=["POST"])
@requires("tracks.work")
def add_measure(track_id: uuid.UUID) -> Any:
    form = MeasureForm()
    if form.validate_on_submit():
        _measure, error = run(lambda db: cases.add_protective_measure(
            db, actor=actor(), track_id=track_id, now=now(), kind=form.kind.data or "",
            status=form.status.data or "planned", started_on=form.started_on.data,
            ended_on=form.ended_on.data, note=form.note.data or None))
        if error is None:
            return pages.saved(track_id, _("The protective measure has been added."))
        form.form_errors.append(pages.error_message(error))
    return track_page(track_id, measure_form=form)


@bp.route("/<uuid:track_id>/measures/status", methods=["POST"])
@requires("tracks.work")
def update_measure(track_id: uuid.UUID) -> Any:
    form = MeasureStatusForm()
    if form.validate_on_submit():
        _measure, error = run(lambda db: cases.update_protective_measure(
            db, actor=actor(), track_id=track_id, measure_id=uuid.UUID(form.measure_id.data),
            expected_version=form.version.data, changes={"status": form.status.data or ""},
            now=now()))
        if error is None:
            return pages.saved(track_id, _("The measure's status has been changed."))
        form.form_errors.append(pages.stale(error, _(
            "Someone else changed the measure meanwhile: nothing was saved. Show the content "
            "again, check the measure and try again.")))
    elif not form.form_errors:
        form.form_errors.append(_("The measure's status could not be changed: choose a status "
                                  "and try again."))
    return track_page(track_id, measure_status_form=form)


# --- team (coordinators) ------------------------------------------------------------------------


@bp.route("/<uuid:track_id>/team", methods=["POST"])
@requires("tracks.assign")
def add_member(track_id: uuid.UUID) -> Any:
    return pages.add_member(track_id)


@bp.route("/<uuid:track_id>/team/remove", methods=["POST"])
@requires("tracks.assign")
def remove_member(track_id: uuid.UUID) -> Any:
    return pages.remove_member(track_id)


@bp.route("/<uuid:track_id>/owner", methods=["POST"])
@requires("tracks.assign")
def change_owner(track_id: uuid.UUID) -> Any:
    return pages.change_owner(track_id)
