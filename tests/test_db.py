"""Database plumbing: SQLite pragmas, aware UTC datetimes on both engines, units of work."""

from __future__ import annotations

import datetime as dt
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, delete, select, text
from sqlalchemy.exc import OperationalError, StatementError

from avhopp import db
from avhopp.accounts.models import LoginThrottle
from avhopp.db import (
    READ_MOSTLY,
    SQLITE_BUSY_TIMEOUT_MS,
    UTCDateTime,
    get_database,
    make_engine,
    make_session_factory,
    request_session,
    utcnow,
)

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


def _table(engine: Any) -> None:
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE t (x INTEGER)")


def _read_mostly(engine: Any) -> Any:
    return make_session_factory(engine.execution_options(**{READ_MOSTLY: True}))()


def _count(engine: Any) -> int:
    with engine.connect() as conn:
        return int(conn.exec_driver_sql("SELECT count(*) FROM t").scalar_one())


def test_a_read_mostly_sqlite_session_reads_while_a_writer_holds_the_lock(
        sqlite_engine: Any) -> None:
    _table(sqlite_engine)
    seen: list[int] = []
    with sqlite_engine.connect() as writer, writer.begin():
        writer.exec_driver_sql("INSERT INTO t VALUES (1)")

        def read() -> None:
            with _read_mostly(sqlite_engine) as session:
                seen.append(session.execute(text("SELECT count(*) FROM t")).scalar_one())

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        # An IMMEDIATE begin would wait for the writer (up to the 30 s busy timeout).
        reader.join(timeout=5)
        assert seen == [0]  # the committed state, without the writer's open insert


def test_a_read_mostly_sqlite_session_can_write_after_another_writer_committed(
        sqlite_engine: Any) -> None:
    # Upgrading the deferred snapshot in place would fail at once with "database is locked".
    _table(sqlite_engine)
    with _read_mostly(sqlite_engine) as session:
        assert session.execute(text("SELECT count(*) FROM t")).scalar_one() == 0
        with sqlite_engine.begin() as other:
            other.exec_driver_sql("INSERT INTO t VALUES (1)")
        session.execute(text("INSERT INTO t VALUES (2)"))
        session.commit()
    assert _count(sqlite_engine) == 2


def test_a_read_mostly_sqlite_write_waits_for_the_lock_and_is_not_lost(
        sqlite_engine: Any) -> None:
    _table(sqlite_engine)
    holding = threading.Event()

    def hold() -> None:
        with sqlite_engine.begin() as conn:
            conn.exec_driver_sql("INSERT INTO t VALUES (1)")
            holding.set()
            time.sleep(0.3)

    writer = threading.Thread(target=hold)
    writer.start()
    holding.wait(5)
    with _read_mostly(sqlite_engine) as session:
        session.execute(text("SELECT count(*) FROM t")).scalar_one()
        session.execute(text("INSERT INTO t VALUES (2)"))
        session.commit()
    writer.join()
    assert _count(sqlite_engine) == 2


def test_a_write_session_on_sqlite_still_takes_the_lock_at_begin(sqlite_engine: Any) -> None:
    _table(sqlite_engine)
    with make_session_factory(sqlite_engine)() as session:
        session.execute(text("SELECT count(*) FROM t"))
        # A plain second connection (SQLAlchemy would begin it with our own BEGIN IMMEDIATE).
        other = sqlite3.connect(sqlite_engine.url.database, isolation_level=None, timeout=0.05)
        try:
            with pytest.raises(sqlite3.OperationalError, match="locked"):
                other.execute("BEGIN IMMEDIATE")
        finally:
            other.close()


@pytest.mark.parametrize(("method", "read_mostly"),
                         [("GET", True), ("HEAD", True), ("POST", False)])
def test_safe_requests_get_a_read_mostly_session_others_a_write_session(
        app: Any, method: str, read_mostly: bool) -> None:
    with app.test_request_context("/", method=method):
        session = request_session()
        bind = session.get_bind()
        assert bool(bind.get_execution_options().get(READ_MOSTLY)) is read_mostly


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


def _has_statistics(engine: Any) -> bool:
    with engine.connect() as conn:
        found = conn.exec_driver_sql(
            "SELECT count(*) FROM sqlite_master WHERE name = 'sqlite_stat1'").scalar_one()
        return bool(found) and bool(
            conn.exec_driver_sql("SELECT count(*) FROM sqlite_stat1").scalar_one())


def test_sqlite_gets_planner_statistics_at_upgrade_and_from_the_daily_duty(tmp_path: Path) -> None:
    from avhopp import migrate
    from avhopp.db import refresh_statistics

    url = f"sqlite:///{tmp_path / 'stats.sqlite'}"
    migrate.upgrade(url)
    engine = make_engine(url)
    try:
        assert _has_statistics(engine)
        with engine.begin() as conn:
            conn.exec_driver_sql("DELETE FROM sqlite_stat1")
        refresh_statistics(engine)
        assert _has_statistics(engine)
    finally:
        engine.dispose()


def test_refreshing_statistics_leaves_postgresql_to_its_autovacuum(app: Any) -> None:
    from avhopp.db import refresh_statistics

    engine = get_database(app).engine
    refresh_statistics(engine)  # on SQLite it analyses; on PostgreSQL it must not fail
    if engine.dialect.name == "sqlite":
        assert _has_statistics(engine)


def _backend_pid(engine: Any) -> int:
    with engine.connect() as conn:
        return int(conn.execute(text("SELECT pg_backend_pid()")).scalar_one())


def _terminate(url: str, pid: int) -> None:
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
    admin.dispose()


def test_a_postgresql_connection_that_died_while_idle_is_replaced_before_use(
        postgres_url: str) -> None:
    engine = create_engine(postgres_url, pool_size=1, max_overflow=0)
    db.ping_idle_connections(engine, 0.0)  # every pooled connection counts as idle
    try:
        dead = _backend_pid(engine)
        _terminate(postgres_url, dead)
        # The pooled connection fails its ping and the pool opens a new one: no error.
        assert _backend_pid(engine) != dead
    finally:
        engine.dispose()


def test_a_postgresql_connection_used_moments_ago_is_not_pinged(postgres_url: str) -> None:
    engine = create_engine(postgres_url, pool_size=1, max_overflow=0)
    db.ping_idle_connections(engine, 3600.0)
    try:
        _terminate(postgres_url, _backend_pid(engine))
        # Without a ping the dead connection is used (and the error tells the caller); the
        # check above is what makes an idle one safe.
        with pytest.raises(OperationalError):
            _backend_pid(engine)
    finally:
        engine.dispose()


def test_postgresql_engines_ping_connections_idle_for_a_moment() -> None:
    assert 0 < db.PING_AFTER_IDLE_SECONDS <= 5
    engine = db.make_engine("postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
    try:
        assert engine.pool._pre_ping is False  # no round trip at every checkout
    finally:
        engine.dispose()
