"""The scheduler's daily lifecycle duties: retention of closed tracks and of the audit log."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from avhopp.audit import services as audit_services
from avhopp.db import get_database, utcnow
from avhopp.encryption.services import compact_after_erasure
from avhopp.privacy.retention import RetentionRules, run_due_erasures


def _clock(app: Any) -> Callable[[], dt.datetime]:
    clock: Callable[[], dt.datetime] = app.config.get("CLOCK") or utcnow
    return clock


def retention_tick(app: Any) -> int:
    """Date newly closed tracks and run the approved erasures that are due; what `avhopp
    retention run` does by hand. Returns the number erased (no ORM objects leave the session).
    The erasures commit before SQLite's WAL is folded into the file: a checkpoint cannot run
    inside the transaction, and until it runs the destroyed key bytes are still in the WAL."""
    database = get_database(app)
    with database.scope() as session:
        erased = len(run_due_erasures(session, rules=RetentionRules.from_config(app.config),
                                      now=_clock(app)()).erased)
    if erased:
        compact_after_erasure(database.engine)
    return erased


def audit_retention_tick(app: Any) -> int:
    """Redact audit entries older than AUDIT_RETENTION_DAYS (0: off, redaction only by hand)."""
    settings = app.extensions["avhopp.audit"]
    if not settings.retention_days:
        return 0
    database = get_database(app)
    with database.scope() as session:
        count = audit_services.redact_expired(
            session, retention_days=settings.retention_days,
            min_age_days=settings.redact_min_age_days, now=_clock(app)())
    if count:
        # The emptied payloads must leave SQLite's WAL too, as after an erasure.
        compact_after_erasure(database.engine)
    return count
