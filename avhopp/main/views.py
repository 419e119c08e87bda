"""Start page, health check and language choice."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, redirect, render_template, session, url_for
from flask_login import current_user
from sqlalchemy import text

from avhopp.accounts.forms import ROLE_LABELS, LanguageForm
from avhopp.db import request_session
from avhopp.permissions import AUTHENTICATED, PUBLIC, requires
from avhopp.security import safe_next

bp = Blueprint("main", __name__, template_folder="templates")


@bp.route("/")
@requires(AUTHENTICATED)
def index() -> Any:
    return render_template(
        "main/index.html", role_label=ROLE_LABELS.get(current_user.role, current_user.role)
    )


@bp.route("/health")
@requires(PUBLIC)
def health() -> Any:
    # Says only whether the database answers; no version or configuration is revealed.
    request_session().execute(text("SELECT 1"))
    return {"status": "ok"}


@bp.route("/language", methods=["POST"])
@requires(PUBLIC)
def language() -> Any:
    form = LanguageForm()
    if form.validate_on_submit():
        session["locale"] = form.locale.data
    return redirect(safe_next(form.next.data, "main.index") if form.next.data else url_for(
        "main.index"))
