"""The statistics page (inline SVG charts and the same numbers in tables) and its CSV export."""

from __future__ import annotations

import csv
import datetime as dt
import io
from typing import Any

from flask import Blueprint, Response, current_app, render_template
from flask_login import current_user

from avhopp.cases.forms import ENVIRONMENT_LABELS, RISK_LABELS
from avhopp.cases.models import ENVIRONMENTS
from avhopp.casework.forms import REFERRAL_LABELS
from avhopp.casework.models import REFERRAL_SOURCES, RISK_LEVELS, TRACK_KINDS
from avhopp.db import request_session
from avhopp.permissions import requires
from avhopp.security import now
from avhopp.stats import services
from avhopp.stats.services import EARLIER, UNKNOWN
from avhopp.translation import gettext as _
from avhopp.translation import lazy_gettext as _l

bp = Blueprint("stats", __name__, template_folder="templates", url_prefix="/stats")

TITLES = {
    "opened_per_month": _l("Tracks opened per month"),
    "open_closed": _l("Open and closed tracks"),
    "closed_per_month": _l("Tracks closed per month"),
    "kind": _l("Defectors and relatives"),
    "referral_source": _l("Referral source"),
    "risk_level": _l("Risk level"),
    "municipality": _l("Municipality"),
    "environment": _l("Environment"),
    "contacts_per_month": _l("Contacts per month"),
    "relatives_active_per_month": _l("Relatives supported per month (open relative tracks)"),
    "followups_on_time_per_month": _l("Follow-ups done on time, by month due"),
    "followups_late_per_month": _l("Follow-ups done late or not yet done, by month due"),
}
COMMON = {
    UNKNOWN: _l("Not recorded"), EARLIER: _l("Earlier"), "open": _l("Open"),
    "closed": _l("Closed"), "defector": _l("Defectors"), "relative": _l("Relatives"),
    "not_applicable": _l("Relative tracks"),
}
LABELS: dict[str, dict[str, Any]] = {
    "referral_source": REFERRAL_LABELS, "risk_level": RISK_LABELS,
    "environment": ENVIRONMENT_LABELS,
}
ORDERS = {"kind": TRACK_KINDS, "referral_source": REFERRAL_SOURCES, "risk_level": RISK_LEVELS,
          "environment": ENVIRONMENTS}


def label(table: str, key: str) -> Any:
    return LABELS.get(table, {}).get(key) or COMMON.get(key) or key


CACHE_KEY = "avhopp.stats_cache"


def _compute() -> services.Statistics:
    """The counts, kept for STATS_CACHE_SECONDS (default 600) per process: they are aggregates
    only, and opening every consenting defector's environment takes seconds at 10,000 tracks."""
    threshold = int(current_app.config.get("STATS_MIN_CELL", 5))
    ttl = float(current_app.config.get("STATS_CACHE_SECONDS", 600))
    moment = now()
    cached = current_app.extensions.get(CACHE_KEY)
    if cached is not None:
        made, made_threshold, stats = cached
        if made_threshold == threshold and dt.timedelta(0) <= moment - made <= \
                dt.timedelta(seconds=ttl):
            return stats  # type: ignore[no-any-return]
    stats = services.compute(request_session(), now=moment, orders=ORDERS, threshold=threshold,
                             zone=current_app.extensions["avhopp.audit"].zone)
    current_app.extensions[CACHE_KEY] = (moment, threshold, stats)
    return stats


@bp.route("/")
@requires("stats.view")
def index() -> Any:
    db = request_session()
    stats = _compute()
    services.record_view(db, actor=current_user._get_current_object(), stats=stats)
    db.commit()
    return render_template("stats/index.html", stats=stats, titles=TITLES, label=label)


@bp.route("/export.csv")
@requires("stats.view")
def export() -> Any:
    db = request_session()
    stats = _compute()
    rows = services.csv_rows(stats, label)
    services.record_view(db, actor=current_user._get_current_object(), stats=stats,
                         export=True, rows=len(rows) - 1)
    db.commit()
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    for row in rows:
        # Labels and codes only; a leading formula character is still neutralised for Excel.
        writer.writerow([f"'{v}" if v[:1] in "=+-@" and v != "–" else v for v in row])
    return Response(buffer.getvalue(), mimetype="text/csv", headers={
        "Content-Disposition": f'attachment; filename="{_("statistics")}.csv"',
        "Cache-Control": "no-store"})
