"""Follow-up pages: Min dag, the coordinator's overview, planning a follow-up on a track, and
one follow-up's page (complete, reschedule, cancel); reminder preferences. Views parse a form,
call one service with the current user, commit (refusals too) and redirect."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable
from typing import Any

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    url_for,
)
from flask_login import current_user
from sqlalchemy.orm import Session
from wtforms import SelectChoice

from avhopp.db import request_session
from avhopp.errors import DomainError
from avhopp.followups import ical, queries
from avhopp.followups import services as followups
from avhopp.followups.forms import (
    CONTACT_TYPE_LABELS,
    KIND_LABELS,
    MODE_LABELS,
    RECURRENCE_LABELS,
    CancelForm,
    CompleteForm,
    PreferenceForm,
    RescheduleForm,
    ScheduleForm,
)
from avhopp.permissions import PUBLIC, requires
from avhopp.security import now
from avhopp.translation import gettext as _

bp = Blueprint("followups", __name__, template_folder="templates", url_prefix="/followups")

# The page of a track by its kind; a kind whose blueprint is absent falls back to Min dag.
TRACK_PAGES = {"defector": "cases.track", "relative": "relatives.track"}


def actor() -> Any:
    return current_user._get_current_object()


def settings() -> followups.FollowUpSettings:
    # Parsed once per app: the pages format many times per request.
    found = current_app.extensions.get("avhopp.followups")
    if found is None:
        found = current_app.extensions["avhopp.followups"] = \
            followups.FollowUpSettings.from_config(current_app.config)
    return found  # type: ignore[no-any-return]


def zone() -> dt.tzinfo:
    return settings().zone


@bp.app_context_processor
def _labels() -> dict[str, Any]:
    # Translated once per render, not once per table row (Min dag can list hundreds).
    return {"followup_labels": {
        name: {code: str(label) for code, label in labels.items()}
        for name, labels in (("kind", KIND_LABELS), ("recurrence", RECURRENCE_LABELS),
                             ("contact_type", CONTACT_TYPE_LABELS), ("mode", MODE_LABELS))}}


@bp.app_template_filter("followup_time")
def _followup_time(value: dt.datetime | None) -> str:
    return value.astimezone(zone()).strftime("%Y-%m-%d %H:%M") if value else ""


_PLACEHOLDER = uuid.UUID(int=0)


class _Links:
    """Links by id for long lists: url_for once per endpoint and request, then substitution
    (url_for per row was a third of Min dag's time with a few hundred rows)."""

    def __init__(self) -> None:
        self._patterns: dict[str, str] = {}

    def _pattern(self, endpoint: str, argument: str) -> str:
        if endpoint not in self._patterns:
            self._patterns[endpoint] = url_for(endpoint, **{argument: _PLACEHOLDER})
        return self._patterns[endpoint]

    def track(self, kind: str, track_id: uuid.UUID) -> str:
        endpoint = TRACK_PAGES.get(kind)
        if not endpoint or endpoint not in current_app.view_functions:
            return url_for("followups.my_day")
        return self._pattern(endpoint, "track_id").replace(str(_PLACEHOLDER), str(track_id))

    def follow_up(self, follow_up_id: uuid.UUID) -> str:
        return self._pattern("followups.follow_up", "follow_up_id").replace(
            str(_PLACEHOLDER), str(follow_up_id))

    def plan(self, track_id: uuid.UUID) -> str:
        return self._pattern("followups.new", "track_id").replace(
            str(_PLACEHOLDER), str(track_id))


def track_url(kind: str, track_id: uuid.UUID) -> str:
    return _Links().track(kind, track_id)


@bp.app_context_processor
def _links() -> dict[str, Any]:
    return {"followup_links": _Links()}


def error_message(exc: DomainError) -> str:
    messages = {
        "stale_version": _("Someone else changed the follow-up meanwhile. Reload the page "
                           "and try again."),
        "follow_up_closed": _("The follow-up has already been completed or cancelled."),
        "assignee": _("Choose an active staff member on the track's team."),
        "due_too_far": _("The due time is too far ahead."),
        "recurrence_rule": _("The custom rule is not valid: use e.g. FREQ=WEEKLY;INTERVAL=3, "
                             "at most one occurrence every twelve hours, without an end."),
        "reason_required": _("Give the reason in a sentence."),
        "note_required": _("Write a note."),
        "occurred_at": _("A journal entry records what has happened: the time cannot be in "
                         "the future."),
        "email": _("Give a single e-mail address."),
    }
    return messages.get(exc.code, _("The information could not be saved. Check the fields "
                                    "and try again."))


def run(call: Callable[[Session], Any]) -> tuple[Any, DomainError | None]:
    """Call one service and commit; a refusal is committed too (its audit event must stay).
    403 and 404 end the request."""
    db = request_session()
    try:
        result = call(db)
    except DomainError as exc:
        db.commit()
        if exc.status_code in (403, 404):
            abort(exc.status_code)
        return None, exc
    db.commit()
    return result, None


def _aware(local: dt.datetime | None) -> dt.datetime | None:
    return local.replace(tzinfo=zone()) if local is not None else None


def _local_now() -> dt.datetime:
    return now().astimezone(zone()).replace(tzinfo=None, second=0, microsecond=0)


# --- dashboards -------------------------------------------------------------------------------


@bp.route("/my-day")
@requires("tracks.work")
def my_day() -> Any:
    def read(db: Session) -> tuple[queries.MyDay, bool]:
        # One transaction for the page (on SQLite each one is a connection and a write lock).
        day = queries.my_day(db, actor=actor(), now=now(), settings=settings())
        preference = followups.preference_of(db, actor().id)
        return day, bool(preference is not None and preference.email)

    (day, has_address), _error = run(read)
    return render_template("followups/my_day.html", day=day, has_address=has_address,
                           track_url=track_url)


@bp.route("/overview")
@requires("tracks.list")
def overview() -> Any:
    view, _error = run(lambda db: queries.overview(db, actor=actor(), now=now(),
                                                   settings=settings()))
    return render_template("followups/overview.html", view=view, track_url=track_url)


# --- planning ---------------------------------------------------------------------------------


def _schedule_page(track_id: uuid.UUID, form: ScheduleForm | None = None,
                   status: int = 200) -> Any:
    (track, team), _error = run(lambda db: queries.track_header(
        db, actor=actor(), track_id=track_id, now=now()))
    if form is None:
        config = settings()
        form = ScheduleForm(
            formdata=None, kind="contact", assignee_id=str(actor().id),
            due_at=_local_now() + dt.timedelta(days=7),
            recurrence=followups.default_recurrence(track.risk_level, config),
            reminder_lead_hours=config.reminder_lead_minutes // 60,
            escalation_delay_hours=config.escalation_delay_minutes // 60)
    form.assignee_id.choices = [SelectChoice(str(i), name) for i, name in team]
    return render_template("followups/schedule.html", form=form, track=track,
                           track_url=track_url), status


@bp.route("/track/<uuid:track_id>/new")
@requires("tracks.work")
def new(track_id: uuid.UUID) -> Any:
    return _schedule_page(track_id)


@bp.route("/track/<uuid:track_id>/new", methods=["POST"])
@requires("tracks.work")
def schedule(track_id: uuid.UUID) -> Any:
    form = ScheduleForm()
    if form.validate_on_submit():
        _row, error = run(lambda db: followups.schedule(
            db, actor=actor(), track_id=track_id, kind=form.kind.data or "",
            assignee_id=uuid.UUID(form.assignee_id.data), due_at=_aware(form.due_at.data),
            recurrence=form.recurrence.data or "none",
            recurrence_rule=form.recurrence_rule.data or None,
            reminder_lead_minutes=int(form.reminder_lead_hours.data or 0) * 60,
            escalation_delay_minutes=int(form.escalation_delay_hours.data or 0) * 60,
            settings=settings(), now=now()))
        if error is None:
            flash(_("The follow-up has been planned."), "success")
            return redirect(url_for("followups.my_day"))
        field = {"assignee": form.assignee_id, "recurrence_rule": form.recurrence_rule,
                 "due_too_far": form.due_at, "due_at": form.due_at}.get(error.code)
        if field is not None:
            field.errors = [error_message(error)]
        else:
            form.form_errors.append(error_message(error))
    return _schedule_page(track_id, form, status=400)


# --- one follow-up ----------------------------------------------------------------------------


def _follow_up_page(follow_up_id: uuid.UUID, status: int = 200, **forms: Any) -> Any:
    row, _error = run(lambda db: queries.one(db, actor=actor(), follow_up_id=follow_up_id,
                                             now=now()))
    version = str(row.version)
    forms.setdefault("complete_form", CompleteForm(formdata=None, version=version,
                                                   occurred_at=_local_now()))
    # Prefixes: three forms on one page must not share field ids (labels point at ids).
    forms.setdefault("reschedule_form", RescheduleForm(
        formdata=None, prefix="move", version=version,
        due_at=row.due_at.astimezone(zone()).replace(tzinfo=None)))
    forms.setdefault("cancel_form", CancelForm(formdata=None, prefix="cancel", version=version))
    return render_template("followups/follow_up.html", row=row, track_url=track_url,
                           **forms), status


@bp.route("/<uuid:follow_up_id>")
@requires("tracks.work")
def follow_up(follow_up_id: uuid.UUID) -> Any:
    return _follow_up_page(follow_up_id)


def _done(message: str) -> Any:
    flash(message, "success")
    return redirect(url_for("followups.my_day"))


@bp.route("/<uuid:follow_up_id>/complete", methods=["POST"])
@requires("tracks.work")
def complete(follow_up_id: uuid.UUID) -> Any:
    form = CompleteForm()
    if form.validate_on_submit():
        result, error = run(lambda db: followups.complete(
            db, actor=actor(), follow_up_id=follow_up_id,
            outcome=followups.OutcomeInput(
                occurred_at=_aware(form.occurred_at.data),  # type: ignore[arg-type]
                contact_type=form.contact_type.data or "",
                contact_achieved=bool(form.contact_achieved.data), note=form.note.data or ""),
            expected_version=int(form.version.data), settings=settings(), now=now()))
        if error is None:
            _row, following = result
            return _done(_("The follow-up is done and the outcome is in the journal.")
                         + (" " + _("The next occurrence has been planned.")
                            if following is not None else ""))
        form.form_errors.append(error_message(error))
    return _follow_up_page(follow_up_id, status=400, complete_form=form)


@bp.route("/<uuid:follow_up_id>/reschedule", methods=["POST"])
@requires("tracks.work")
def reschedule(follow_up_id: uuid.UUID) -> Any:
    form = RescheduleForm(prefix="move")
    if form.validate_on_submit():
        _row, error = run(lambda db: followups.reschedule(
            db, actor=actor(), follow_up_id=follow_up_id,
            due_at=_aware(form.due_at.data),  # type: ignore[arg-type]
            reason=form.reason.data or "", expected_version=int(form.version.data),
            now=now()))
        if error is None:
            return _done(_("The follow-up has been moved."))
        form.form_errors.append(error_message(error))
    return _follow_up_page(follow_up_id, status=400, reschedule_form=form)


@bp.route("/<uuid:follow_up_id>/cancel", methods=["POST"])
@requires("tracks.work")
def cancel(follow_up_id: uuid.UUID) -> Any:
    form = CancelForm(prefix="cancel")
    if form.validate_on_submit():
        _row, error = run(lambda db: followups.cancel(
            db, actor=actor(), follow_up_id=follow_up_id, reason=form.reason.data or "",
            continue_series=bool(form.continue_series.data),
            expected_version=int(form.version.data), settings=settings(), now=now()))
        if error is None:
            return _done(_("The follow-up has been cancelled."))
        form.form_errors.append(error_message(error))
    return _follow_up_page(follow_up_id, status=400, cancel_form=form)


# --- preferences ------------------------------------------------------------------------------


@bp.route("/preferences", methods=["GET", "POST"])
@requires("tracks.work")
def preferences() -> Any:
    form = PreferenceForm()
    if form.validate_on_submit():
        _row, error = run(lambda db: followups.set_preference(
            db, actor=actor(), mode=form.mode.data or "immediate",
            email=form.email.data or None, now=now()))
        if error is None:
            flash(_("Your reminder settings have been saved."), "success")
            return redirect(url_for("followups.my_day"))
        form.email.errors = [error_message(error)]
    elif not form.is_submitted():
        current, _error = run(lambda db: followups.preference_of(db, actor().id))
        if current is not None:
            form.mode.data = current.mode
            form.email.data = current.email
    return render_template("followups/preferences.html", form=form,
                           has_calendar=_has_calendar()), (400 if form.errors else 200)


def _has_calendar() -> bool:
    current, _error = run(lambda db: followups.preference_of(db, actor().id))
    return bool(current is not None and current.calendar_token_hash)


# --- calendar feed ------------------------------------------------------------------------------

MAX_TOKEN_LENGTH = 100


@bp.route("/calendar/new", methods=["POST"])
@requires("tracks.work")
def new_calendar_link() -> Any:
    """Make (or replace) the caller's calendar link and show it once."""
    token, _error = run(lambda db: followups.create_calendar_link(db, actor=actor(),
                                                                  now=now()))
    link = url_for("followups.calendar", token=token, _external=True)
    return render_template("followups/preferences.html", form=PreferenceForm(formdata=None),
                           has_calendar=True, calendar_link=link)


@bp.route("/calendar/revoke", methods=["POST"])
@requires("tracks.work")
def revoke_calendar_link() -> Any:
    run(lambda db: followups.revoke_calendar_link(db, actor=actor(), now=now()))
    flash(_("The calendar link no longer works."), "success")
    return redirect(url_for("followups.preferences"))


@bp.route("/calendar/<token>.ics")
@requires(PUBLIC)
def calendar(token: str) -> Any:
    """The feed a calendar program polls: the secret token is the credential (no login), and
    the feed holds track codes and due times only. Unknown, revoked or malformed: 404."""
    if len(token) > MAX_TOKEN_LENGTH:
        abort(404)
    rows, _error = run(lambda db: queries.calendar(db, token=token, now=now()))
    if rows is None:
        abort(404)
    body = ical.render(rows, now=now(), link=url_for("followups.my_day", _external=True))
    response = Response(body, mimetype="text/calendar")
    response.headers["Cache-Control"] = "no-store"
    return response
