"""Declarative base, engine setup for SQLite and PostgreSQL, and session helpers."""

from __future__ import annotations

import datetime as dt
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Any

from sqlalchemy import (
    JSON,
    DateTime,
    Engine,
    MetaData,
    String,
    TypeDecorator,
    create_engine,
    event,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.orm import DeclarativeBase, Session, mapped_column, sessionmaker
from sqlalchemy.types import Uuid

SQLITE_BUSY_TIMEOUT_MS = 30_000
# Execution option of read-mostly sessions: on SQLite they begin deferred (see _configure_sqlite).
READ_MOSTLY = "avhopp_read_mostly"
_DEFERRED = "avhopp.deferred"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
REQUEST_MEMO = "avhopp.request_memo"

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> dt.datetime:
    """The current time as an aware UTC datetime (the only kind this app stores)."""
    return dt.datetime.now(dt.UTC)


class UTCDateTime(TypeDecorator[dt.datetime]):
    """Aware UTC datetimes on both engines; naive values are refused, never guessed."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime refused; use aware UTC")
        value = value.astimezone(dt.UTC)
        if dialect.name == "sqlite":
            # SQLite has no time zones: store naive UTC so ordering and comparison stay textual.
            return value.replace(tzinfo=None)
        return value

    def process_result_value(self, value: Any, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=dt.UTC)
        return value.astimezone(dt.UTC)


uuid_pk = Annotated[uuid.UUID, mapped_column(Uuid, primary_key=True, default=uuid.uuid4)]
str40 = Annotated[str, 40]
str200 = Annotated[str, 200]


class Base(DeclarativeBase):
    """The one declarative base: naming convention and the type map live here."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {
        dt.datetime: UTCDateTime(),
        uuid.UUID: Uuid(),
        str40: String(40),
        str200: String(200),
        dict[str, Any]: JSON(),
    }


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy, not the driver, decide when transactions start (for BEGIN IMMEDIATE).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA journal_mode = WAL")  # stored in the file: once is enough
        cursor.close()

    @event.listens_for(engine, "checkout")
    def _on_checkout(dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
        # On every checkout, not only on connect: a pooled connection on which someone switched
        # a pragma off is never handed out unconfigured. Each costs microseconds (no I/O).
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA synchronous = FULL")
        cursor.execute("PRAGMA foreign_keys = ON")
        # Freed pages are zeroed so erased data does not linger in the file.
        cursor.execute("PRAGMA secure_delete = ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        # Take the write lock up front: a deferred transaction that later writes can fail with
        # "database is locked" without waiting; IMMEDIATE waits on busy_timeout instead.
        # Read-mostly sessions (GET requests) begin deferred so that readers run side by side;
        # their first write ends the read snapshot and takes the lock (below).
        deferred = bool(conn.get_execution_options().get(READ_MOSTLY))
        conn.exec_driver_sql("BEGIN" if deferred else "BEGIN IMMEDIATE")
        conn.info[_DEFERRED] = deferred

    @event.listens_for(engine, "before_cursor_execute")
    def _before_write(conn: Any, cursor: Any, statement: str, *_args: Any) -> None:
        if not conn.info.get(_DEFERRED) or statement.lstrip()[:6].upper() == "SELECT":
            return
        # The first write of a read-mostly transaction. Upgrading a deferred WAL transaction in
        # place fails at once ("database is locked", no busy wait) if another connection wrote
        # since our snapshot began; instead end the snapshot (nothing was written in it) and
        # start over with the write lock, waiting on busy_timeout like every writer. What this
        # transaction read before is then as of an earlier moment, as under PostgreSQL's READ
        # COMMITTED; requests that read-modify-write (POST) never take this path.
        conn.info[_DEFERRED] = False
        cursor.execute("COMMIT")
        cursor.execute("BEGIN IMMEDIATE")

    @event.listens_for(engine, "commit")
    @event.listens_for(engine, "rollback")
    def _on_end(conn: Any) -> None:
        conn.info[_DEFERRED] = False


def make_engine(url: str, *, echo: bool = False) -> Engine:
    """Create the engine for `url` with the settings each engine needs."""
    if url.startswith("sqlite"):
        # A pool per process (SQLAlchemy's default for a file): opening a connection and setting
        # its pragmas cost a fifth of a request under load. The pragmas are set again at every
        # checkout, and a pooled connection is used by one thread at a time.
        engine = create_engine(url, echo=echo)
        _configure_sqlite(engine)
        return engine
    engine = create_engine(url, echo=echo, pool_size=5, max_overflow=5)
    ping_idle_connections(engine, PING_AFTER_IDLE_SECONDS)
    return engine


# A pooled PostgreSQL connection that has been idle this long is checked with a round trip
# before it is handed out, and replaced if it died meanwhile (a server restart, a killed
# backend). SQLAlchemy's pool_pre_ping checks at every checkout, which under load was three
# or four round trips a request for connections used milliseconds before.
PING_AFTER_IDLE_SECONDS = 2.0


def ping_idle_connections(engine: Engine, idle_seconds: float) -> None:
    """Ping a connection at checkout when it has been idle in the pool for `idle_seconds`."""

    @event.listens_for(engine, "checkin")
    def _on_checkin(_dbapi_connection: Any, record: Any) -> None:
        record.info["idle_since"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _on_checkout(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        since = record.info.get("idle_since")
        if since is None or time.monotonic() - since < idle_seconds:
            return  # new, or used moments ago
        try:
            engine.dialect.do_ping(dbapi_connection)
            dbapi_connection.rollback()  # the ping's implicit transaction ends here
        except engine.dialect.loaded_dbapi.Error as exc:
            # The pool discards this connection and checks out another (SQLAlchemy's
            # documented pessimistic disconnect handling).
            raise DisconnectionError("pooled connection failed its ping") from exc


# ANALYZE reads at most this many rows per index on SQLite: statistics good enough for the
# planner in bounded time on a large database.
SQLITE_ANALYSIS_LIMIT = 2000


def refresh_statistics(engine: Engine) -> None:
    """Give SQLite's query planner table statistics (sqlite_stat1). Without them it guesses,
    and guessed that an equality on track status is selective: "my tracks" filtered by status
    then read every track (5 ms a query with 10,000 tracks, 0.2 ms with statistics).
    PostgreSQL's autovacuum keeps its own statistics, so this does nothing there."""
    if engine.dialect.name != "sqlite":
        return
    with engine.begin() as conn:
        conn.exec_driver_sql(f"PRAGMA analysis_limit = {SQLITE_ANALYSIS_LIMIT}")
        conn.exec_driver_sql("ANALYZE")


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    factory = sessionmaker(bind=engine, expire_on_commit=False, autoflush=True)

    # A request's memo (see request_memo) holds answers derived from the database; any change
    # this session makes, and any rollback, may invalidate them, so it is emptied.
    @event.listens_for(factory, "after_flush")
    @event.listens_for(factory, "after_rollback")
    def _forget(session: Session, *_args: Any) -> None:
        memo = session.info.get(REQUEST_MEMO)
        if memo:
            memo.clear()

    @event.listens_for(factory, "do_orm_execute")
    def _forget_on_write(state: Any) -> None:
        if not state.is_select:
            _forget(state.session)

    return factory


def request_memo(session: Session) -> dict[Any, Any] | None:
    """The memo of a web request's session: a place for answers that stay true for the rest of
    the request unless the session changes something (then, and on rollback, it is emptied).
    None for every other session (CLI, scheduler), whose lives span many transactions."""
    return session.info.get(REQUEST_MEMO)  # type: ignore[no-any-return]


@contextmanager
def session_scope(factory: sessionmaker[Session]) -> Iterator[Session]:
    """A unit of work for the CLI and jobs: commit on success, roll back on any error."""
    session = factory()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


class Database:
    """The engine and session factory of one app, kept in app.extensions["avhopp.db"]."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = make_engine(url)
        self.factory = make_session_factory(self.engine)
        # For GET requests: readers do not queue for SQLite's write lock (no-op on PostgreSQL).
        self.read_factory = make_session_factory(
            self.engine.execution_options(**{READ_MOSTLY: True}))

    def attach_field_crypto(self, crypto: Any) -> None:
        # The key is avhopp.encryption.orm.SESSION_KEY; spelled out because db is a leaf module.
        for factory in (self.factory, self.read_factory):
            factory.configure(info={"avhopp.field_crypto": crypto})

    @property
    def is_sqlite(self) -> bool:
        return self.engine.dialect.name == "sqlite"

    def scope(self, *, read_mostly: bool = False) -> Any:
        return session_scope(self.read_factory if read_mostly else self.factory)


def init_app(app: Any, database: Database) -> None:
    """Attach `database` to the app and close the request session after each request."""
    app.extensions["avhopp.db"] = database

    @app.teardown_appcontext
    def _close_session(_exc: BaseException | None) -> None:
        discard_request_session()


def discard_request_session() -> None:
    """Roll back and close the request's session. Anything the view did not commit is discarded:
    commits are explicit and happen once. Also called before the web session is saved, so that
    on SQLite the request's open transaction does not hold the write lock the save needs."""
    from flask import g

    session = g.pop("db_session", None)
    if session is not None:
        session.rollback()
        session.close()


def get_database(app: Any = None) -> Database:
    from flask import current_app

    return (app or current_app).extensions["avhopp.db"]  # type: ignore[no-any-return]


def request_session() -> Session:
    """The session of the current request (or app context), created on first use."""
    from flask import g

    if "db_session" not in g:
        from flask import has_request_context, request

        database = get_database()
        # Safe methods only read (and append audit events); everything else starts with the
        # write lock on SQLite, so a read-modify-write cannot interleave with another writer.
        read_mostly = has_request_context() and request.method in SAFE_METHODS
        g.db_session = (database.read_factory if read_mostly else database.factory)()
        g.db_session.info[REQUEST_MEMO] = {}
    return g.db_session  # type: ignore[no-any-return]
