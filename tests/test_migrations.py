"""Migrations build the models' schema on both engines; the audit log is append-only in the DB."""

from __future__ import annotations

import importlib
import pkgutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, inspect, select, text
from sqlalchemy.exc import DBAPIError

import avhopp
from avhopp import migrate
from avhopp.audit.models import AuditEvent
from avhopp.audit.services import record
from avhopp.db import Base, get_database, make_engine
from tests.conftest import PG_ADMIN_URL

# Register every model on Base.metadata, whatever else this process happened to import, so the
# in-process comparisons below do not depend on test order.
MODEL_MODULES = [
    f"avhopp.{package.name}.models"
    for package in pkgutil.iter_modules(avhopp.__path__)
    if package.ispkg and importlib.util.find_spec(f"avhopp.{package.name}.models") is not None
]
for _module in MODEL_MODULES:
    importlib.import_module(_module)


@pytest.fixture(params=("sqlite", "postgresql"))
def empty_database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A database with no tables at all: a fresh SQLite file or a new PostgreSQL database."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'empty.sqlite'}"
        return
    name = f"avhopp_migrations_{uuid.uuid4().hex[:10]}"
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def table_names(url: str) -> set[str]:
    engine = make_engine(url)
    try:
        return set(inspect(engine).get_table_names())
    finally:
        engine.dispose()


def model_tables() -> set[str]:
    return set(Base.metadata.tables)


def test_upgrade_head_on_an_empty_database_creates_every_model_table(
    empty_database_url: str,
) -> None:
    assert table_names(empty_database_url) == set()
    migrate.upgrade(empty_database_url)
    assert table_names(empty_database_url) == model_tables() | {"alembic_version"}


def test_migrated_schema_matches_the_models(empty_database_url: str) -> None:
    migrate.upgrade(empty_database_url)
    migrate.check(empty_database_url)  # raises if autogenerate would produce a migration


def test_check_passes_in_a_fresh_process(empty_database_url: str) -> None:
    # What an operator or CI runs: nothing but avhopp.migrate is imported beforehand, so the
    # migration environment itself must register every model it compares against.
    migrate.upgrade(empty_database_url)
    result = subprocess.run(
        [sys.executable, "-c", "import sys; from avhopp import migrate; migrate.check(sys.argv[1])",
         empty_database_url],
        capture_output=True, text=True, timeout=120, check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]


def test_model_modules_are_found() -> None:
    assert {"avhopp.accounts.models", "avhopp.audit.models"} <= set(MODEL_MODULES)


def test_check_notices_a_schema_that_lags_the_models(empty_database_url: str) -> None:
    migrate.upgrade(empty_database_url)
    engine = make_engine(empty_database_url)
    try:
        with engine.begin() as conn:
            conn.execute(text("DROP TABLE login_throttle"))
    finally:
        engine.dispose()
    with pytest.raises(Exception, match=r"(?i)new upgrade operations detected"):
        migrate.check(empty_database_url)


def test_downgrade_to_base_and_upgrade_again(empty_database_url: str) -> None:
    migrate.upgrade(empty_database_url)
    migrate.downgrade(empty_database_url, "base")
    assert table_names(empty_database_url) <= {"alembic_version"}
    migrate.upgrade(empty_database_url)
    migrate.check(empty_database_url)
    assert table_names(empty_database_url) == model_tables() | {"alembic_version"}


def test_upgrade_is_idempotent_at_head(empty_database_url: str) -> None:
    migrate.upgrade(empty_database_url)
    migrate.upgrade(empty_database_url)
    migrate.check(empty_database_url)


# --- the audit log refuses UPDATE and DELETE in the database itself ---------------------------


@pytest.fixture
def recorded_event(app: Any) -> int:
    with get_database(app).scope() as session:
        event = record(session, action="auth.logout", outcome="success")
        return event.seq


def raw_execute(app: Any, sql: str, **params: Any) -> None:
    with get_database(app).engine.begin() as conn:
        conn.execute(text(sql), params)


def stored_action(app: Any, seq: int) -> str | None:
    with get_database(app).scope() as session:
        return session.scalar(select(AuditEvent.action).where(AuditEvent.seq == seq))


def test_audit_event_refuses_update(app: Any, recorded_event: int) -> None:
    with pytest.raises(DBAPIError, match="append-only"):
        raw_execute(app, "UPDATE audit_event SET action = 'user.created' WHERE seq = :seq",
                    seq=recorded_event)
    assert stored_action(app, recorded_event) == "auth.logout"


def test_audit_event_refuses_delete(app: Any, recorded_event: int) -> None:
    with pytest.raises(DBAPIError, match="append-only"):
        raw_execute(app, "DELETE FROM audit_event WHERE seq = :seq", seq=recorded_event)
    assert stored_action(app, recorded_event) == "auth.logout"


def test_audit_event_refuses_an_update_through_the_orm(app: Any, recorded_event: int) -> None:
    with pytest.raises(DBAPIError, match="append-only"), get_database(app).scope() as session:
        event = session.get(AuditEvent, recorded_event)
        assert event is not None
        event.outcome = "denied"
    assert stored_action(app, recorded_event) == "auth.logout"


def test_audit_event_refuses_truncate_on_postgresql(app: Any, recorded_event: int) -> None:
    if get_database(app).is_sqlite:
        # SQLite has no TRUNCATE; its DELETE without WHERE hits the delete trigger instead.
        with pytest.raises(DBAPIError, match="append-only"):
            raw_execute(app, "DELETE FROM audit_event")
    else:
        with pytest.raises(DBAPIError, match="append-only"):
            raw_execute(app, "TRUNCATE audit_event")
    assert stored_action(app, recorded_event) == "auth.logout"


def test_audit_event_still_accepts_inserts(app: Any, recorded_event: int) -> None:
    with get_database(app).scope() as session:
        second = record(session, action="auth.logout", outcome="success").seq
    assert second == recorded_event + 1
