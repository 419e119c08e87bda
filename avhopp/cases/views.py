"""Defector track pages: lists, search, intake, the track page with content shown on request,
journal, risk assessment, status and break-glass. Views parse a form, call a service with the
current user as actor, commit and redirect; every decision about access is the services'."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable
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
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy.orm import Session

from avhopp.cases import queries as case_queries
from avhopp.cases import services as cases
from avhopp.cases.forms import (
    AGENCY_LABELS,
    ARENA_LABELS,
    CASE_PARTS,
    CATEGORY_LABELS,
    CLOSURE_LABELS,
    CONSENT_FORM_LABELS,
    CONSENT_TYPE_LABELS,
    CONTACT_TYPE_LABELS,
    DIMENSION_LABELS,
    ENVIRONMENT_LABELS,
    GENDER_LABELS,
    GOAL_STATUS_LABELS,
    INVOLVEMENT_LABELS,
    LEGAL_BASIS_LABELS,
    LIFE_DOMAIN_LABELS,
    MEASURE_KIND_LABELS,
    MEASURE_STATUS_LABELS,
    PAGE_SIZE,
    PURPOSE_LABELS,
    REFERRAL_LABELS,
    RISK_LABELS,
    SENSITIVITY_LABELS,
    STATUS_LABELS,
    YES_NO_LABELS,
    AgencyContactForm,
    BreakGlassForm,
    CaseForm,
    CodeSearchForm,
    ConsentForm,
    ContentForm,
    CorrectionForm,
    GoalEditForm,
    GoalForm,
    GoalStatusForm,
    IdentifierSearchForm,
    IntakeForm,
    JournalForm,
    ListForm,
    MeasureForm,
    MeasureStatusForm,
    OwnerForm,
    RemoveMemberForm,
    RevokeConsentForm,
    RiskForm,
    StaffForm,
    StatusForm,
)
from avhopp.cases.models import RISK_DIMENSIONS
from avhopp.cases.services import BACKGROUND_FIELDS, PERSON_DETAIL_FIELDS, SAFE_CONTACT_FIELDS
from avhopp.casework import policy, queries
from avhopp.casework import services as casework
from avhopp.casework.queries import TrackFilter
from avhopp.db import request_session
from avhopp.errors import DomainError, ValidationError
from avhopp.followups import queries as followup_queries
from avhopp.permissions import requires, role_has
from avhopp.security import now, require_recent_auth

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


def actor() -> Any:
    return current_user._get_current_object()


@bp.before_request
def _defector_tracks_only() -> None:
    """Every route with a track id serves defector tracks only: a relative track's id is
    answered as unknown (404) and the refusal recorded (casework.policy.require_kind)."""
    track_id = (request.view_args or {}).get("track_id")
    if isinstance(track_id, uuid.UUID) and current_user.is_authenticated:
        run(lambda db: policy.require_kind(db, actor=actor(), track_id=track_id,
                                           kind="defector", now=now()))


def settings() -> casework.CaseworkSettings:
    return casework.CaseworkSettings.from_config(current_app.config)


def local_zone() -> dt.tzinfo:
    # The organisation's local time zone (validated at start-up by the audit settings).
    return current_app.extensions["avhopp.audit"].zone  # type: ignore[no-any-return]


@bp.app_template_filter("local_time")
def _local_time(value: dt.datetime | None) -> str:
    return value.astimezone(local_zone()).strftime("%Y-%m-%d %H:%M") if value else ""


@bp.app_context_processor
def _labels() -> dict[str, Any]:
    return {"case_labels": LABELS}


def error_message(exc: DomainError) -> str:
    """A clear message for a refusal of a service (the service's own text is for developers,
    except identifier errors, which carry a Swedish message without the value)."""
    messages = {
        "stale_version": _("Someone else changed the track meanwhile. Reload the page, "
                           "check the information and try again."),
        "invalid_transition": _("The track cannot move to that status from its current one."),
        "closure_reason_required": _("Choose a closure reason to close the track."),
        "closure_reason": _("A closure reason is given only when the track is closed."),
        "handed_over_to_required": _("Say in the closing assessment to whom the track was "
                                     "handed over."),
        "occurred_at": _("A journal entry records what has happened: the time cannot be in "
                         "the future."),
        "reason_required": _("Give the reason in a sentence."),
        "reauth_required": _("Confirm your password first."),
        "already_on_team": _("You are on the team already and need no emergency access."),
        "name_required": _("Give a name."),
        "reassess_by": _("The reassessment date must come after the assessment."),
        "consent_required": _("A consent to processing is needed first."),
        "special_category_consent_required": _(
            "Environment and background are special-category data: they are recorded only "
            "with the person's consent to that, in force. Record the consent first."),
        "no_identifier": _("Give a personnummer, a phone number or an e-mail."),
        "note_required": _("Write a note."),
        "no_valid_consent": _("The contact needs a consent to sharing with this authority that "
                              "is in force and covers every category shared. Choose such a "
                              "consent or another legal basis."),
        "categories_required": _("Choose the data categories shared."),
        "valid_to_before_from": _("The consent cannot end before it starts."),
        "recipient_required": _("Name the recipient of the consent."),
        "already_revoked": _("The consent has already been revoked."),
        "target_before_start": _("The target date cannot come before the start."),
        "ended_before_started": _("The measure cannot end before it starts."),
        "not_a_worker": _("Choose an active coordinator or support worker."),
        "already_owner": _("That staff member already owns the track."),
        "owner": _("The owner stays on the team: change the owner first."),
        "named_users": _("Name at least one other team member who may read the entry."),
        "named_user_not_team": _("Only members of the track's team can be named."),
    }
    if exc.code in messages:
        return messages[exc.code]
    if exc.code.startswith("invalid_") and exc.message:
        return exc.message  # from avhopp.identifiers: Swedish, never the value itself
    return _("The information could not be saved. Check the fields and try again.")


def run(call: Callable[[Session], Any], *,
        shown: tuple[str, ...] = ()) -> tuple[Any, DomainError | None]:
    """Call one service and commit. A refusal is committed too (its denied audit event must
    persist; the services change nothing before refusing); 403 and 404 end the request, except
    refusals whose code is in `shown`, which the form explains."""
    db = request_session()
    try:
        result = call(db)
    except DomainError as exc:
        db.commit()
        if exc.status_code in (403, 404) and exc.code not in shown:
            abort(exc.status_code)
        return None, exc
    db.commit()
    return result, None


# --- lists and search ---------------------------------------------------------------------------


def _track_list(scope: str) -> Any:
    form = ListForm(formdata=request.args)
    page = None
    args: dict[str, Any] = {}
    if form.validate():
        args = {name: getattr(form, name).data
                for name in ("status", "risk_level", "sort", "direction")
                if getattr(form, name).data}
        number = form.page.data or 1
        lister = (case_queries.my_defector_tracks if scope == "mine"
                  else case_queries.all_defector_tracks)
        page, error = run(lambda db: lister(
            db, actor=actor(), now=now(), limit=PAGE_SIZE, offset=(number - 1) * PAGE_SIZE,
            flt=TrackFilter(status=form.status.data or None,
                            risk_level=form.risk_level.data or None),
            sort=form.sort.data or "opened_at", descending=form.direction.data != "asc"))
        if error is not None:
            form.form_errors.append(_("Correct the filter to see tracks."))
    return render_template("cases/list.html", form=form, page=page, scope=scope, args=args,
                           endpoint=request.endpoint)


@bp.route("/mine")
@requires("tracks.work")
def mine() -> Any:
    return _track_list("mine")


@bp.route("/all")
@requires("tracks.list")
def all_tracks() -> Any:
    return _track_list("all")


@bp.route("/search", methods=["GET", "POST"])
@requires("tracks.work")
def search() -> Any:
    code_form = CodeSearchForm(formdata=request.args if "code" in request.args else None)
    id_form = IdentifierSearchForm()
    codes = None
    not_found = False
    if request.method == "GET" and "code" in request.args and code_form.validate():
        row, _error = run(lambda db: queries.find_by_code(
            db, actor=actor(), code=code_form.code.data or "", now=now()))
        if row is not None and row.kind == "defector":
            return redirect(url_for("cases.track", track_id=row.id))
        not_found = True
    elif id_form.validate_on_submit():
        codes, error = run(lambda db: queries.find_by_identifier(
            db, actor=actor(), personnummer=id_form.personnummer.data or None,
            phone=id_form.phone.data or None, email=id_form.email.data or None, now=now(),
            kind="defector"))
        if error is not None:
            id_form.form_errors.append(error_message(error))
    return render_template("cases/search.html", code_form=code_form, id_form=id_form,
                           codes=codes, not_found=not_found)


# --- intake -------------------------------------------------------------------------------------


@bp.route("/new", methods=["GET", "POST"])
@requires("tracks.intake")
def intake() -> Any:
    form = IntakeForm()
    duplicates: list[str] = []
    if form.validate_on_submit():
        db = request_session()
        today = now().astimezone(local_zone()).date()
        consents = [casework.ConsentInput(consent_type="processing",
                                          form=form.consent_form.data or "", valid_from=today)]
        if form.special_consent_given.data:
            consents.append(casework.ConsentInput(consent_type="special_category",
                                                  form=form.consent_form.data or "",
                                                  valid_from=today))
        try:
            track = cases.open_defector_track(
                db, actor=actor(), now=now(), referral_source=form.referral_source.data or "",
                allow_duplicate=bool(form.create_anyway.data), consents=consents,
                person=casework.PersonInput(
                    name=form.name.data, personnummer=form.personnummer.data or None,
                    phone=form.phone.data or None, email=form.email.data or None),
                background=cases.BackgroundInput(environment=form.environment.data or None,
                                                 involvement=form.involvement.data or None))
        except casework.PossibleDuplicate as exc:
            db.commit()  # the identifier search is audited
            duplicates = exc.codes
        except ValidationError as exc:
            # Intake may have flushed the person before a later check failed: keep nothing.
            db.rollback()
            form.form_errors.append(error_message(exc))
        except DomainError as exc:
            db.commit()
            abort(exc.status_code if exc.status_code in (403, 404) else 400)
        else:
            db.commit()
            flash(_("The track %(code)s has been opened.", code=track.code), "success")
            return redirect(url_for("cases.track", track_id=track.id))
    return render_template("cases/intake.html", form=form, duplicates=duplicates)


# --- the track page -----------------------------------------------------------------------------


def track_page(track_id: uuid.UUID, *, status: int = 200, **parts: Any) -> Any:
    """The track page: the header (which the policy must allow), forms, and content when the
    caller has just asked for it (never stored, never in a URL)."""
    row, _error = run(lambda db: queries.track_row(db, actor=actor(), track_id=track_id,
                                                     now=now()))
    local_now = now().astimezone(local_zone()).replace(tzinfo=None, second=0, microsecond=0)
    forms: dict[str, Any] = {
        "content_form": ContentForm(formdata=None),
        "journal_form": JournalForm(formdata=None, occurred_at=local_now),
        "correction_form": CorrectionForm(formdata=None),
        "risk_form": RiskForm(formdata=None, assessed_on=local_now.date()),
        "status_form": StatusForm(formdata=None, version=row.version),
        "goal_form": GoalForm(formdata=None),
        "goal_status_form": GoalStatusForm(formdata=None),
        "new_consent_form": ConsentForm(formdata=None, valid_from=local_now.date()),
        "revoke_form": RevokeConsentForm(formdata=None),
        "agency_form": AgencyContactForm(formdata=None, occurred_at=local_now),
        "measure_form": MeasureForm(formdata=None),
        "measure_status_form": MeasureStatusForm(formdata=None),
        "remove_member_form": RemoveMemberForm(formdata=None),
        "goal_edit_form": GoalEditForm(formdata=None),
    }
    forms.update(parts)
    forms["case_forms"] = _case_forms(parts.get("defector"), parts.get("case_form"))
    forms["case_part_fields"] = CASE_PART_FIELDS
    # The follow-up section (a partial any track page can include).
    forms["followups_section"], _error = run(lambda db: followup_queries.for_track(
        db, actor=actor(), track_id=track_id, now=now()))
    _consent_choices(forms["agency_form"], parts.get("content"))
    names, _error = run(lambda db: case_queries.team_names(db, actor=actor(), track_id=track_id,
                                                             now=now()))
    forms["journal_form"].named_user_ids.choices = [
        (str(m.id), m.username) for m in names if m.id != actor().id]
    if role_has(actor().role, "tracks.assign"):
        forms.setdefault("staff_form", StaffForm(formdata=None))
        forms.setdefault("owner_form", OwnerForm(formdata=None))
        candidates, team = _staff(track_id)
        _staff_choices(forms["staff_form"].user_id, candidates)
        _staff_choices(forms["owner_form"].owner_id, candidates)
        forms["team"] = team
    return render_template("cases/track.html", row=row, **forms), status


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


def _staff(track_id: uuid.UUID) -> tuple[list[Any], list[Any]]:
    def read(db: Session) -> tuple[list[Any], list[Any]]:
        return (case_queries.team_candidates(db),
                case_queries.team(db, actor=actor(), track_id=track_id, now=now()))

    result, _error = run(read)
    return result  # type: ignore[no-any-return]


def _staff_choices(field: Any, candidates: list[Any]) -> None:
    field.choices = [("", _("Choose a staff member"))] + [
        (str(c.id), c.username) for c in candidates]


def _saved(track_id: uuid.UUID, message: str) -> Any:
    flash(message, "success")
    return redirect(url_for("cases.track", track_id=track_id))


def _stale(error: DomainError, message: str) -> str:
    return message if error.code == "stale_version" else error_message(error)


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
        form.purpose.errors = [error_message(error)]
        return track_page(track_id, content_form=form)
    shared, defector = result
    return track_page(track_id, content_form=form, content=shared, defector=defector,
                      correction_form=CorrectionForm(formdata=None))


@bp.route("/<uuid:track_id>/journal", methods=["POST"])
@requires("tracks.work")
def add_journal(track_id: uuid.UUID) -> Any:
    form = JournalForm()
    if form.validate_on_submit():
        occurred = form.occurred_at.data
        _entry, error = run(lambda db: casework.add_journal_entry(
            db, actor=actor(), track_id=track_id, now=now(),
            occurred_at=occurred.replace(tzinfo=local_zone()) if occurred else None,
            contact_type=form.contact_type.data or "",
            contact_achieved=bool(form.contact_achieved.data), note=form.note.data or "",
            participants=form.participants.data or None,
            duration_minutes=form.duration_minutes.data,
            sensitivity=form.sensitivity.data or "normal",
            named_user_ids=[uuid.UUID(u) for u in form.named_user_ids.data or []]))
        if error is None:
            flash(_("The journal entry has been saved."), "success")
            return redirect(url_for("cases.track", track_id=track_id))
        form.form_errors.append(error_message(error))
    return track_page(track_id, journal_form=form)


@bp.route("/<uuid:track_id>/journal/correct", methods=["POST"])
@requires("tracks.work")
def correct_journal(track_id: uuid.UUID) -> Any:
    form = CorrectionForm()
    if form.validate_on_submit():
        _entry, error = run(lambda db: casework.correct_journal_entry(
            db, actor=actor(), track_id=track_id, entry_id=uuid.UUID(form.entry_id.data),
            note=form.note.data or "", now=now()))
        if error is None:
            flash(_("The correction has been saved as a new entry."), "success")
            return redirect(url_for("cases.track", track_id=track_id))
        form.form_errors.append(error_message(error))
    flash(_("The correction could not be saved: write the corrected note and try again."),
          "error")
    return track_page(track_id, correction_form=form)


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
            flash(_("The risk assessment has been saved."), "success")
            return redirect(url_for("cases.track", track_id=track_id))
        form.form_errors.append(error_message(error))
    return track_page(track_id, risk_form=form)


@bp.route("/<uuid:track_id>/status", methods=["POST"])
@requires("tracks.work")
def change_status(track_id: uuid.UUID) -> Any:
    form = StatusForm()
    if form.validate_on_submit():
        reason = form.closure_reason.data or None

        def call(db: Session) -> Any:
            if form.to_status.data == "closed":
                # Closing also records the closing assessment (cases.close_track).
                return cases.close_track(
                    db, actor=actor(), track_id=track_id, closure_reason=reason or "",
                    closing_assessment=form.closing_assessment.data or None,
                    expected_version=form.version.data, settings=settings(), now=now())
            return casework.change_status(
                db, actor=actor(), track_id=track_id, to_status=form.to_status.data or "",
                closure_reason=reason, expected_version=form.version.data,
                settings=settings(), now=now())

        _track, error = run(call)
        if error is None:
            flash(_("The status has been changed."), "success")
            return redirect(url_for("cases.track", track_id=track_id))
        form.form_errors.append(error_message(error))
    return track_page(track_id, status_form=form)


def _reauthenticated_at() -> dt.datetime | None:
    try:
        return dt.datetime.fromisoformat(str(session.get("reauth_at", "")))
    except ValueError:
        return None


@bp.route("/<uuid:track_id>/break-glass", methods=["GET", "POST"])
@requires("tracks.break_glass")
def break_glass(track_id: uuid.UUID) -> Any:
    step_up = require_recent_auth()
    if step_up is not None:
        return step_up
    form = BreakGlassForm()
    if form.validate_on_submit():
        _grant, error = run(lambda db: casework.break_glass(
            db, actor=actor(), track_id=track_id, reason=form.reason.data or "",
            reauthenticated_at=_reauthenticated_at(), settings=settings(), now=now()))
        if error is None:
            flash(_("Emergency access has been granted for %(minutes)d minutes. It is shown "
                    "to the board.", minutes=settings().break_glass_minutes), "warning")
            return redirect(url_for("cases.track", track_id=track_id))
        form.reason.errors = [error_message(error)]
    return render_template("cases/break_glass.html", form=form, track_id=track_id)


# --- plan goals, consents, agency contacts ------------------------------------------------------


@bp.route("/<uuid:track_id>/goals", methods=["POST"])
@requires("tracks.work")
def add_goal(track_id: uuid.UUID) -> Any:
    form = GoalForm()
    if form.validate_on_submit():
        _goal, error = run(lambda db: casework.add_plan_goal(
            db, actor=actor(), track_id=track_id, now=now(), goal=_goal_input(form)))
        if error is None:
            return _saved(track_id, _("The goal has been added to the plan."))
        form.form_errors.append(error_message(error))
    return track_page(track_id, goal_form=form)


def _goal_input(form: GoalForm) -> casework.GoalInput:
    return casework.GoalInput(
        life_domain=form.life_domain.data or "", goal=form.goal.data or "",
        sub_goal=form.sub_goal.data or None, intervention=form.intervention.data or None,
        provider=form.provider.data or None, start_on=form.start_on.data,
        target_on=form.target_on.data, status=form.status.data or "not_started",
        agreed_on=form.agreed_on.data)


@bp.route("/<uuid:track_id>/goals/edit", methods=["POST"])
@requires("tracks.work")
def edit_goal(track_id: uuid.UUID) -> Any:
    form = GoalEditForm()
    if form.validate_on_submit():
        goal = _goal_input(form)
        changes = {name: getattr(goal, name) for name in casework.GOAL_FIELDS}
        _goal, error = run(lambda db: casework.update_plan_goal(
            db, actor=actor(), track_id=track_id, goal_id=uuid.UUID(form.goal_id.data),
            expected_version=form.version.data, changes=changes, now=now()))
        if error is None:
            return _saved(track_id, _("The goal has been saved."))
        form.form_errors.append(_stale(error, _(
            "Someone else changed the goal meanwhile: nothing was saved. Show the content "
            "again, check the goal and try again.")))
    return track_page(track_id, goal_edit_form=form)


@bp.route("/<uuid:track_id>/case", methods=["POST"])
@requires("tracks.work")
def update_case(track_id: uuid.UUID) -> Any:
    form = CaseForm()
    if form.part.data not in CASE_PARTS:
        # Only a tampered or outdated page sends this; there is nothing typed to keep.
        flash(_("The form could not be read. Reload the page and try again."), "error")
        return redirect(url_for("cases.track", track_id=track_id))
    if form.validate_on_submit():
        changes = {name: _blank_is_none(getattr(form, name).data)
                   for name in CASE_PART_FIELDS[str(form.part.data)]}
        _case, error = run(lambda db: cases.update_case(
            db, actor=actor(), track_id=track_id, expected_version=form.version.data,
            changes=changes, now=now()))
        if error is None:
            return _saved(track_id, _("The case has been saved."))
        form.form_errors.append(_stale(error, _(
            "Someone else changed the case meanwhile: nothing was saved. Show the content "
            "again, check the information and try again.")))
    return track_page(track_id, case_form=form)


def _blank_is_none(value: Any) -> Any:
    return None if isinstance(value, str) and not value.strip() else value


@bp.route("/<uuid:track_id>/goals/status", methods=["POST"])
@requires("tracks.work")
def update_goal(track_id: uuid.UUID) -> Any:
    form = GoalStatusForm()
    if form.validate_on_submit():
        _goal, error = run(lambda db: casework.update_plan_goal(
            db, actor=actor(), track_id=track_id, goal_id=uuid.UUID(form.goal_id.data),
            expected_version=form.version.data, changes={"status": form.status.data or ""},
            now=now()))
        if error is None:
            return _saved(track_id, _("The goal's status has been changed."))
        form.form_errors.append(_stale(error, _(
            "Someone else changed the goal meanwhile: nothing was saved. Show the content "
            "again, check the goal and try again.")))
    elif not form.form_errors:
        form.form_errors.append(_("The goal's status could not be changed: choose a status "
                                  "and try again."))
    return track_page(track_id, goal_status_form=form)


@bp.route("/<uuid:track_id>/consents", methods=["POST"])
@requires("tracks.work")
def add_consent(track_id: uuid.UUID) -> Any:
    form = ConsentForm()
    if form.validate_on_submit():
        _consent, error = run(lambda db: casework.add_consent(
            db, actor=actor(), track_id=track_id, now=now(), consent=casework.ConsentInput(
                consent_type=form.consent_type.data or "", form=form.form.data or "",
                valid_from=form.valid_from.data, valid_to=form.valid_to.data,
                recipient_agency=form.recipient_agency.data or None,
                recipient=form.recipient.data or None, scope=list(form.scope.data or []),
                purpose=form.purpose.data or None, withheld=form.withheld.data or None)))
        if error is None:
            return _saved(track_id, _("The consent has been recorded."))
        form.form_errors.append(error_message(error))
    return track_page(track_id, new_consent_form=form)


@bp.route("/<uuid:track_id>/consents/revoke", methods=["POST"])
@requires("tracks.work")
def revoke_consent(track_id: uuid.UUID) -> Any:
    form = RevokeConsentForm()
    if form.validate_on_submit():
        _consent, error = run(lambda db: casework.revoke_consent(
            db, actor=actor(), track_id=track_id, consent_id=uuid.UUID(form.consent_id.data),
            now=now()))
        if error is None:
            return _saved(track_id, _("The consent has been revoked."))
        form.form_errors.append(error_message(error))
    elif not form.form_errors:
        form.form_errors.append(_("Choose a consent."))
    return track_page(track_id, revoke_form=form)


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
            return _saved(track_id, _("The agency contact has been recorded."))
        form.form_errors.append(error_message(error))
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
            return _saved(track_id, _("The protective measure has been added."))
        form.form_errors.append(error_message(error))
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
            return _saved(track_id, _("The measure's status has been changed."))
        form.form_errors.append(_stale(error, _(
            "Someone else changed the measure meanwhile: nothing was saved. Show the content "
            "again, check the measure and try again.")))
    elif not form.form_errors:
        form.form_errors.append(_("The measure's status could not be changed: choose a status "
                                  "and try again."))
    return track_page(track_id, measure_status_form=form)


# --- team (coordinators) ------------------------------------------------------------------------


def _staff_form(form_class: Any) -> Any:
    """A posted staff choice, checked against the active workers (read here, not in the form)."""
    form = form_class()
    candidates, _error = run(case_queries.team_candidates)
    field = form.user_id if form_class is StaffForm else form.owner_id
    _staff_choices(field, candidates)
    return form, field


@bp.route("/<uuid:track_id>/team", methods=["POST"])
@requires("tracks.assign")
def add_member(track_id: uuid.UUID) -> Any:
    form, field = _staff_form(StaffForm)
    if form.validate_on_submit():
        _member, error = run(lambda db: casework.add_team_member(
            db, actor=actor(), track_id=track_id, user_id=uuid.UUID(field.data), now=now()))
        if error is None:
            return _saved(track_id, _("The staff member has been added to the team."))
        form.form_errors.append(_("That staff member is on the team already.")
                                if error.code == "already_on_team" else error_message(error))
    return track_page(track_id, staff_form=form)


@bp.route("/<uuid:track_id>/team/remove", methods=["POST"])
@requires("tracks.assign")
def remove_member(track_id: uuid.UUID) -> Any:
    form = RemoveMemberForm()
    if form.validate_on_submit():
        _none, error = run(lambda db: casework.remove_team_member(
            db, actor=actor(), track_id=track_id, user_id=uuid.UUID(form.user_id.data),
            now=now()))
        if error is None:
            return _saved(track_id, _("The staff member has been taken off the team."))
        form.form_errors.append(error_message(error))
    elif not form.form_errors:
        form.form_errors.append(_("Choose a staff member."))
    return track_page(track_id, remove_member_form=form)


@bp.route("/<uuid:track_id>/owner", methods=["POST"])
@requires("tracks.assign")
def change_owner(track_id: uuid.UUID) -> Any:
    form, field = _staff_form(OwnerForm)
    if form.validate_on_submit():
        _track, error = run(lambda db: casework.change_owner(
            db, actor=actor(), track_id=track_id, user_id=uuid.UUID(field.data), now=now()))
        if error is None:
            return _saved(track_id, _("The owner has been changed."))
        form.form_errors.append(error_message(error))
    return track_page(track_id, owner_form=form)
