"""Track-page handlers both kinds share, each bound to one blueprint by a TrackPages."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable, Mapping
from typing import Any

from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_login import current_user
from sqlalchemy.orm import Session

from avhopp.casework import policy, queries, staff
from avhopp.casework import services as casework
from avhopp.casework.forms import (
    PAGE_SIZE,
    BreakGlassForm,
    CodeSearchForm,
    CorrectionForm,
    GoalStatusForm,
    IdentifierSearchForm,
    OwnerForm,
    RemoveMemberForm,
    RevokeConsentForm,
    StaffForm,
)
from avhopp.casework.queries import TrackFilter
from avhopp.db import request_session
from avhopp.errors import DomainError, ValidationError
from avhopp.permissions import role_has
from avhopp.security import now, reauthenticated_at, require_recent_auth
from avhopp.translation import gettext as _

# No routes: it lends its templates (casework/_*.html, the shared sections) and filters.
bp = Blueprint("casework", __name__, template_folder="templates")


def actor() -> Any:
    return current_user._get_current_object()


def settings() -> casework.CaseworkSettings:
    return casework.CaseworkSettings.from_config(current_app.config)


def local_zone() -> dt.tzinfo:
    # The organisation's local time zone (validated at start-up by the audit settings).
    return current_app.extensions["avhopp.audit"].zone  # type: ignore[no-any-return]


@bp.app_template_filter("local_time")
def _local_time(value: dt.datetime | None) -> str:
    return value.astimezone(local_zone()).strftime("%Y-%m-%d %H:%M") if value else ""


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


def shared_messages() -> dict[str, str]:
    """Clear messages for the refusals both kinds' services give (translated per request)."""
    return {
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
    }


def optional(form: Any, name: str) -> Any:
    """A field's value, or None when blank or when this kind's form has no such field."""
    field = getattr(form, name, None)
    return (field.data or None) if field is not None else None


def goal_input(form: Any) -> casework.GoalInput:
    """A plan goal from a goal form; the fields a kind's form does not ask for stay empty."""
    return casework.GoalInput(
        life_domain=form.life_domain.data or "", goal=form.goal.data or "",
        sub_goal=optional(form, "sub_goal"), intervention=optional(form, "intervention"),
        provider=optional(form, "provider"), start_on=optional(form, "start_on"),
        target_on=form.target_on.data, status=form.status.data or "not_started",
        agreed_on=optional(form, "agreed_on"))


def staff_choices(field: Any, candidates: list[Any]) -> None:
    field.choices = [("", _("Choose a staff member"))] + [
        (str(c.id), c.username) for c in candidates]


class LazyForm:
    """A form built on first use. A track page offers a dozen forms, most of which are shown
    only with the track's content; building them all cost about a tenth of the page. A form
    not yet built has, like a fresh one, no errors, so the page can ask without building it."""

    __slots__ = ("_build", "_form")

    def __init__(self, build: Callable[[], Any]) -> None:
        self._build = build
        self._form: Any = None

    def _get(self) -> Any:
        if self._form is None:
            self._form = self._build()
        return self._form

    @property
    def errors(self) -> Any:
        return {} if self._form is None else self._form.errors

    @property
    def form_errors(self) -> Any:
        return [] if self._form is None else self._form.form_errors

    def __getattr__(self, name: str) -> Any:
        return getattr(self._get(), name)

    def __getitem__(self, name: str) -> Any:
        return self._get()[name]

    def __iter__(self) -> Any:
        return iter(self._get())

    def __contains__(self, name: str) -> bool:
        return name in self._get()


# Reads another feature adds to a kind's track page, run in the page's one read transaction:
# relatives adds the codes of linked relative tracks to the defector page (cases may not
# import relatives). kind -> {name: read(session, *, actor, track_id, now)}.
_page_reads: dict[str, dict[str, Callable[..., Any]]] = {}


def add_page_read(kind: str, name: str, read: Callable[..., Any]) -> None:
    _page_reads.setdefault(kind, {})[name] = read


def page_reads(db: Session, *, kind: str, track_id: uuid.UUID) -> dict[str, Any]:
    """What other features add to a track page of `kind` (see add_page_read)."""
    return {name: read(db, actor=actor(), track_id=track_id, now=now())
            for name, read in _page_reads.get(kind, {}).items()}


def read_page(read: Callable[[Session], Any]) -> Any:
    """A track page's reads, in one transaction: a refusal ends the request (recorded)."""
    result, error = run(read)
    if error is not None:
        abort(error.status_code)
    return result


def lazy_forms(**builders: Callable[[], Any]) -> dict[str, LazyForm]:
    """The page's empty forms, each built only if the page uses it."""
    return {name: LazyForm(build) for name, build in builders.items()}


class TrackPages:
    """The shared handlers of one blueprint: `blueprint` names its endpoints and templates,
    `kind` is the only track kind its routes serve, `messages` adds the kind's own refusal
    texts, and the function registered with `track_page` renders its track page (with a form
    just posted, as posted)."""

    def __init__(self, blueprint: str, *, kind: str,
                 messages: Callable[[], Mapping[str, str]]) -> None:
        self.blueprint = blueprint
        self.kind = kind
        self.messages = messages
        self._page: Callable[..., Any] | None = None

    def track_page(self, page: Callable[..., Any]) -> Callable[..., Any]:
        """Decorator: the kind's track page, which the shared handlers render again when a
        posted form needs correcting."""
        self._page = page
        return page

    def page(self, track_id: uuid.UUID, **parts: Any) -> Any:
        if self._page is None:
            raise RuntimeError(f"{self.blueprint} has registered no track page")
        return self._page(track_id, **parts)

    def template(self, name: str) -> str:
        return f"{self.blueprint}/{name}"

    def track_url(self, track_id: uuid.UUID) -> str:
        return url_for(f"{self.blueprint}.track", track_id=track_id)

    def track_url_prefix(self) -> str:
        """The track page's URL without the id, so that a list builds its links by joining
        (url_for, once per row, was a tenth of a list page's CPU)."""
        sample = uuid.UUID(int=0)
        url = self.track_url(sample)
        if not url.endswith(str(sample)):
            raise RuntimeError(f"{self.blueprint}.track does not end with the track id")
        return url.removesuffix(str(sample))

    def only_this_kind(self) -> None:
        """Every route with a track id serves this kind only: another kind's id is answered as
        unknown (404) and the refusal recorded (casework.policy.require_kind)."""
        track_id = (request.view_args or {}).get("track_id")
        if isinstance(track_id, uuid.UUID) and current_user.is_authenticated:
            run(lambda db: policy.require_kind(db, actor=actor(), track_id=track_id,
                                               kind=self.kind, now=now()))

    def error_message(self, exc: DomainError) -> str:
        """A clear message for a refusal of a service (the service's own text is for
        developers, except identifier errors, which carry a Swedish message without the
        value)."""
        messages = {**shared_messages(), **self.messages()}
        if exc.code in messages:
            return messages[exc.code]
        if exc.code.startswith("invalid_") and exc.message:
            return exc.message  # from avhopp.identifiers: Swedish, never the value itself
        return _("The information could not be saved. Check the fields and try again.")

    def saved(self, track_id: uuid.UUID, message: str) -> Any:
        flash(message, "success")
        return redirect(self.track_url(track_id))

    def stale(self, error: DomainError, message: str) -> str:
        return message if error.code == "stale_version" else self.error_message(error)

    # --- lists, search, intake ------------------------------------------------------------------

    def track_list(self, scope: str, form: Any, filters: tuple[str, ...]) -> Any:
        """A page of this kind's tracks: mine or all, filtered by the form's `filters`."""
        page = None
        args: dict[str, Any] = {}
        if form.validate():
            args = {name: getattr(form, name).data for name in (*filters, "sort", "direction")
                    if getattr(form, name).data}
            number = form.page.data or 1
            lister = queries.my_tracks if scope == "mine" else queries.all_tracks
            flt = TrackFilter(kind=self.kind,
                              **{name: getattr(form, name).data or None for name in filters})
            page, error = run(lambda db: lister(
                db, actor=actor(), now=now(), limit=PAGE_SIZE, offset=(number - 1) * PAGE_SIZE,
                flt=flt, sort=form.sort.data or "opened_at",
                descending=form.direction.data != "asc"))
            if error is not None:
                form.form_errors.append(_("Correct the filter to see tracks."))
        return render_template(self.template("list.html"), form=form, page=page, scope=scope,
                               args=args, endpoint=request.endpoint,
                               track_url_prefix=self.track_url_prefix())

    def search(self) -> Any:
        code_form = CodeSearchForm(formdata=request.args if "code" in request.args else None)
        id_form = IdentifierSearchForm()
        codes = None
        not_found = False
        if request.method == "GET" and "code" in request.args and code_form.validate():
            row, _error = run(lambda db: queries.find_by_code(
                db, actor=actor(), code=code_form.code.data or "", now=now()))
            if row is not None and row.kind == self.kind:
                return redirect(self.track_url(row.id))
            not_found = True
        elif id_form.validate_on_submit():
            codes, error = run(lambda db: queries.find_by_identifier(
                db, actor=actor(), personnummer=id_form.personnummer.data or None,
                phone=id_form.phone.data or None, email=id_form.email.data or None, now=now(),
                kind=self.kind))
            if error is not None:
                id_form.form_errors.append(self.error_message(error))
        return render_template(self.template("search.html"), code_form=code_form,
                               id_form=id_form, codes=codes, not_found=not_found)

    def intake(self, form: Any, open_track: Callable[[Session], Any],
               opened: Callable[[str], str]) -> Any:
        """Open a track with `open_track`; `opened` says so with the new code."""
        duplicates: list[str] = []
        if form.validate_on_submit():
            db = request_session()
            try:
                track = open_track(db)
            except casework.PossibleDuplicate as exc:
                db.commit()  # the identifier search is audited
                duplicates = exc.codes
            except ValidationError as exc:
                # Intake may have flushed the person before a later check failed: keep nothing.
                db.rollback()
                form.form_errors.append(self.error_message(exc))
            except DomainError as exc:
                db.commit()
                abort(exc.status_code if exc.status_code in (403, 404) else 400)
            else:
                db.commit()
                flash(opened(track.code), "success")
                return redirect(self.track_url(track.id))
        return render_template(self.template("intake.html"), form=form, duplicates=duplicates)

    # --- the track page -------------------------------------------------------------------------

    def team_section(self, track_id: uuid.UUID, forms: dict[str, Any]) -> None:
        """For whoever may assign: the track's team, with its forms (a form just posted is kept,
        as posted)."""
        if role_has(actor().role, "tracks.assign"):
            forms.setdefault("staff_form", StaffForm(formdata=None))
            forms.setdefault("owner_form", OwnerForm(formdata=None))

            def read(db: Session) -> tuple[list[Any], list[Any]]:
                return (staff.team_candidates(db),
                        staff.team(db, actor=actor(), track_id=track_id, now=now()))

            (candidates, team), _error = run(read)
            staff_choices(forms["staff_form"].user_id, candidates)
            staff_choices(forms["owner_form"].owner_id, candidates)
            forms["team"] = team

    def add_journal(self, track_id: uuid.UUID, form: Any) -> Any:
        if form.validate_on_submit():
            occurred = form.occurred_at.data
            # Only a defector track's form names who may read an entry.
            named = getattr(form, "named_user_ids", None)
            named_ids = [uuid.UUID(u) for u in named.data or []] if named is not None else []
            _entry, error = run(lambda db: casework.add_journal_entry(
                db, actor=actor(), track_id=track_id, now=now(),
                occurred_at=occurred.replace(tzinfo=local_zone()) if occurred else None,
                contact_type=form.contact_type.data or "",
                contact_achieved=bool(form.contact_achieved.data), note=form.note.data or "",
                participants=form.participants.data or None,
                duration_minutes=form.duration_minutes.data,
                sensitivity=form.sensitivity.data or "normal", named_user_ids=named_ids))
            if error is None:
                return self.saved(track_id, _("The journal entry has been saved."))
            form.form_errors.append(self.error_message(error))
        return self.page(track_id, journal_form=form)

    def correct_journal(self, track_id: uuid.UUID) -> Any:
        form = CorrectionForm()
        if form.validate_on_submit():
            _entry, error = run(lambda db: casework.correct_journal_entry(
                db, actor=actor(), track_id=track_id, entry_id=uuid.UUID(form.entry_id.data),
                note=form.note.data or "", now=now()))
            if error is None:
                return self.saved(track_id, _("The correction has been saved as a new entry."))
            form.form_errors.append(self.error_message(error))
        flash(_("The correction could not be saved: write the corrected note and try again."),
              "error")
        return self.page(track_id, correction_form=form)

    def change_status(self, track_id: uuid.UUID, form: Any,
                      close: Callable[[Session, str], Any]) -> Any:
        """A new status; closing goes through the kind's `close` (which records its closing
        text too), given the closure reason."""
        if form.validate_on_submit():
            reason = form.closure_reason.data or None

            def call(db: Session) -> Any:
                if form.to_status.data == "closed":
                    return close(db, reason or "")
                return casework.change_status(
                    db, actor=actor(), track_id=track_id, to_status=form.to_status.data or "",
                    closure_reason=reason, expected_version=form.version.data,
                    settings=settings(), now=now())

            _track, error = run(call)
            if error is None:
                return self.saved(track_id, _("The status has been changed."))
            form.form_errors.append(self.error_message(error))
        return self.page(track_id, status_form=form)

    def break_glass(self, track_id: uuid.UUID) -> Any:
        step_up = require_recent_auth()
        if step_up is not None:
            return step_up
        form = BreakGlassForm()
        if form.validate_on_submit():
            _grant, error = run(lambda db: casework.break_glass(
                db, actor=actor(), track_id=track_id, reason=form.reason.data or "",
                reauthenticated_at=reauthenticated_at(), settings=settings(), now=now()))
            if error is None:
                flash(_("Emergency access has been granted for %(minutes)d minutes. It is shown "
                        "to the board.", minutes=settings().break_glass_minutes), "warning")
                return redirect(self.track_url(track_id))
            form.reason.errors = [self.error_message(error)]
        return render_template(self.template("break_glass.html"), form=form,
                               track_id=track_id)

    # --- plan and consents ----------------------------------------------------------------------

    def add_goal(self, track_id: uuid.UUID, form: Any) -> Any:
        if form.validate_on_submit():
            _goal, error = run(lambda db: casework.add_plan_goal(
                db, actor=actor(), track_id=track_id, now=now(), goal=goal_input(form)))
            if error is None:
                return self.saved(track_id, _("The goal has been added to the plan."))
            form.form_errors.append(self.error_message(error))
        return self.page(track_id, goal_form=form)

    def update_goal(self, track_id: uuid.UUID) -> Any:
        """A goal's new status (a stale version is explained in terms of the goal)."""
        form = GoalStatusForm()
        if form.validate_on_submit():
            _goal, error = run(lambda db: casework.update_plan_goal(
                db, actor=actor(), track_id=track_id, goal_id=uuid.UUID(form.goal_id.data),
                expected_version=form.version.data, changes={"status": form.status.data or ""},
                now=now()))
            if error is None:
                return self.saved(track_id, _("The goal's status has been changed."))
            form.form_errors.append(self.stale(error, _(
                "Someone else changed the goal meanwhile: nothing was saved. Show the content "
                "again, check the goal and try again.")))
        elif not form.form_errors:
            form.form_errors.append(_("The goal's status could not be changed: choose a status "
                                      "and try again."))
        return self.page(track_id, goal_status_form=form)

    def add_consent(self, track_id: uuid.UUID, form: Any) -> Any:
        if form.validate_on_submit():
            consent = casework.ConsentInput(
                consent_type=form.consent_type.data or "", form=form.form.data or "",
                valid_from=form.valid_from.data, valid_to=form.valid_to.data,
                recipient_agency=optional(form, "recipient_agency"),
                recipient=form.recipient.data or None, scope=list(form.scope.data or []),
                purpose=optional(form, "purpose"), withheld=optional(form, "withheld"))
            _consent, error = run(lambda db: casework.add_consent(
                db, actor=actor(), track_id=track_id, now=now(), consent=consent))
            if error is None:
                return self.saved(track_id, _("The consent has been recorded."))
            form.form_errors.append(self.error_message(error))
        return self.page(track_id, new_consent_form=form)

    def revoke_consent(self, track_id: uuid.UUID) -> Any:
        form = RevokeConsentForm()
        if form.validate_on_submit():
            _consent, error = run(lambda db: casework.revoke_consent(
                db, actor=actor(), track_id=track_id,
                consent_id=uuid.UUID(form.consent_id.data), now=now()))
            if error is None:
                return self.saved(track_id, _("The consent has been revoked."))
            form.form_errors.append(self.error_message(error))
        elif not form.form_errors:
            form.form_errors.append(_("Choose a consent."))
        return self.page(track_id, revoke_form=form)

    # --- team (coordinators) --------------------------------------------------------------------

    def _staff_form(self, form_class: Any) -> Any:
        """A posted staff choice, checked against the active workers (read here, not in the
        form)."""
        form = form_class()
        candidates, _error = run(staff.team_candidates)
        field = form.user_id if form_class is StaffForm else form.owner_id
        staff_choices(field, candidates)
        return form, field

    def add_member(self, track_id: uuid.UUID) -> Any:
        form, field = self._staff_form(StaffForm)
        if form.validate_on_submit():
            _member, error = run(lambda db: casework.add_team_member(
                db, actor=actor(), track_id=track_id, user_id=uuid.UUID(field.data), now=now()))
            if error is None:
                return self.saved(track_id, _("The staff member has been added to the team."))
            form.form_errors.append(_("That staff member is on the team already.")
                                    if error.code == "already_on_team"
                                    else self.error_message(error))
        return self.page(track_id, staff_form=form)

    def remove_member(self, track_id: uuid.UUID) -> Any:
        form = RemoveMemberForm()
        if form.validate_on_submit():
            _none, error = run(lambda db: casework.remove_team_member(
                db, actor=actor(), track_id=track_id, user_id=uuid.UUID(form.user_id.data),
                now=now()))
            if error is None:
                return self.saved(track_id, _("The staff member has been taken off the team."))
            form.form_errors.append(self.error_message(error))
        elif not form.form_errors:
            form.form_errors.append(_("Choose a staff member."))
        return self.page(track_id, remove_member_form=form)

    def change_owner(self, track_id: uuid.UUID) -> Any:
        form, field = self._staff_form(OwnerForm)
        if form.validate_on_submit():
            _track, error = run(lambda db: casework.change_owner(
                db, actor=actor(), track_id=track_id, user_id=uuid.UUID(field.data), now=now()))
            if error is None:
                return self.saved(track_id, _("The owner has been changed."))
            form.form_errors.append(self.error_message(error))
        return self.page(track_id, owner_form=form)
