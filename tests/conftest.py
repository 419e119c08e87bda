"""Shared fixtures: an app per test on SQLite and on PostgreSQL, a frozen clock, login helpers."""

from __future__ import annotations

import datetime as dt
import os
import re
import shutil
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyotp
import pytest
from hypothesis import settings as hypothesis_settings
from sqlalchemy import create_engine, select, text

from avhopp import migrate
from avhopp.accounts import services as account_services
from avhopp.accounts.models import User
from avhopp.app import create_app
from avhopp.crypto.keyring import encode_env_value, generate_key_file
from avhopp.db import Base, get_database

# No per-example wall-clock deadline: it is a timing assertion, and one failed on a busy machine
# (speed is measured by `make bench`, not by unit tests).
hypothesis_settings.register_profile("avhopp", deadline=None)
hypothesis_settings.load_profile("avhopp")

# The PostgreSQL half is required: an unreachable server fails the run, it never skips.
PG_ADMIN_URL = os.environ.get(
    "AVHOPP_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
ENGINES = ("sqlite", "postgresql")
# Passes the password policy (long, unguessable, no context words).
STRONG_PASSWORD = "kvällsdimma gungar ovanför tolv blå spårvagnar"
START = dt.datetime(2026, 11, 2, 9, 0, tzinfo=dt.UTC)


class FrozenClock:
    """A clock the app reads instead of the system time; tests move it explicitly."""

    def __init__(self, start: dt.datetime = START) -> None:
        self.now = start

    def __call__(self) -> dt.datetime:
        return self.now

    def advance(self, **delta: float) -> dt.datetime:
        self.now += dt.timedelta(**delta)
        return self.now


@pytest.fixture(scope="session")
def keys_value() -> str:
    return encode_env_value(generate_key_file())


def _worker() -> str:
    return os.environ.get("PYTEST_XDIST_WORKER", "main")


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One migrated SQLite file; each test gets a copy (cheaper than migrating per test)."""
    path = tmp_path_factory.mktemp("sqlite-template") / "template.sqlite"
    url = f"sqlite:///{path}"
    migrate.upgrade(url)
    engine = create_engine(url)
    with engine.connect() as conn:
        # Fold the WAL into the main file so a plain file copy is complete.
        conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    engine.dispose()
    return path


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A fresh, migrated PostgreSQL database for this test run (and xdist worker)."""
    name = f"avhopp_test_{_worker()}_{uuid.uuid4().hex[:8]}"
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:  # pragma: no cover - the environment is broken
        pytest.fail(f"PostgreSQL is required for the test suite and is unreachable: {exc}")
    url = PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    migrate.upgrade(url)
    _SEED_ROWS[url] = _snapshot(url)
    yield url
    with admin.connect() as conn:
        conn.execute(
            text(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = :name AND pid <> pg_backend_pid()"
            ),
            {"name": name},
        )
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
    admin.dispose()


# Rows the migrations seed (audit head, blind-index versions), restored after each truncation.
_SEED_ROWS: dict[str, list[tuple[Any, list[dict[str, Any]]]]] = {}


def _snapshot(url: str) -> list[tuple[Any, list[dict[str, Any]]]]:
    engine = create_engine(url)
    with engine.connect() as conn:
        seeded = [(t, [dict(r._mapping) for r in conn.execute(t.select())])
                  for t in Base.metadata.sorted_tables]
    engine.dispose()
    return [(t, rows) for t, rows in seeded if rows]


def _truncate_postgres(url: str) -> None:
    engine = create_engine(url)
    tables = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
    with engine.begin() as conn:
        # replica mode switches off the audit log's append-only triggers for the clean-up only.
        conn.execute(text("SET session_replication_role = replica"))
        conn.execute(text(f"TRUNCATE {tables} CASCADE"))
        conn.execute(text("SET session_replication_role = DEFAULT"))
        for table, rows in _SEED_ROWS[url]:
            conn.execute(table.insert(), rows)
    engine.dispose()


@pytest.fixture(params=ENGINES)
def database_url(
    request: pytest.FixtureRequest, tmp_path: Path, sqlite_template: Path
) -> Iterator[str]:
    if request.param == "sqlite":
        path = tmp_path / "avhopp.sqlite"
        shutil.copyfile(sqlite_template, path)
        yield f"sqlite:///{path}"
        return
    url = request.getfixturevalue("postgres_url")
    _truncate_postgres(url)
    yield url


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock()


@pytest.fixture
def app_overrides(
    database_url: str, keys_value: str, tmp_path: Path, clock: FrozenClock
) -> dict[str, Any]:
    return {
        "ENV": "testing",
        "DATABASE_URL": database_url,
        "KEYS": keys_value,
        "INSTANCE_PATH": str(tmp_path / "instance"),
        "CLOCK": clock,
    }


@pytest.fixture
def app(app_overrides: dict[str, Any]) -> Iterator[Any]:
    application = create_app(app_overrides)
    yield application
    get_database(application).engine.dispose()


@pytest.fixture
def client(app: Any) -> Any:
    return app.test_client()


@pytest.fixture
def db(app: Any) -> Iterator[Any]:
    """A session for arranging and inspecting data; the caller commits what it arranges."""
    session = get_database(app).factory()
    yield session
    session.rollback()
    session.close()


# --- factories and helpers ------------------------------------------------------------------


@dataclass
class StaffMember:
    id: uuid.UUID
    username: str
    role: str
    password: str
    totp_secret: str | None


def make_user(
    app: Any,
    *,
    role: str = "coordinator",
    username: str | None = None,
    password: str = STRONG_PASSWORD,
    enrolled: bool = True,
    must_change_password: bool = False,
) -> StaffMember:
    """Create a staff member directly through the services (not over HTTP)."""
    policy = app.extensions["avhopp.account_policy"]
    keys = app.extensions["avhopp.keys"]
    name = username or f"{role}.{uuid.uuid4().hex[:6]}"
    secret = None
    with get_database(app).scope() as session:
        user, _one_time = account_services.create_user(
            session, actor=None, username=name, role=role, policy=policy
        )
        user.password_hash = account_services.hash_password(password, policy=policy)
        user.must_change_password = must_change_password
        if enrolled:
            secret = account_services.new_totp_secret()
            kek_id, blob = keys.wrap(secret.encode(), account_services._totp_aad(user.id))
            user.totp_secret_wrapped = blob
            user.totp_kek_id = kek_id
            user.totp_enrolled_at = app.config["CLOCK"]()
        user_id = user.id
    return StaffMember(user_id, name, role, password, secret)


def totp_code(secret: str, when: dt.datetime) -> str:
    return pyotp.TOTP(secret).at(when)


CSRF_RE = re.compile(r'name="csrf_token" type="hidden" value="([^"]+)"|'
                     r'name="csrf_token" value="([^"]+)"')


def csrf_token(client: Any, path: str) -> str:
    """Fetch `path` and return the CSRF token from its first form."""
    page = client.get(path)
    assert page.status_code == 200, f"{path} answered {page.status_code}"
    match = CSRF_RE.search(page.get_data(as_text=True))
    assert match, f"no CSRF token on {path} (status {page.status_code})"
    return match.group(1) or match.group(2)


def login_password(client: Any, member: StaffMember, password: str | None = None) -> Any:
    token = csrf_token(client, "/login")
    return client.post(
        "/login",
        data={"csrf_token": token, "username": member.username,
              "password": member.password if password is None else password},
    )


def login(client: Any, member: StaffMember, clock: FrozenClock) -> Any:
    """Log in with password and TOTP; returns the response of the second step."""
    first = login_password(client, member)
    assert first.status_code == 302, first.get_data(as_text=True)
    assert member.totp_secret is not None
    token = csrf_token(client, "/login/code")
    response = client.post(
        "/login/code", data={"csrf_token": token, "code": totp_code(member.totp_secret, clock())}
    )
    assert response.status_code == 302, response.get_data(as_text=True)
    # Each TOTP step is accepted once; move on so the next login in a test gets a fresh step.
    clock.advance(seconds=30)
    return response


def post_form(client: Any, page: str, action: str | None = None, **data: Any) -> Any:
    """Submit a form found on `page` (CSRF token included) to `action` (default: the page)."""
    token = csrf_token(client, page)
    return client.post(action or page, data={"csrf_token": token, **data})


def audit_actions(db: Any) -> list[tuple[str, str, dict[str, Any]]]:
    """(action, outcome, details) of every audit event, in sequence order."""
    import json

    from avhopp.audit.models import AuditEvent

    db.expire_all()
    rows = db.scalars(select(AuditEvent).order_by(AuditEvent.seq)).all()
    return [(r.action, r.outcome, json.loads(r.details)) for r in rows]


def user_row(db: Any, user_id: uuid.UUID) -> User:
    db.expire_all()
    user = db.get(User, user_id)
    assert user is not None
    return user


def database_bytes(session: Any) -> bytes:
    """Everything the database holds, as bytes: the SQLite file and its WAL, or on PostgreSQL
    every row of every table as text (what a dump or a copy of the data directory would show)."""
    bind = session.get_bind()
    if bind.dialect.name == "sqlite":
        path = Path(bind.url.database)
        return b"".join(p.read_bytes() for p in sorted(path.parent.glob(path.name + "*")))
    chunks = []
    for table in Base.metadata.sorted_tables:
        # Table names come from our own metadata, not from input.
        rows = session.execute(text(f'SELECT t::text FROM "{table.name}" t')).scalars()  # noqa: S608
        chunks.extend(row.encode() for row in rows)
    return b"\n".join(chunks)


@pytest.fixture
def make_app(app_overrides: dict[str, Any]) -> Iterator[Any]:
    """Create extra apps (other settings, a second 'process') whose engines are disposed after."""
    created: list[Any] = []

    def factory(**changes: Any) -> Any:
        application = create_app({**app_overrides, **changes})
        created.append(application)
        return application

    yield factory
    for application in created:
        get_database(application).engine.dispose()
