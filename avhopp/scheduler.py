"""The scheduler process (`avhopp scheduler`): APScheduler 3.x with one short tick job per duty.

Durable state lives in our tables (outbox, follow-up marks, checkpoints), never in APScheduler's
memory job store: a restarted scheduler, or two at once, pick up exactly where the tables say.
It runs beside the web server, never inside a web worker.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from typing import Any

from apscheduler.schedulers.blocking import BlockingScheduler

logger = logging.getLogger(__name__)

# Seconds between runs of each duty.
INTERVALS = {
    "derive": 300,
    "enqueue": 60,
    "send": 30,
    "digest": 600,
    "audit_checkpoint": 300,
    # Daily, and at start: what is due is in the tables (approved requests, entry dates), so a
    # restart or a second scheduler only repeats a run that finds nothing more to do.
    "retention": 86400,
    "audit_retention": 86400,
    # The query planner's statistics follow the data as it grows (SQLite; see db.py).
    "statistics": 86400,
}


def duties(app: Any) -> dict[str, Callable[[], Any]]:
    # The defector track registers its own generated follow-up source (risk reassessment).
    from avhopp.cases import followup_sources  # noqa: F401
    from avhopp.db import get_database, refresh_statistics
    from avhopp.followups import ticks
    from avhopp.privacy import jobs

    return {
        "derive": lambda: ticks.derive_tick(app),
        "enqueue": lambda: ticks.enqueue_tick(app),
        "send": lambda: ticks.send_tick(app),
        "digest": lambda: ticks.digest_tick(app),
        "audit_checkpoint": lambda: ticks.audit_tick(app),
        "retention": lambda: jobs.retention_tick(app),
        "audit_retention": lambda: jobs.audit_retention_tick(app),
        "statistics": lambda: refresh_statistics(get_database(app).engine),
    }


def _guarded(name: str, job: Callable[[], Any]) -> Callable[[], None]:
    def run() -> None:
        try:
            job()
        except Exception:
            # One failing duty must not stop the others; the next tick tries again.
            logger.exception("scheduler duty %s failed", name)

    return run


def build(app: Any) -> BlockingScheduler:
    """The scheduler with every duty due at once: a restarted scheduler catches up first."""
    scheduler = BlockingScheduler(timezone="UTC")
    start = dt.datetime.now(dt.UTC)
    for name, job in duties(app).items():
        # coalesce + max_instances=1: a tick that overruns is not stacked; after a pause one
        # run catches up (the tables say what is due, not the number of missed ticks).
        scheduler.add_job(_guarded(name, job), "interval", seconds=INTERVALS[name], id=name,
                          coalesce=True, max_instances=1, misfire_grace_time=None,
                          next_run_time=start)
    return scheduler


def run(app: Any) -> None:  # pragma: no cover - blocks until a signal
    scheduler = build(app)
    logger.info("scheduler started: %s", ", ".join(sorted(INTERVALS)))
    scheduler.start()
