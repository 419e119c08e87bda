"""Retention of the log itself: old entries lose their payload, the tree still verifies, and the
database triggers allow exactly that update and nothing else (both engines)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from sqlalchemy import select, text, update
from sqlalchemy.exc import DBAPIError

from avhopp.audit import services
from avhopp.audit.models import REDACTED_COLUMNS, AuditEvent
from avhopp.db import get_database
from avhopp.errors import Forbidden, ValidationError
from tests.audit.conftest import sign, verify, witness

OLD = dt.datetime(2024, 3, 1, 12, 0, tzinfo=dt.UTC)
NEW = dt.datetime(2026, 10, 1, 12, 0, tzinfo=dt.UTC)
NOW = dt.datetime(2026, 11, 2, 9, 0, tzinfo=dt.UTC)


@pytest.fixture
def aged_log(app: Any) -> list[Any]:
    """Entries 1-5 from 2024, a checkpoint (6), entries 7-9 from 2026, a checkpoint (10)."""
    actor = type("Staff", (), {"id": __import__("uuid").uuid4(), "role": "coordinator"})()
    with get_database(app).scope() as session:
        for i in range(5):
            services.record(session, action="user.listed", actor=actor, object_type="user",
                            object_id=f"object-{i}", details={"count": i},
                            now=OLD + dt.timedelta(hours=i))
    first = sign(app)
    with get_database(app).scope() as session:
        for i in range(3):
            services.record(session, action="user.listed", actor=actor, details={"count": i},
                            now=NEW + dt.timedelta(hours=i))
    return [first, sign(app)]


def redact(app: Any, before: dt.datetime, min_age_days: int = 365) -> int:
    with get_database(app).scope() as session:
        return services.redact(session, actor=None, before=before, min_age_days=min_age_days,
                               now=NOW)


def test_redaction_empties_the_payload_of_old_entries_only(
    app: Any, db: Any, aged_log: list[Any]
) -> None:
    before = {e.seq: e.leaf_hash for e in db.scalars(select(AuditEvent))}
    db.rollback()
    assert redact(app, dt.datetime(2025, 1, 1, tzinfo=dt.UTC)) == 5
    rows = {e.seq: e for e in db.scalars(select(AuditEvent).order_by(AuditEvent.seq))}
    for seq in range(1, 6):
        event = rows[seq]
        assert event.redacted_at == NOW
        assert all(getattr(event, column) is None for column in REDACTED_COLUMNS)
        assert event.leaf_hash == before[seq]
        assert event.action == "user.listed"
        assert event.occurred_at == OLD + dt.timedelta(hours=seq - 1)
    assert all(rows[seq].redacted_at is None for seq in range(6, 11))
    last = rows[max(rows)]
    assert last.action == "audit.redacted"
    assert last.details == '{"before":"2025-01-01","count":5,"through_seq":5}'


def test_the_log_still_verifies_after_redaction(app: Any, aged_log: list[Any]) -> None:
    redact(app, dt.datetime(2025, 1, 1, tzinfo=dt.UTC))
    report = verify(app, [witness(cp) for cp in aged_log])
    assert report.ok, report.problems
    assert report.redacted == 5


def test_redacting_twice_redacts_nothing_more(app: Any, aged_log: list[Any]) -> None:
    redact(app, dt.datetime(2025, 1, 1, tzinfo=dt.UTC))
    assert redact(app, dt.datetime(2025, 1, 1, tzinfo=dt.UTC)) == 0
    assert verify(app).ok


def test_recent_entries_cannot_be_redacted(app: Any, aged_log: list[Any]) -> None:
    with pytest.raises(ValidationError) as caught:
        redact(app, dt.datetime(2026, 6, 1, tzinfo=dt.UTC), min_age_days=365)
    assert caught.value.code == "too_recent"


def test_only_the_operator_may_redact(app: Any, aged_log: list[Any]) -> None:
    board = type("Staff", (), {"id": __import__("uuid").uuid4(), "role": "board"})()
    with pytest.raises(Forbidden), get_database(app).scope() as session:
        services.redact(session, actor=board, before=dt.datetime(2025, 1, 1, tzinfo=dt.UTC),
                        min_age_days=0, now=NOW)


# --- the triggers allow the redaction update and nothing else -------------------------------


def raw(app: Any, sql: str, **params: Any) -> None:
    with get_database(app).engine.begin() as conn:
        conn.execute(text(sql), params)


def redaction_values(**changes: Any) -> dict[str, Any]:
    return {**dict.fromkeys(REDACTED_COLUMNS), "redacted_at": NOW, **changes}


def orm_update(app: Any, seq: int, values: dict[str, Any]) -> None:
    with get_database(app).scope() as session:
        session.execute(update(AuditEvent).where(AuditEvent.seq == seq).values(values))


def test_the_trigger_allows_the_redaction_update(app: Any, aged_log: list[Any]) -> None:
    orm_update(app, 2, redaction_values())


@pytest.mark.parametrize("changes", [
    {"action": "user.created"},
    {"outcome": "denied"},
    {"leaf_hash": b"\x00" * 32},
    {"occurred_at": NOW},
    {"object_id": "kept"},
    {"details": "{}"},
    {"nonce": b"\x01" * 16},
    {"redacted_at": None},
], ids=lambda c: next(iter(c)))
def test_the_trigger_refuses_anything_but_exactly_the_redaction(
    app: Any, aged_log: list[Any], changes: dict[str, Any]
) -> None:
    with pytest.raises(DBAPIError, match="append-only"):
        orm_update(app, 2, redaction_values(**changes))


def test_the_trigger_refuses_to_redact_an_entry_twice(app: Any, aged_log: list[Any]) -> None:
    orm_update(app, 2, redaction_values())
    with pytest.raises(DBAPIError, match="append-only"):
        orm_update(app, 2, redaction_values(redacted_at=NOW + dt.timedelta(days=1)))


def test_the_trigger_still_refuses_plain_updates_and_deletes(
    app: Any, aged_log: list[Any]
) -> None:
    with pytest.raises(DBAPIError, match="append-only"):
        raw(app, "UPDATE audit_event SET purpose = 'x' WHERE seq = 3")
    with pytest.raises(DBAPIError, match="append-only"):
        raw(app, "DELETE FROM audit_event WHERE seq = 3")
    with pytest.raises(DBAPIError, match="append-only"):
        raw(app, "UPDATE audit_event SET seq = 99 WHERE seq = 3")
