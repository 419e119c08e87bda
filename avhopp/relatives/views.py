"""Relative track pages (anhörigärenden): lists, search, intake, the track page with content on
request, the relative's own sections, journal, plan, consents, the link to a defector track,
status, team and break-glass. Views parse a form, call a service with the current user as
actor, commit and redirect; every decision about access is the services'.

Every route with a track id serves relative tracks only (a defector track's id is answered as
unknown and the refusal recorded), so nothing of a defector track shows here, and the defector
pages refuse relative tracks the same way.
"""

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

from avhopp.casework import policy, queries
from avhopp.casework import services as casework
from avhopp.casework.queries import TrackFilter
from avhopp.db import request_session
from avhopp.errors import DomainError, ValidationError
from avhopp.followups import queries as followup_queries
from avhopp.permissions import requires, role_has
from avhopp.relatives import queries as relative_queries
from avhopp.relatives import services as relatives
from avhopp.relatives.forms import (
    CATEGORY_LABELS,
    CLOSURE_LABELS,
    CONSENT_FORM_LABELS,
    CONSENT_TYPE_LABELS,
    CONTACT_TYPE_LABELS,
    EXIT_ROLE_LABELS,
    GOAL_STATUS_LABELS,
    LIFE_DOMAIN_LABELS,
    NEED_LABELS,
    PAGE_SIZE,
    PERCEIVED_ENVIRONMENT_LABELS,
    PROTECTED_LABELS,
    PURPOSE_LABELS,
    REFERRAL_LABELS,
    RELATION_LABELS,
    SENSITIVITY_LABELS,
    SIGN_LABELS,
    STATUS_LABELS,
    YES_NO_LABELS,
    BreakGlassForm,
    CaseForm,
    CodeSearchForm,
    ConsentForm,
    ContentForm,
    CorrectionForm,
    GoalForm,
    GoalStatusForm,
    IdentifierSearchForm,
    IntakeForm,
    JournalForm,
    LinkForm,
    ListForm,
    OwnerForm,
    RemoveMemberForm,
    RevokeConsentForm,
    StaffForm,
    StatusForm,
    UnlinkForm,
)
from avhopp.security import now, require_recent_auth

bp = Blueprint("relatives", __name__, template_folder="templates", url_prefix="/relatives")

LABELS = {
    "status": STATUS_LABELS, "referral": REFERRAL_LABELS, "closure": CLOSURE_LABELS,
    "contact_type": CONTACT_TYPE_LABELS, "sensitivity": SENSITIVITY_LABELS,
    "purpose": PURPOSE_LABELS, "life_domain": LIFE_DOMAIN_LABELS,
    "goal_status": GOAL_STATUS_LABELS, "consent_type": CONSENT_TYPE_LABELS,
    "consent_form": CONSENT_FORM_LABELS, "category": CATEGORY_LABELS,
    "relation": RELATION_LABELS, "environment": PERCEIVED_ENVIRONMENT_LABELS,
    "sign": SIGN_LABELS, "need": NEED_LABELS, "exit_role": EXIT_ROLE_LABELS,
    "yes_no": YES_NO_LABELS, "protected": PROTECTED_LABELS,
}


def actor() -> Any:
    return current_user._get_current_object()


def settings() -> casework.CaseworkSettings:
    return casework.CaseworkSettings.from_config(current_app.config)


def local_zone() -> dt.tzinfo:
    return current_app.extensions["avhopp.audit"].zone  # type: ignore[no-any-return]


@bp.app_context_processor
def _labels() -> dict[str, Any]:
    return {"relative_labels": LABELS}


@bp.app_template_global()
def linked_relative_codes(track_id: uuid.UUID) -> list[str]:
    """For the defector track page: codes of its linked relative tracks (link shown only while
    the relative's consent is in force). Only the codes: nothing else of those tracks."""
    codes, _error = run(lambda db: relative_queries.linked_relative_codes(
        db, actor=actor(), defector_track_id=track_id, now=now()))
    return codes or []


@bp.before_request
def _relative_tracks_only() -> None:
    """A defector track's id on a relative route is answered as unknown (recorded)."""
    track_id = (request.view_args or {}).get("track_id")
    if isinstance(track_id, uuid.UUID) and current_user.is_authenticated:
        run(lambda db: policy.require_kind(db, actor=actor(), track_id=track_id,
                                           kind="relative", now=now()))


def error_message(exc: DomainError) -> str:
    messages = {
        "stale_version": _("Someone else changed the track meanwhile. Reload the page, "
                           "check the information and try again."),
        "invalid_transition": _("The track cannot move to that status from its current one."),
        "closure_reason_required": _("Choose a closure reason to close the track."),
        "closure_reason": _("A closure reason is given only when the track is closed."),
        "occurred_at": _("A journal entry records what has happened: the time cannot be in "
                         "the future."),
        "reason_required": _("Give the reason in a sentence."),
        "reauth_required": _("Confirm your password first."),
        "already_on_team": _("You are on the team already and need no emergency access."),
        "name_required": _("Give a name."),
        "consent_required": _("A consent to processing is needed first."),
        "no_identifier": _("Give a personnummer, a phone number or an e-mail."),
        "note_required": _("Write a note."),
        "valid_to_before_from": _("The consent cannot end before it starts."),
        "recipient_required": _("Name the recipient of the consent."),
        "already_revoked": _("The consent has already been revoked."),
        "target_before_start": _("The target date cannot come before the start."),
        "not_a_worker": _("Choose an active coordinator or support worker."),
        "already_owner": _("That staff member already owns the track."),
        "owner": _("The owner stays on the team: change the owner first."),
        "already_linked": _("The tracks are linked already."),
        "link_not_found": _("No defector track with that code that you may link to."),
        "concern_birth_year": _("Give a possible birth year."),
    }
    if exc.code in messages:
        return messages[exc.code]
    if exc.code.startswith("invalid_") and exc.message:
        return exc.message  # from avhopp.identifiers: Swedish, never the value itself
    return _("The information could not be saved. Check the fields and try again.")


def run(call: Callable[[Session], Any], *,
        shown: tuple[str, ...] = ()) -> tuple[Any, DomainError | None]:
    """Call one service and commit (a refusal too: its denied event must persist); 403 and
    404 end the request unless the code is in `shown`."""
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
        args = {name: getattr(form, name).data for name in ("status", "sort", "direction")
                if getattr(form, name).data}
        number = form.page.data or 1
        lister = (relative_queries.my_relative_tracks if scope == "mine"
                  else relative_queries.all_relative_tracks)
        page, error = run(lambda db: lister(
            db, actor=actor(), now=now(), limit=PAGE_SIZE, offset=(number - 1) * PAGE_SIZE,
            flt=TrackFilter(status=form.status.data or None),
            sort=form.sort.data or "opened_at", descending=form.direction.data != "asc"))
        if error is not None:
            form.form_errors.append(_("Correct the filter to see tracks."))
    return render_template("relatives/list.html", form=form, page=page, scope=scope, args=args,
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
        if row is not None and row.kind == "relative":
            return redirect(url_for("relatives.track", track_id=row.id))
        not_found = True
    elif id_form.validate_on_submit():
        codes, error = run(lambda db: queries.find_by_identifier(
            db, actor=actor(), personnummer=id_form.personnummer.data or None,
            phone=id_form.phone.data or None, email=id_form.email.data or None, now=now(),
            kind="relative"))
        if error is not None:
            id_form.form_errors.append(error_message(error))
    return render_template("relatives/search.html", code_form=code_form, id_form=id_form,
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
        try:
            track = relatives.open_relative_track(
                db, actor=actor(), now=now(), referral_source=form.referral_source.data or "",
                relation=form.relation.data or "",
                allow_duplicate=bool(form.create_anyway.data),
                consents=[casework.ConsentInput(consent_type="processing",
                                                form=form.consent_form.data or "",
                                                valid_from=today)],
                person=casework.PersonInput(
                    name=form.name.data, personnummer=form.personnummer.data or None,
                    phone=form.phone.data or None, email=form.email.data or None,
                    protected_data_level=form.protected_data_level.data or None),
                safe_contact_method=form.safe_contact_method.data or None,
                concern_knows_of_contact=form.concern_knows_of_contact.data or None,
                concern=relatives.ConcernInput(
                    birth_year=form.concern_birth_year.data,
                    environment=form.concern_environment.data or None))
        except casework.PossibleDuplicate as exc:
            db.commit()  # the identifier search is audited
            duplicates = exc.codes
        except ValidationError as exc:
            db.rollback()  # intake may have flushed the person: keep nothing
            form.form_errors.append(error_message(exc))
        except DomainError as exc:
            db.commit()
            abort(exc.status_code if exc.status_code in (403, 404) else 400)
        else:
            db.commit()
            flash(_("The relative track %(code)s has been opened.", code=track.code),
                  "success")
            return redirect(url_for("relatives.track", track_id=track.id))
    return render_template("relatives/intake.html", form=form, duplicates=duplicates)


# --- the track page -----------------------------------------------------------------------------


def track_page(track_id: uuid.UUID, *, status: int = 200, **parts: Any) -> Any:
    def header(db: Session) -> tuple[Any, Any]:
        return (relative_queries.relative_track_row(db, actor=actor(), track_id=track_id,
                                                    now=now()),
                relative_queries.linked_defector_codes(db, actor=actor(), track_id=track_id,
                                                       now=now()))

    (row, links), _error = run(header)
    local_now = now().astimezone(local_zone()).replace(tzinfo=None, second=0, microsecond=0)
    forms: dict[str, Any] = {
        "content_form": ContentForm(formdata=None),
        "journal_form": JournalForm(formdata=None, occurred_at=local_now),
        "correction_form": CorrectionForm(formdata=None),
        "status_form": StatusForm(formdata=None, version=row.version),
        "goal_form": GoalForm(formdata=None),
        "goal_status_form": GoalStatusForm(formdata=None),
        "new_consent_form": ConsentForm(formdata=None, valid_from=local_now.date()),
        "revoke_form": RevokeConsentForm(formdata=None),
        "link_form": LinkForm(formdata=None, valid_from=local_now.date()),
        "unlink_form": UnlinkForm(formdata=None),
        "remove_member_form": RemoveMemberForm(formdata=None),
    }
    forms.update(parts)
    # The follow-up section (the same partial as on the defector page).
    forms["followups_section"], _error = run(lambda db: followup_queries.for_track(
        db, actor=actor(), track_id=track_id, now=now()))
    relative = parts.get("relative")
    if relative is not None and "case_form" not in parts:
        forms["case_form"] = _case_form(relative)
    if role_has(actor().role, "tracks.assign"):
        forms.setdefault("staff_form", StaffForm(formdata=None))
        forms.setdefault("owner_form", OwnerForm(formdata=None))
        candidates, team = _staff(track_id)
        _staff_choices(forms["staff_form"].user_id, candidates)
        _staff_choices(forms["owner_form"].owner_id, candidates)
        forms["team"] = team
    return render_template("relatives/track.html", row=row, links=links, **forms), status


def _case_form(relative: relatives.RelativeContent) -> CaseForm:
    values: dict[str, Any] = {"relation": relative.relation, "version": relative.case_version}
    for section in (relative.contact, relative.concern, relative.situation, relative.needs):
        values.update(section or {})
    return CaseForm(formdata=None, data={k: v for k, v in values.items() if v is not None})


def _staff(track_id: uuid.UUID) -> tuple[list[Any], list[Any]]:
    def read(db: Session) -> tuple[list[Any], list[Any]]:
        return (relative_queries.team_candidates(db),
                relative_queries.team(db, actor=actor(), track_id=track_id, now=now()))

    result, _error = run(read)
    return result  # type: ignore[no-any-return]


def _staff_choices(field: Any, candidates: list[Any]) -> None:
    field.choices = [("", _("Choose a staff member"))] + [
        (str(c.id), c.username) for c in candidates]


def _saved(track_id: uuid.UUID, message: str) -> Any:
    flash(message, "success")
    return redirect(url_for("relatives.track", track_id=track_id))


@bp.route("/<uuid:track_id>")
@requires("tracks.work")
def track(track_id: uuid.UUID) -> Any:
    return track_page(track_id)


def _read(track_id: uuid.UUID, purpose: str, reveal: bool) -> Any:
    def read(db: Session) -> tuple[Any, Any]:
        shared = casework.read_track_content(
            db, actor=actor(), track_id=track_id, purpose=purpose, reveal_contact=reveal,
            sections=("person", "journal", "plan", "consents"), now=now())
        own = relatives.read_relative_content(db, actor=actor(), track_id=track_id,
                                              purpose=purpose, now=now())
        return shared, own

    return run(read)


@bp.route("/<uuid:track_id>/content", methods=["POST"])
@requires("tracks.work")
def content(track_id: uuid.UUID) -> Any:
    form = ContentForm()
    if not form.validate_on_submit():
        return track_page(track_id, content_form=form)
    result, error = _read(track_id, form.purpose.data or "", form.reveal_contact.data == "1")
    if error is not None:
        form.purpose.errors = [error_message(error)]
        return track_page(track_id, content_form=form)
    shared, own = result
    return track_page(track_id, content_form=form, content=shared, relative=own)


@bp.route("/<uuid:track_id>/case", methods=["POST"])
@requires("tracks.work")
def update_case(track_id: uuid.UUID) -> Any:
    form = CaseForm()
    if form.validate_on_submit():
        changes = {
            "relation": form.relation.data or "",
            "safe_contact_method": form.safe_contact_method.data or None,
            "concern_knows_of_contact": form.concern_knows_of_contact.data or None,
            "concern_birth_year": form.concern_birth_year.data,
            "concern_environment": form.concern_environment.data or None,
            "observed_signs": list(form.observed_signs.data or []),
            "observed_text": form.observed_text.data or None,
            "children_in_household": form.children_in_household.data or None,
            "concern_report_on": form.concern_report_on.data,
            "threats_against_relative": form.threats_against_relative.data or None,
            "threats_text": form.threats_text.data or None,
            "wellbeing": form.wellbeing.data,
            "wellbeing_text": form.wellbeing_text.data or None,
            "needs": list(form.needs.data or []),
            "exit_role": form.exit_role.data or None,
            "agreements": form.agreements.data or None,
        }
        _case, error = run(lambda db: relatives.update_relative_case(
            db, actor=actor(), track_id=track_id, expected_version=form.version.data or 0,
            changes=changes, now=now()))
        if error is None:
            return _saved(track_id, _("The relative's information has been saved."))
        form.form_errors.append(error_message(error))
    return track_page(track_id, case_form=form)


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
            sensitivity=form.sensitivity.data or "normal"))
        if error is None:
            return _saved(track_id, _("The journal entry has been saved."))
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
            return _saved(track_id, _("The correction has been saved as a new entry."))
        form.form_errors.append(error_message(error))
    flash(_("The correction could not be saved: write the corrected note and try again."),
          "error")
    return track_page(track_id, correction_form=form)


@bp.route("/<uuid:track_id>/status", methods=["POST"])
@requires("tracks.work")
def change_status(track_id: uuid.UUID) -> Any:
    form = StatusForm()
    if form.validate_on_submit():
        reason = form.closure_reason.data or None

        def call(db: Session) -> Any:
            if form.to_status.data == "closed":
                return relatives.close_relative_track(
                    db, actor=actor(), track_id=track_id, closure_reason=reason or "",
                    closing_note=form.closing_note.data or None, settings=settings(),
                    now=now())
            return casework.change_status(
                db, actor=actor(), track_id=track_id, to_status=form.to_status.data or "",
                closure_reason=reason, expected_version=form.version.data,
                settings=settings(), now=now())

        _track, error = run(call)
        if error is None:
            return _saved(track_id, _("The status has been changed."))
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
            return redirect(url_for("relatives.track", track_id=track_id))
        form.reason.errors = [error_message(error)]
    return render_template("relatives/break_glass.html", form=form, track_id=track_id)


# --- plan goals and consents --------------------------------------------------------------------


@bp.route("/<uuid:track_id>/goals", methods=["POST"])
@requires("tracks.work")
def add_goal(track_id: uuid.UUID) -> Any:
    form = GoalForm()
    if form.validate_on_submit():
        _goal, error = run(lambda db: casework.add_plan_goal(
            db, actor=actor(), track_id=track_id, now=now(), goal=casework.GoalInput(
                life_domain=form.life_domain.data or "", goal=form.goal.data or "",
                target_on=form.target_on.data, status=form.status.data or "not_started")))
        if error is None:
            return _saved(track_id, _("The goal has been added to the plan."))
        form.form_errors.append(error_message(error))
    return track_page(track_id, goal_form=form)


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
        form.form_errors.append(error_message(error))
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
                recipient=form.recipient.data or None, scope=list(form.scope.data or []))))
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


# --- the link to a defector track ---------------------------------------------------------------


@bp.route("/<uuid:track_id>/link", methods=["POST"])
@requires("tracks.link")
def link(track_id: uuid.UUID) -> Any:
    form = LinkForm()
    if form.validate_on_submit():
        _link, error = run(lambda db: relatives.link_to_defector(
            db, actor=actor(), track_id=track_id, defector_code=form.defector_code.data or "",
            consent_form=form.consent_form.data or "", valid_from=form.valid_from.data,
            valid_to=form.valid_to.data, now=now()), shown=("link_not_found",))
        if error is None:
            return _saved(track_id, _("The track has been linked to the defector track."))
        form.form_errors.append(error_message(error))
    return track_page(track_id, link_form=form)


@bp.route("/<uuid:track_id>/link/remove", methods=["POST"])
@requires("tracks.link")
def unlink(track_id: uuid.UUID) -> Any:
    form = UnlinkForm()
    if form.validate_on_submit():
        _link, error = run(lambda db: relatives.unlink(
            db, actor=actor(), track_id=track_id, link_id=uuid.UUID(form.link_id.data),
            now=now()))
        if error is None:
            return _saved(track_id, _("The link has been removed."))
        form.form_errors.append(error_message(error))
    elif not form.form_errors:
        form.form_errors.append(_("Choose a link."))
    return track_page(track_id, unlink_form=form)


# --- team (coordinators) ------------------------------------------------------------------------


def _staff_form(form_class: Any) -> Any:
    form = form_class()
    candidates, _error = run(relative_queries.team_candidates)
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
