"""Relative track pages (anhörigärenden): lists, search, intake, the track page with content on
request, the relative's own sections, journal, plan, consents, the link to a defector track,
status, team and break-glass. Views parse a form, call a service with the current user as
actor, commit and redirect; every decision about access is the services'. The handlers both
track kinds share are avhopp.casework.views'; the routes stay here.

Every route with a track id serves relative tracks only (a defector track's id is answered as
unknown and the refusal recorded), so nothing of a defector track shows here, and the defector
pages refuse relative tracks the same way.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from flask import Blueprint, render_template, request
from sqlalchemy.orm import Session

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
    STATUS_LABELS,
    TEAM_SENSITIVITY_LABELS,
    ConsentForm,
    ContentForm,
    CorrectionForm,
    GoalForm,
    GoalStatusForm,
    JournalForm,
    ListForm,
    RemoveMemberForm,
    RevokeConsentForm,
)
from avhopp.casework.views import (
    TrackPages,
    actor,
    add_page_read,
    lazy_forms,
    local_zone,
    read_page,
    run,
    settings,
)
from avhopp.followups import queries as followup_queries
from avhopp.permissions import requires
from avhopp.relatives import queries as relative_queries
from avhopp.relatives import services as relatives
from avhopp.relatives.forms import (
    EXIT_ROLE_LABELS,
    NEED_LABELS,
    PERCEIVED_ENVIRONMENT_LABELS,
    PROTECTED_LABELS,
    RELATION_LABELS,
    SIGN_LABELS,
    YES_NO_LABELS,
    CaseForm,
    IntakeForm,
    LinkForm,
    StatusForm,
    UnlinkForm,
)
from avhopp.security import now
from avhopp.translation import gettext as _

bp = Blueprint("relatives", __name__, template_folder="templates", url_prefix="/relatives")

LABELS = {
    "status": STATUS_LABELS, "referral": REFERRAL_LABELS, "closure": CLOSURE_LABELS,
    "contact_type": CONTACT_TYPE_LABELS, "sensitivity": TEAM_SENSITIVITY_LABELS,
    "purpose": PURPOSE_LABELS, "life_domain": LIFE_DOMAIN_LABELS,
    "goal_status": GOAL_STATUS_LABELS, "consent_type": CONSENT_TYPE_LABELS,
    "consent_form": CONSENT_FORM_LABELS, "category": CATEGORY_LABELS,
    "relation": RELATION_LABELS, "environment": PERCEIVED_ENVIRONMENT_LABELS,
    "sign": SIGN_LABELS, "need": NEED_LABELS, "exit_role": EXIT_ROLE_LABELS,
    "yes_no": YES_NO_LABELS, "protected": PROTECTED_LABELS,
}


def _own_messages() -> dict[str, str]:
    """The refusals only relative tracks give (the link, the person of concern); the shared
    ones are casework.views.shared_messages."""
    return {
        "already_linked": _("The tracks are linked already."),
        "link_not_found": _("No defector track with that code that you may link to."),
        "concern_birth_year": _("Give a possible birth year."),
    }


pages = TrackPages("relatives", kind="relative", messages=_own_messages)


@bp.app_context_processor
def _labels() -> dict[str, Any]:
    return {"relative_labels": LABELS}


def _linked_relative_codes(db: Session, *, actor: Any, track_id: uuid.UUID,
                           now: dt.datetime) -> list[str]:
    """For the defector track page: codes of its linked relative tracks (link shown only while
    the relative's consent is in force). Only the codes: nothing else of those tracks."""
    return relative_queries.linked_relative_codes(db, actor=actor, defector_track_id=track_id,
                                                  now=now)


add_page_read("defector", "relative_codes", _linked_relative_codes)


@bp.before_request
def _relative_tracks_only() -> None:
    """A defector track's id on a relative route is answered as unknown (recorded)."""
    pages.only_this_kind()


# --- lists and search ---------------------------------------------------------------------------


@bp.route("/mine")
@requires("tracks.work")
def mine() -> Any:
    return pages.track_list("mine", ListForm(formdata=request.args), ("status",))


@bp.route("/all")
@requires("tracks.list")
def all_tracks() -> Any:
    return pages.track_list("all", ListForm(formdata=request.args), ("status",))


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
        return relatives.open_relative_track(
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

    return pages.intake(form, open_track,
                        lambda code: _("The relative track %(code)s has been opened.", code=code))


# --- the track page -----------------------------------------------------------------------------


@pages.track_page
def track_page(track_id: uuid.UUID, *, status: int = 200, **parts: Any) -> Any:
    def read(db: Session) -> tuple[Any, ...]:
        return (relative_queries.relative_track_row(db, actor=actor(), track_id=track_id,
                                                    now=now()),
                relative_queries.linked_defector_codes(db, actor=actor(), track_id=track_id,
                                                       now=now()),
                followup_queries.for_track(db, actor=actor(), track_id=track_id, now=now()))

    row, links, followups_section = read_page(read)
    local_now = now().astimezone(local_zone()).replace(tzinfo=None, second=0, microsecond=0)
    forms: dict[str, Any] = lazy_forms(
        content_form=lambda: ContentForm(formdata=None),
        journal_form=lambda: JournalForm(formdata=None, occurred_at=local_now),
        correction_form=lambda: CorrectionForm(formdata=None),
        status_form=lambda: StatusForm(formdata=None, version=row.version),
        goal_form=lambda: GoalForm(formdata=None),
        goal_status_form=lambda: GoalStatusForm(formdata=None),
        new_consent_form=lambda: ConsentForm(formdata=None, valid_from=local_now.date()),
        revoke_form=lambda: RevokeConsentForm(formdata=None),
        link_form=lambda: LinkForm(formdata=None, valid_from=local_now.date()),
        unlink_form=lambda: UnlinkForm(formdata=None),
        remove_member_form=lambda: RemoveMemberForm(formdata=None),
    )
    forms.update(parts)
    # The follow-up section (the same partial as on the defector page).
    forms["followups_section"] = followups_section
    relative = parts.get("relative")
    if relative is not None and "case_form" not in parts:
        forms["case_form"] = _case_form(relative)
    pages.team_section(track_id, forms)
    return render_template("relatives/track.html", row=row, links=links, **forms), status


def _case_form(relative: relatives.RelativeContent) -> CaseForm:
    values: dict[str, Any] = {"relation": relative.relation, "version": relative.case_version}
    for section in (relative.contact, relative.concern, relative.situation, relative.needs):
        values.update(section or {})
    return CaseForm(formdata=None, data={k: v for k, v in values.items() if v is not None})


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
        form.purpose.errors = [pages.error_message(error)]
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
            return pages.saved(track_id, _("The relative's information has been saved."))
        form.form_errors.append(pages.error_message(error))
    return track_page(track_id, case_form=form)


@bp.route("/<uuid:track_id>/journal", methods=["POST"])
@requires("tracks.work")
def add_journal(track_id: uuid.UUID) -> Any:
    return pages.add_journal(track_id, JournalForm())


@bp.route("/<uuid:track_id>/journal/correct", methods=["POST"])
@requires("tracks.work")
def correct_journal(track_id: uuid.UUID) -> Any:
    return pages.correct_journal(track_id)


@bp.route("/<uuid:track_id>/status", methods=["POST"])
@requires("tracks.work")
def change_status(track_id: uuid.UUID) -> Any:
    form = StatusForm()

    def close(db: Session, reason: str) -> Any:
        return relatives.close_relative_track(
            db, actor=actor(), track_id=track_id, closure_reason=reason,
            closing_note=form.closing_note.data or None, settings=settings(), now=now())

    return pages.change_status(track_id, form, close)


@bp.route("/<uuid:track_id>/break-glass", methods=["GET", "POST"])
@requires("tracks.break_glass")
def break_glass(track_id: uuid.UUID) -> Any:
    return pages.break_glass(track_id)


# --- plan goals and consents --------------------------------------------------------------------


@bp.route("/<uuid:track_id>/goals", methods=["POST"])
@requires("tracks.work")
def add_goal(track_id: uuid.UUID) -> Any:
    return pages.add_goal(track_id, GoalForm())


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
            return pages.saved(track_id, _("The track has been linked to the defector track."))
        form.form_errors.append(pages.error_message(error))
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
            return pages.saved(track_id, _("The link has been removed."))
        form.form_errors.append(pages.error_message(error))
    elif not form.form_errors:
        form.form_errors.append(_("Choose a link."))
    return track_page(track_id, unlink_form=form)


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
