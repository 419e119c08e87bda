"""Data-protection pages: erasure with four-eyes approval, register extracts, retention review."""

from __future__ import annotations

import json
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
from sqlalchemy import select
from sqlalchemy.orm import Session

from avhopp.accounts.models import User
from avhopp.casework.forms import PURPOSE_LABELS, STATUS_LABELS
from avhopp.casework.models import Track
from avhopp.db import get_database, request_session
from avhopp.encryption.services import compact_after_erasure
from avhopp.errors import DomainError
from avhopp.permissions import requires
from avhopp.privacy import erasure, extract, labels, retention
from avhopp.privacy.forms import (
    EXTEND_LABELS,
    GROUND_LABELS,
    STATE_LABELS,
    ButtonForm,
    EraseForm,
    ExtendForm,
)
from avhopp.privacy.models import ErasureRequest
from avhopp.security import now, reauthenticated_at, require_recent_auth
from avhopp.translation import gettext as _

bp = Blueprint("privacy", __name__, template_folder="templates", url_prefix="/privacy")


def actor() -> Any:
    return current_user._get_current_object()


def _erasure_settings() -> erasure.ErasureSettings:
    return erasure.ErasureSettings(reauth_minutes=int(current_app.config["REAUTH_MINUTES"]))


MESSAGES = {
    "reauth_required": lambda: _("Confirm your password first."),
    "confirm_mismatch": lambda: _("The code you typed is not this track's code."),
    "already_requested": lambda: _("An erasure of this person is already requested."),
    "already_erased": lambda: _("This person has already been erased."),
    "four_eyes": lambda: _("Another coordinator must approve the erasure you asked for."),
    "not_pending": lambda: _("The request is no longer waiting for approval."),
    "extend_date": lambda: _("The new date must be later than the current one."),
    "not_closed": lambda: _("Only closed tracks have a retention date."),
}


def message(exc: DomainError) -> str:
    found = MESSAGES.get(exc.code)
    return found() if found else _("The action could not be carried out.")


def run(call: Callable[[Session], Any]) -> tuple[Any, DomainError | None]:
    """Call one service and commit; a refusal is committed too (its denied event persists)."""
    db = request_session()
    try:
        result = call(db)
    except DomainError as exc:
        db.commit()
        if exc.status_code == 404:
            abort(404)
        return None, exc
    db.commit()
    return result, None


def _track(track_id: uuid.UUID) -> Track:
    track = request_session().get(Track, track_id)
    if track is None:
        abort(404)
    return track


def _usernames(ids: set[uuid.UUID | None]) -> dict[uuid.UUID, str]:
    wanted = [i for i in ids if i is not None]
    if not wanted:
        return {}
    rows = request_session().execute(select(User.id, User.username).where(User.id.in_(wanted)))
    return {r.id: r.username for r in rows}


@bp.app_context_processor
def _privacy_labels() -> dict[str, Any]:
    return {"privacy_labels": {"ground": GROUND_LABELS, "state": STATE_LABELS,
                               "extend": EXTEND_LABELS}}


# --- overview and erasure -----------------------------------------------------------------------


@bp.route("/")
@requires("privacy.erase")
def index() -> Any:
    db = request_session()
    requests = erasure.requests(db)
    tracks = {t.person_id: t.code for t in db.scalars(select(Track).where(
        Track.person_id.in_([r.person_id for r in requests])))} if requests else {}
    names = _usernames({r.requested_by for r in requests} | {r.approved_by for r in requests})
    return render_template("privacy/index.html", requests=requests, tracks=tracks, names=names)


@bp.route("/tracks/<uuid:track_id>/erase", methods=["GET", "POST"])
@requires("privacy.erase")
def erase(track_id: uuid.UUID) -> Any:
    step_up = require_recent_auth()
    if step_up is not None:
        return step_up
    track = _track(track_id)
    form = EraseForm()
    if form.validate_on_submit():
        request_row, error = run(lambda db: erasure.request_erasure(
            db, actor=actor(), track_id=track_id, ground=form.ground.data or "",
            confirm_code=form.confirm_code.data or "",
            reauthenticated_at=reauthenticated_at(), settings=_erasure_settings(), now=now()))
        if error is None:
            flash(_("The erasure has been requested. Another coordinator must approve it."),
                  "success")
            return redirect(url_for("privacy.erasure_request", request_id=request_row.id))
        form.form_errors.append(message(error))
    others = [t.code for t in erasure.tracks_of(request_session(), track.person_id)]
    return render_template("privacy/erase.html", form=form, track=track, codes=others)


def _request_page(request_id: uuid.UUID, form: ButtonForm | None = None) -> Any:
    db = request_session()
    row = db.get(ErasureRequest, request_id)
    if row is None:
        abort(404)
    codes = [t.code for t in erasure.tracks_of(db, row.person_id)]
    names = _usernames({row.requested_by, row.approved_by, row.cancelled_by})
    return render_template("privacy/request.html", row=row, codes=codes, names=names,
                           form=form or ButtonForm(), me=current_user.id)


@bp.route("/erasures/<uuid:request_id>")
@requires("privacy.erase")
def erasure_request(request_id: uuid.UUID) -> Any:
    return _request_page(request_id)


@bp.route("/erasures/<uuid:request_id>/approve", methods=["GET", "POST"])
@requires("privacy.erase")
def approve(request_id: uuid.UUID) -> Any:
    step_up = require_recent_auth()
    if step_up is not None:
        return step_up
    form = ButtonForm()
    if not form.validate_on_submit():
        return _request_page(request_id, form)
    row, error = run(lambda db: erasure.approve_erasure(
        db, actor=actor(), request_id=request_id, reauthenticated_at=reauthenticated_at(),
        settings=_erasure_settings(), now=now()))
    if error is not None:
        form.form_errors.append(message(error))
        return _request_page(request_id, form)
    if row.state == "executed":
        # The WAL still holds the destroyed key bytes until it is folded into the file.
        compact_after_erasure(get_database().engine)
        flash(_("The person has been erased. The receipt is in the audit log."), "success")
    else:
        flash(_("The erasure is approved and runs on its date."), "success")
    return redirect(url_for("privacy.erasure_request", request_id=request_id))


@bp.route("/erasures/<uuid:request_id>/cancel", methods=["POST"])
@requires("privacy.erase")
def cancel(request_id: uuid.UUID) -> Any:
    form = ButtonForm()
    if form.validate_on_submit():
        _row, error = run(lambda db: erasure.cancel_erasure(
            db, actor=actor(), request_id=request_id, now=now()))
        if error is None:
            flash(_("The erasure request has been cancelled."), "success")
            return redirect(url_for("privacy.erasure_request", request_id=request_id))
        form.form_errors.append(message(error))
    return _request_page(request_id, form)


# --- register extract ---------------------------------------------------------------------------


def _extract(track_id: uuid.UUID, fmt: str) -> Any:
    _track(track_id)
    result, error = run(lambda db: extract.register_extract(
        db, actor=actor(), track_id=track_id, reauthenticated_at=reauthenticated_at(),
        reauth_minutes=int(current_app.config["REAUTH_MINUTES"]), fmt=fmt, now=now()))
    if error is not None:
        abort(403)
    return result


@bp.route("/tracks/<uuid:track_id>/extract")
@requires("privacy.extract")
def extract_page(track_id: uuid.UUID) -> Any:
    step_up = require_recent_auth()
    if step_up is not None:
        return step_up
    result = _extract(track_id, "html")
    response = Response(render_template(
        "privacy/extract.html", extract=result, track_id=track_id, labels=labels,
        purposes=PURPOSE_LABELS, statuses=STATUS_LABELS))
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.route("/tracks/<uuid:track_id>/extract.json")
@requires("privacy.extract")
def extract_json(track_id: uuid.UUID) -> Any:
    step_up = require_recent_auth()
    if step_up is not None:
        return step_up
    result = _extract(track_id, "json")
    body = json.dumps(result.as_json(), ensure_ascii=False, indent=2)
    return Response(body, mimetype="application/json", headers={
        "Content-Disposition": 'attachment; filename="registerutdrag.json"',
        "Cache-Control": "no-store"})


# --- retention review ---------------------------------------------------------------------------


@bp.route("/retention")
@requires("privacy.retention")
def retention_review() -> Any:
    db = request_session()
    rows = retention.review_list(db, now=now())
    return render_template("privacy/retention.html", rows=rows, form=ButtonForm(),
                           extend_form=ExtendForm())


@bp.route("/retention/<uuid:track_id>/extend", methods=["POST"])
@requires("privacy.retention")
def retention_extend(track_id: uuid.UUID) -> Any:
    form = ExtendForm()
    if form.validate_on_submit() and form.until.data is not None:
        until = form.until.data
        _row, error = run(lambda db: retention.extend(
            db, actor=actor(), track_id=track_id, until=until,
            reason=form.reason.data or "", now=now()))
        if error is None:
            flash(_("The retention date has been moved."), "success")
            return redirect(url_for("privacy.retention_review"))
        flash(message(error), "error")
    else:
        flash(_("Choose a date and a reason."), "error")
    return redirect(url_for("privacy.retention_review"))


@bp.route("/retention/<uuid:track_id>/erase", methods=["POST"])
@requires("privacy.retention")
def retention_erase(track_id: uuid.UUID) -> Any:
    form = ButtonForm()
    if form.validate_on_submit():
        row, error = run(lambda db: retention.propose_erasure(
            db, actor=actor(), track_id=track_id, now=now()))
        if error is None:
            flash(_("The erasure has been requested. Another coordinator must approve it; "
                    "it runs on the retention date."), "success")
            return redirect(url_for("privacy.erasure_request", request_id=row.id))
        flash(message(error), "error")
    return redirect(url_for("privacy.retention_review"))
