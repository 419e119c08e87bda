"""The board's review of the audit log: entries, flags, CSV and print, checkpoints, proofs,
verification and sign-off. Every page view is itself recorded before the page is built."""

from __future__ import annotations

import base64
import csv
import datetime as dt
import io
from collections.abc import Iterator
from typing import Any

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    stream_with_context,
    url_for,
)
from flask.blueprints import BlueprintSetupState
from flask_login import current_user
from wtforms import SelectChoice

from avhopp.accounts.forms import ROLE_LABELS
from avhopp.audit import queries, services
from avhopp.audit.forms import (
    FLAG_LABELS,
    MAX_SEQ,
    OUTCOME_LABELS,
    ButtonForm,
    FilterForm,
    ProofForm,
    SignOffForm,
)
from avhopp.audit.note import Verifier
from avhopp.audit.policy import REVIEW_PERMISSION, AuditSettings
from avhopp.db import get_database, request_session
from avhopp.errors import ValidationError
from avhopp.permissions import requires
from avhopp.security import now, recently_authenticated
from avhopp.translation import gettext as _
from avhopp.translation import lazy_gettext as _l

bp = Blueprint("audit", __name__, template_folder="templates", url_prefix="/audit")

PRINT_MAX_ROWS = 2000
FILTER_FIELDS = ("date_from", "date_to", "actor", "action", "outcome", "object_code", "flag")
CSV_HEADER = (
    _l("Entry"), _l("Time (UTC)"), _l("Local time"), _l("Staff member"), _l("Role"),
    _l("Action"), _l("Object type"), _l("Object code or id"), _l("Outcome"), _l("Purpose"),
    _l("Details"), _l("Request"), _l("Flags"),
)
# Spreadsheet programs run a cell that starts with one of these as a formula (SECURITY.md B7).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


@bp.record_once
def _load_settings(state: BlueprintSetupState) -> None:
    # Checked when the app is created, so a bad setting stops start-up with a clear message.
    state.app.extensions["avhopp.audit"] = AuditSettings.from_config(state.app.config)


@bp.app_template_filter("b64")
def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


PROBLEM_LABELS = {
    "gap": _l("Entries are missing from the sequence."),
    "bad_seq": _l("An entry has an impossible number."),
    "leaf_mismatch": _l("The entry was changed after it was written."),
    "unreadable": _l("The entry has a field that cannot be read: it was changed."),
    "redacted_payload": _l("The entry is marked as redacted but still has content."),
    "bad_leaf": _l("The entry's stored fingerprint is damaged."),
    "truncated": _l("Entries at the end of the log were removed."),
    "head_behind": _l("The entry counter is behind the log."),
    "no_head": _l("The entry counter is missing."),
    "unrecorded_redaction": _l("Entries were redacted without a recorded redaction."),
    "checkpoint_invalid": _l("A stored checkpoint is damaged or not signed with the key."),
    "witness_invalid": _l("A saved checkpoint is damaged or not signed with the key."),
    "checkpoint_mismatch": _l("A checkpoint does not match the log: entries were rewritten."),
    "signoff_mismatch": _l("A sign-off does not match the log as it is now."),
}


def settings() -> AuditSettings:
    return current_app.extensions["avhopp.audit"]  # type: ignore[no-any-return]


def verifier() -> Verifier:
    return settings().verifier(current_app.extensions["avhopp.keys"])


def _me() -> Any:
    return current_user._get_current_object()


def _int_arg(name: str) -> int | None:
    raw = request.args.get(name, "")
    if not raw.isascii() or not raw.isdigit() or len(raw) > 18:
        return None
    value = int(raw)
    return value if 0 <= value <= MAX_SEQ else None


def _record_view(page: str) -> None:
    """Record the view and commit it before anything from the log is loaded or shown."""
    db = request_session()
    services.record_view(db, actor=_me(), page=page, now=now())
    db.commit()


# --- filters --------------------------------------------------------------------------------


def _filter_form() -> FilterForm:
    db = request_session()
    form = FilterForm(formdata=request.args)
    form.actor.choices = [SelectChoice("", _("Anyone"))] + [
        SelectChoice(str(user_id), name) for user_id, name in queries.staff_choices(db, actor=_me())
    ]
    form.action.choices = [SelectChoice("", _("Any action"))] + [
        SelectChoice(a) for a in sorted(services.ACTIONS)]
    return form


def _local_midnight(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(), tzinfo=settings().zone).astimezone(dt.UTC)


def _event_filter(form: FilterForm) -> queries.EventFilter:
    import uuid

    return queries.EventFilter(
        since=_local_midnight(form.date_from.data) if form.date_from.data else None,
        until=(_local_midnight(form.date_to.data + dt.timedelta(days=1))
               if form.date_to.data else None),
        actor_id=uuid.UUID(form.actor.data) if form.actor.data else None,
        action=form.action.data or None,
        outcome=form.outcome.data or None,
        object_code=(form.object_code.data or "").strip() or None,
        flag=form.flag.data or None,
    )


def _filter_args() -> dict[str, str]:
    """The filter as given, for links that keep it (paging, print, export)."""
    return {k: request.args[k] for k in FILTER_FIELDS if request.args.get(k)}


def _page_context(form: FilterForm, flt: queries.EventFilter | None) -> dict[str, Any]:
    return {
        "form": form,
        "flt": flt,
        "filter_args": _filter_args(),
        "flag_labels": FLAG_LABELS,
        "outcome_labels": OUTCOME_LABELS,
        "role_labels": ROLE_LABELS,
        "timezone": settings().timezone,
    }


@bp.route("/")
@requires(REVIEW_PERMISSION)
def events() -> Any:
    _record_view("events")
    db = request_session()
    form = _filter_form()
    flt = _event_filter(form) if form.validate() else None
    page = queries.EventPage([], None, None)
    if flt is not None:
        page = queries.page_events(
            db, actor=_me(), flt=flt, settings=settings(), actions=tuple(services.ACTIONS),
            before=_int_arg("before"), after=_int_arg("after"),
        )
    return render_template(
        "audit/events.html",
        page=page,
        log_size=queries.log_size(db),
        latest=services.latest_checkpoint(db),
        button_form=ButtonForm(),
        **_page_context(form, flt),
    )


@bp.route("/print")
@requires(REVIEW_PERMISSION)
def print_view() -> Any:
    _record_view("print")
    db = request_session()
    form = _filter_form()
    if not form.validate():
        return redirect(url_for("audit.events", **_filter_args()))
    flt = _event_filter(form)
    page = queries.page_events(db, actor=_me(), flt=flt, settings=settings(),
                               actions=tuple(services.ACTIONS), limit=PRINT_MAX_ROWS)
    return render_template(
        "audit/print.html",
        page=page,
        truncated=page.older_before is not None,
        max_rows=PRINT_MAX_ROWS,
        log_size=queries.log_size(db),
        latest=services.latest_checkpoint(db),
        signoffs=queries.list_signoffs(db, actor=_me(), limit=10),
        printed_at=now().astimezone(settings().zone),
        viewer=_me().username,
        **_page_context(form, flt),
    )


def csv_cell(value: Any) -> str:
    """A CSV cell that a spreadsheet shows as text, never runs as a formula."""
    text = "" if value is None else str(value)
    if text.startswith(FORMULA_STARTS):
        return "'" + text
    return text


def _csv_lines(rows: Iterator[queries.EventRow]) -> Iterator[str]:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    # The byte-order mark makes spreadsheet programs read the file as UTF-8.
    writer.writerow([csv_cell(str(label)) for label in CSV_HEADER])
    yield "\ufeff" + buffer.getvalue()
    for row in rows:
        buffer.seek(0)
        buffer.truncate()
        details = ", ".join(f"{k}={v}" for k, v in sorted(row.details.items()))
        writer.writerow([csv_cell(value) for value in (
            row.seq,
            row.occurred_at.isoformat(timespec="seconds"),
            row.local_time.strftime("%Y-%m-%d %H:%M:%S"),
            row.username, row.actor_role, row.action, row.object_type, row.object_id,
            row.outcome, row.purpose, details, row.request_id, " ".join(row.flags),
        )])
        yield buffer.getvalue()


@bp.route("/export", methods=["POST"])
@requires(REVIEW_PERMISSION)
def export() -> Any:
    if not ButtonForm().validate_on_submit():
        abort(400)
    if not recently_authenticated():
        # Step-up before exports (SECURITY.md S5); come back to the same filtered list.
        return redirect(url_for("accounts.reauthenticate",
                                next=url_for("audit.events", **_filter_args())))
    db = request_session()
    form = _filter_form()
    if not form.validate():
        return redirect(url_for("audit.events", **_filter_args()))
    flt = _event_filter(form)
    actions = tuple(services.ACTIONS)
    actor = _me()
    upto = queries.log_size(db)
    count = queries.count_events(db, actor=actor, flt=flt, settings=settings(), actions=actions)
    services.record_export(db, actor=actor, kind="csv", count=count, now=now())
    db.commit()  # recorded before a single row leaves the server
    audit_settings = settings()

    def generate() -> Iterator[str]:
        # Its own session: the request's is closed before a streamed body is sent. Read-mostly,
        # so on SQLite a long export does not hold the write lock.
        session = get_database().read_factory()
        try:
            yield from _csv_lines(queries.iter_events(
                session, actor=actor, flt=flt, settings=audit_settings, actions=actions,
                upto=upto, pause=session.rollback))
        finally:
            session.close()

    stamp = now().astimezone(audit_settings.zone).strftime("%Y%m%d-%H%M")
    return Response(
        stream_with_context(generate()),
        mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="audit-{stamp}.csv"'},
    )


# --- checkpoints and proofs -----------------------------------------------------------------


@bp.route("/checkpoints")
@requires(REVIEW_PERMISSION)
def checkpoints() -> Any:
    _record_view("checkpoints")
    db = request_session()
    found, older = queries.list_checkpoints(db, actor=_me(), before_size=_int_arg("before"))
    return render_template(
        "audit/checkpoints.html",
        checkpoints=found,
        older=older,
        log_size=queries.log_size(db),
        vkey=verifier().vkey,
        origin=settings().origin,
        proof_form=ProofForm(),
        zone=settings().zone,
    )


def _text_file(body: str, filename: str) -> Response:
    return Response(body, mimetype="text/plain",
                    headers={"Content-Disposition": f'attachment; filename="{filename}"'})


def _checkpoint_download(size: int | None) -> Any:
    db = request_session()
    checkpoint = services.checkpoint_for_download(db, actor=_me(), size=size, now=now())
    if checkpoint is None:
        abort(404)
    db.commit()  # the download is recorded before the file is sent
    return _text_file(checkpoint.note, f"checkpoint-{checkpoint.size}.txt")


@bp.route("/checkpoints/latest.txt")
@requires(REVIEW_PERMISSION)
def checkpoint_latest() -> Any:
    return _checkpoint_download(None)


@bp.route("/checkpoints/<size>.txt")
@requires(REVIEW_PERMISSION)
def checkpoint_file(size: str) -> Any:
    # A plain string in the route, parsed here: anything but digits is simply not found.
    if not (size.isascii() and size.isdigit() and len(size) <= 18):
        abort(404)
    return _checkpoint_download(int(size))


@bp.route("/proof", methods=["POST"])
@requires(REVIEW_PERMISSION)
def proof_file() -> Any:
    form = ProofForm()
    if not form.validate_on_submit():
        flash(_("Enter the size of the checkpoint you kept (a whole number)."), "error")
        return redirect(url_for("audit.checkpoints"))
    db = request_session()
    try:
        new_size, proof = services.consistency_proof(
            db, actor=_me(), old_size=form.old_size.data, now=now())
    except (ValidationError, services.AuditError):
        db.rollback()
        flash(_("No proof can be made from that size. It must not be larger than the latest "
                "checkpoint."), "error")
        return redirect(url_for("audit.checkpoints"))
    db.commit()
    return _text_file(services.format_proof(proof),
                      f"proof-{form.old_size.data}-{new_size}.txt")


# --- verification and sign-off --------------------------------------------------------------


@bp.route("/verify", methods=["GET", "POST"])
@requires(REVIEW_PERMISSION)
def verify() -> Any:
    form = ButtonForm()
    report = None
    db = request_session()
    if form.validate_on_submit():
        report = services.verify(db, actor=_me(), verifier=verifier(),
                                 origin=settings().origin, now=now())
        db.commit()  # the result is recorded before it is shown
    else:
        _record_view("verify")
    return render_template("audit/verify.html", form=form, report=report,
                           problem_labels=PROBLEM_LABELS)


@bp.route("/signoffs", methods=["GET", "POST"])
@requires(REVIEW_PERMISSION)
def signoffs() -> Any:
    db = request_session()
    form = SignOffForm()
    if form.validate_on_submit():
        try:
            services.sign_off(db, actor=_me(), from_seq=form.from_seq.data,
                              to_seq=form.to_seq.data, verifier=verifier(),
                              origin=settings().origin, now=now())
        except (ValidationError, services.AuditError):
            db.rollback()
            form.to_seq.errors = [_("The range must lie within the log as it is now.")]
        else:
            db.commit()
            flash(_("The reviewed range has been signed off."), "success")
            return redirect(url_for("audit.signoffs"))
    _record_view("signoffs")
    if request.method == "GET":
        form.from_seq.data = queries.last_signed_off_seq(db) + 1
        form.to_seq.data = queries.log_size(db)
    return render_template(
        "audit/signoffs.html",
        form=form,
        signoffs=queries.list_signoffs(db, actor=_me()),
        zone=settings().zone,
    )
