"""The scheduler's duties, one service each: adapters that open their own session from the app
and pass no ORM objects around (STYLE.md 11). The CLI and the tests call the same functions."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from typing import Any

from avhopp.audit import services as audit_services
from avhopp.db import get_database, utcnow
from avhopp.followups import outbox
from avhopp.followups import services as followups
from avhopp.followups.mail import Mailer, SmtpSettings, mailer_from_config
from avhopp.followups.settings import FollowUpSettings

logger = logging.getLogger(__name__)


def clock_of(app: Any) -> Callable[[], dt.datetime]:
    clock: Callable[[], dt.datetime] = app.config.get("CLOCK") or utcnow
    return clock


def settings_of(app: Any) -> FollowUpSettings:
    return FollowUpSettings.from_config(app.config)


def derive_tick(app: Any) -> int:
    """Create generated follow-ups (consent expiry, plan targets, after-care, next contact…)."""
    # Loading the sources registers them; the track features register their own on import.
    from avhopp.followups import sources  # noqa: F401

    with get_database(app).scope() as session:
        return followups.derive_generated(session, now=clock_of(app)(),
                                          settings=settings_of(app))


def enqueue_tick(app: Any) -> int:
    """Queue due reminders and escalations."""
    now = clock_of(app)()
    settings = settings_of(app)
    with get_database(app).scope() as session:
        return (outbox.enqueue_reminders(session, now=now, settings=settings)
                + outbox.enqueue_escalations(session, now=now, settings=settings))


def digest_tick(app: Any) -> int:
    with get_database(app).scope() as session:
        return outbox.enqueue_digests(session, now=clock_of(app)(), settings=settings_of(app))


def send_tick(app: Any, mailer: Mailer | None = None) -> outbox.SendReport:
    report = outbox.send_outbox(
        get_database(app).factory, mailer=mailer or mailer_from_config(app.config),
        smtp=SmtpSettings.from_config(app.config),
        settings=outbox.OutboxSettings.from_config(app.config), clock=clock_of(app))
    if report.errors:
        logger.warning("outbox: %d sent, %d to retry, %d failed (%s)", report.sent,
                       report.retried, report.failed, ", ".join(sorted(set(report.errors))))
    return report


def audit_tick(app: Any) -> None:
    with get_database(app).scope() as session:
        audit_services.heartbeat(session, settings=app.extensions["avhopp.audit"],
                                 keys=app.extensions["avhopp.keys"], now=clock_of(app)())


def run_all(app: Any, mailer: Mailer | None = None) -> outbox.SendReport:
    """One pass of every duty in order: what a scheduler does over a few minutes."""
    derive_tick(app)
    enqueue_tick(app)
    digest_tick(app)
    return send_tick(app, mailer)
