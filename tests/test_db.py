"""Database plumbing: SQLite pragmas, aware UTC datetimes on both engines, units of work."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import delete, select
from sqlalchemy.exc import StatementError

from avhopp.accounts.models import LoginThrottle
from avhopp.db import SQLITE_BUSY_TIMEOUT_MS, UTCDateTime, get_database, make_engine, utcnow

CET = dt.timezone(dt.timedelta(hours=2), "CEST")


@pytest.fixture
def sqlite_engine(tmp_path: Path) -> Any:
    engine = make_engine(f"sqlite:///{tmp_path / 'pragmas.sqlite'}")
    yield engine
    engine.dispose()


def pragma(engine: Any, name: str) -> Any:
    with engine.connect() as conn:
        return conn.exec_driver_sql(f"PRAGMA {name}").scalar()


def test_sqlite_uses_write_ahead_logging(sqlite_engine: Any) -> None:
    assert pragma(sqlite_engine, "journal_mode") == "wal"


def test_sqlite_syncs_fully(sqlite_engine: Any) -> None:
    assert pragma(sqlite_engine, "synchronous") == 2  # FULL


def test_sqlite_enforces_foreign_keys(sqlite_engine: Any) -> None:
    assert pragma(sqlite_engine, "foreign_keys") == 1


def test_sqlite_waits_for_locks(sqlite_engine: Any) -> None:
    assert pragma(sqlite_engine, "busy_timeout") == SQLITE_BUSY_TIMEOUT_MS
    assert SQLITE_BUSY_TIMEOUT_MS > 0


def test_sqlite_zeroes_freed_pages(sqlite_engine: Any) -> None:
    assert pragma(sqlite_engine, "secure_delete") == 1


def test_every_new_sqlite_connection_gets_the_pragmas(sqlite_engine: Any) -> None:
    # A connection that switched a pragma off must not be handed out again unconfigured.
    with sqlite_engine.connect() as conn:
        conn.exec_driver_sql("PRAGMA foreign_keys = OFF")
        conn.exec_driver_sql("PRAGMA busy_timeout = 0")
    with sqlite_engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == SQLITE_BUSY_TIMEOUT_MS


def test_sqlite_foreign_keys_are_enforced_in_the_schema(app: Any) -> None:
    from sqlalchemy import text
    from sqlalchemy.exc import IntegrityError

    with pytest.raises(IntegrityError), get_database(app).scope() as session:
        session.execute(text(
            "INSERT INTO recovery_code (id, user_id, code_hash) VALUES (:id, :user, 'x')"),
            {"id": "0" * 32, "user": "f" * 32})


# --- UTCDateTime --------------------------------------------------------------------------------


def throttle(key: str, when: dt.datetime) -> LoginThrottle:
    return LoginThrottle(key=key, failures=1, window_started_at=when)


def test_naive_datetimes_are_refused(app: Any) -> None:
    session = get_database(app).factory()
    try:
        session.add(throttle("naive", dt.datetime(2026, 1, 1, 12, 0)))  # noqa: DTZ001
        with pytest.raises(StatementError) as info:
            session.flush()
        assert isinstance(info.value.orig, ValueError)
        assert "naive datetime refused" in str(info.value.orig)
    finally:
        session.rollback()
        session.close()


def test_naive_datetimes_are_refused_in_queries_too(app: Any) -> None:
    session = get_database(app).factory()
    try:
        naive = dt.datetime(2026, 1, 1)  # noqa: DTZ001
        with pytest.raises(StatementError):
            session.scalars(select(LoginThrottle).where(LoginThrottle.window_started_at < naive))
    finally:
        session.rollback()
        session.close()


def test_datetimes_come_back_aware_utc_and_equal(app: Any) -> None:
    database = get_database(app)
    written = dt.datetime(2026, 6, 1, 14, 30, 15, 123456, tzinfo=CET)
    with database.scope() as session:
        session.add(throttle("aware", written))
    with database.scope() as session:
        row = session.get(LoginThrottle, "aware")
        assert row is not None
        read = row.window_started_at
    assert read.tzinfo is not None
    assert read.utcoffset() == dt.timedelta(0)
    assert read == written
    assert read.hour == 12  # 14:30 at +02:00 is 12:30 UTC


def test_datetime_comparisons_in_queries_use_the_instant(app: Any) -> None:
    database = get_database(app)
    base = dt.datetime(2026, 6, 1, 12, 0, tzinfo=dt.UTC)
    with database.scope() as session:
        session.add(throttle("early", base))
        session.add(throttle("late", base + dt.timedelta(hours=3)))
    with database.scope() as session:
        # 13:00 at +02:00 is 11:00 UTC: both rows are later; 15:00 UTC (17:00 CEST) splits them.
        keys = set(session.scalars(select(LoginThrottle.key).where(
            LoginThrottle.window_started_at > dt.datetime(2026, 6, 1, 13, 0, tzinfo=CET))))
        assert keys == {"early", "late"}
        keys = set(session.scalars(select(LoginThrottle.key).where(
            LoginThrottle.window_started_at > dt.datetime(2026, 6, 1, 14, 0, tzinfo=CET))))
        assert keys == {"late"}


def test_utc_datetime_type_unit_behaviour() -> None:
    from sqlalchemy.dialects import postgresql, sqlite

    kind = UTCDateTime()
    with pytest.raises(ValueError, match="naive"):
        kind.process_bind_param(dt.datetime(2026, 1, 1), sqlite.dialect())  # noqa: DTZ001
    aware = dt.datetime(2026, 1, 1, 2, 0, tzinfo=CET)
    assert kind.process_bind_param(aware, sqlite.dialect()) == dt.datetime(2026, 1, 1, 0, 0)  # noqa: DTZ001
    assert kind.process_bind_param(aware, postgresql.dialect()).tzinfo == dt.UTC
    back = kind.process_result_value(dt.datetime(2026, 1, 1), sqlite.dialect())  # noqa: DTZ001
    assert back == dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    assert kind.process_bind_param(None, sqlite.dialect()) is None


def test_utcnow_is_aware_utc() -> None:
    assert utcnow().utcoffset() == dt.timedelta(0)


# --- session_scope ------------------------------------------------------------------------------


def keys_in_table(app: Any) -> set[str]:
    with get_database(app).scope() as session:
        return set(session.scalars(select(LoginThrottle.key)))


def test_session_scope_commits_on_success(app: Any) -> None:
    with get_database(app).scope() as session:
        session.add(throttle("committed", utcnow()))
    assert "committed" in keys_in_table(app)


def test_session_scope_rolls_back_on_error(app: Any) -> None:
    with pytest.raises(RuntimeError, match="fail inside"), get_database(app).scope() as session:
        session.add(throttle("rolled-back", utcnow()))
        session.flush()  # the row reached the database inside the transaction
        raise RuntimeError("fail inside the unit of work")
    assert "rolled-back" not in keys_in_table(app)


def test_session_scope_rolls_back_a_delete_on_error(app: Any) -> None:
    with get_database(app).scope() as session:
        session.add(throttle("survivor", utcnow()))
    with pytest.raises(RuntimeError), get_database(app).scope() as session:
        session.execute(delete(LoginThrottle).where(LoginThrottle.key == "survivor"))
        raise RuntimeError("fail after delete")
    assert "survivor" in keys_in_table(app)


def test_session_scope_closes_the_session(app: Any) -> None:
    with get_database(app).scope() as session:
        session.add(throttle("closing", utcnow()))
    assert not session.in_transaction()
    assert not session.new
