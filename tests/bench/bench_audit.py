"""Audit log: append overhead, full verification and the board's review page at scale."""

from __future__ import annotations

import datetime as dt
import json
import secrets
import sqlite3
import statistics
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from avhopp import migrate
from avhopp.audit.merkle import TreeBuilder, encode_entry, leaf_hash
from avhopp.audit.note import Signer, format_checkpoint, sign_note
from avhopp.db import make_engine, make_session_factory, session_scope

ORIGIN = "avhopp audit log"
KEY_NAME = "avhopp-audit-log"
START = dt.datetime(2025, 11, 3, 6, 0, tzinfo=dt.UTC)
STAFF = 20
ACTIONS = (
    # (action, object type, share): mostly reads, as in daily case work.
    ("user.listed", "user", 40),
    ("audit.viewed", None, 10),
    ("auth.login_password", "user", 15),
    ("auth.login_second_factor", "user", 15),
    ("auth.logout", "user", 10),
    ("security.access_denied", None, 5),
    ("user.role_changed", "user", 5),
)
_INSERT = (
    "INSERT INTO audit_event (seq, occurred_at, actor_id, actor_role, session_hash, client_addr,"
    " action, object_type, object_id, outcome, purpose, details, request_id, nonce, leaf_hash)"
    " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)"
)


def build_log(path: Path, entries: int, *, checkpoint_every: int = 0,
              signer: Signer | None = None) -> list[uuid.UUID]:
    """A migrated SQLite file holding `entries` realistic audit entries with correct leaves,
    written with one bulk INSERT per 50,000 rows (record() would take minutes for a million).
    Returns the staff ids used as actors."""
    url = f"sqlite:///{path}"
    migrate.upgrade(url)
    rng = secrets.SystemRandom()
    staff = [uuid.uuid4() for _ in range(STAFF)]
    roles = ["coordinator"] * 8 + ["support_worker"] * 9 + ["admin", "board", "board"]
    weighted = [a for a in ACTIONS for _ in range(a[2])]
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = OFF")
    builder = TreeBuilder()
    rows: list[tuple[Any, ...]] = []
    checkpoints: list[tuple[Any, ...]] = []
    when = START
    session_left = 0
    actor = staff[0]
    role = roles[0]
    session_hash = addr = ""
    for seq in range(1, entries + 1):
        if session_left == 0:
            index = rng.randrange(STAFF)
            actor, role = staff[index], roles[index]
            session_hash = secrets.token_hex(16)
            addr = f"10.1.{index}.{rng.randrange(2, 250)}"
            session_left = rng.randrange(5, 60)
        session_left -= 1
        when += dt.timedelta(seconds=rng.randrange(1, 60))
        action, object_type, _share = rng.choice(weighted)
        outcome = "denied" if action == "security.access_denied" else "success"
        details = {"user.listed": '{"count":20}', "audit.viewed": '{"page":"events"}',
                   "security.access_denied": '{"endpoint":"accounts.admin_users"}'}.get(
                       action, "{}")
        object_id = str(staff[rng.randrange(STAFF)]) if object_type else None
        request_id = secrets.token_hex(8)
        nonce = secrets.token_bytes(16)
        fields = (seq, when.isoformat(timespec="microseconds"), str(actor), role, session_hash,
                  addr, action, object_type, object_id, outcome, None, details, request_id,
                  nonce)
        leaf = leaf_hash(encode_entry(fields))
        builder.append(leaf)
        rows.append((seq, when.strftime("%Y-%m-%d %H:%M:%S.%f"), actor.hex, role, session_hash,
                     addr, action, object_type, object_id, outcome, None, details, request_id,
                     nonce, leaf))
        if checkpoint_every and signer is not None and seq % checkpoint_every == 0:
            root = builder.root()
            note = sign_note(format_checkpoint(ORIGIN, seq, root), signer)
            checkpoints.append((seq, root, note, builder.frontier(),
                                when.strftime("%Y-%m-%d %H:%M:%S.%f")))
        if len(rows) == 50_000:
            conn.executemany(_INSERT, rows)
            rows.clear()
    conn.executemany(_INSERT, rows)
    conn.executemany("INSERT INTO audit_checkpoint (size, root, note, frontier, signed_at) "
                     "VALUES (?,?,?,?,?)", checkpoints)
    conn.execute("UPDATE audit_head SET size = ?", (entries,))
    conn.commit()
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    return staff


def _append_overhead(report: Any, workdir: Path) -> None:
    """Time of one record() inside a transaction, against the same transaction without it."""
    from avhopp.audit.services import record

    path = workdir / "append.sqlite"
    url = f"sqlite:///{path}"
    migrate.upgrade(url)
    engine = make_engine(url)
    factory = make_session_factory(engine)
    per_event: list[float] = []
    events = 2000
    with session_scope(factory) as session:
        for _ in range(events):
            start = time.perf_counter()
            record(session, action="user.listed", details={"count": 3})
            per_event.append(time.perf_counter() - start)
    engine.dispose()
    median_ms = statistics.median(per_event) * 1000
    report.add("audit append (record + flush), median per event, SQLite", median_ms, "ms",
               target="≤ 1 ms", met=median_ms <= 1.0,
               note=f"{events} events in one transaction")
    _append_overhead_pg(report)


def _append_overhead_pg(report: Any) -> None:
    import os

    from sqlalchemy import create_engine, text

    admin_url = os.environ.get("AVHOPP_TEST_PG_URL",
                               "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
    name = f"avhopp_bench_{uuid.uuid4().hex[:8]}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:  # the benchmark reports what it could not measure
        report.add("audit append, PostgreSQL", 0, "ms", note=f"not measured: {exc}")
        return
    url = admin_url.rsplit("/", 1)[0] + f"/{name}"
    try:
        from avhopp.audit.services import record

        migrate.upgrade(url)
        engine = make_engine(url)
        factory = make_session_factory(engine)
        per_event: list[float] = []
        with session_scope(factory) as session:
            for _ in range(2000):
                start = time.perf_counter()
                record(session, action="user.listed", details={"count": 3})
                per_event.append(time.perf_counter() - start)
        engine.dispose()
        median_ms = statistics.median(per_event) * 1000
        report.add("audit append (record + flush), median per event, PostgreSQL", median_ms,
                   "ms", target="≤ 1 ms", met=median_ms <= 1.0,
                   note="2000 events in one transaction")
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def _verification(report: Any, path: Path, signer: Signer) -> None:
    from avhopp.audit.verify import verify_log

    engine = make_engine(f"sqlite:///{path}")
    factory = make_session_factory(engine)
    with session_scope(factory) as session:
        start = time.perf_counter()
        result, _tree = verify_log(session, verifier=signer.verifier(), origin=ORIGIN)
        seconds = time.perf_counter() - start
    engine.dispose()
    assert result.ok, result.problems
    report.add("verify 1,000,000 entries (every leaf, tree, checkpoints), SQLite", seconds, "s",
               target="≤ 10 s", met=seconds <= 10.0,
               note=f"{result.checkpoints} stored checkpoints checked")


def _board_page(report: Any, path: Path, staff: list[uuid.UUID]) -> None:
    from avhopp.audit.policy import AuditSettings
    from avhopp.audit.queries import EventFilter, page_events
    from avhopp.audit.services import ACTIONS

    engine = make_engine(f"sqlite:///{path}")
    factory = make_session_factory(engine)
    settings = AuditSettings()
    filters = {
        "no filter (newest page)": EventFilter(),
        "action + outcome": EventFilter(action="security.access_denied", outcome="denied"),
        "actor + date range": EventFilter(
            actor_id=staff[3], since=START + dt.timedelta(days=100),
            until=START + dt.timedelta(days=130)),
        "object code": EventFilter(object_code=str(staff[5])),
        "flag: denied": EventFilter(flag="denied"),
        "flag: after hours": EventFilter(flag="after_hours"),
        "flag: unusual volume, one month": EventFilter(
            flag="high_volume", since=START + dt.timedelta(days=200),
            until=START + dt.timedelta(days=230)),
    }
    for label, flt in filters.items():
        timings = []
        for _ in range(5):
            with session_scope(factory) as session:
                start = time.perf_counter()
                page = page_events(session, actor=None, flt=flt, settings=settings,
                                   actions=tuple(ACTIONS))
                timings.append(time.perf_counter() - start)
        ms = statistics.median(timings) * 1000
        report.add(f"board page over 1,000,000 entries, {label}", ms, "ms",
                   target="≤ 200 ms", met=ms <= 200,
                   note=f"{len(page.rows)} rows on the page, with flags")
    engine.dispose()


def _board_http(report: Any, path: Path, staff: list[uuid.UUID], workdir: Path) -> None:
    """The whole page over HTTP as a board member sees it: gate, audit.viewed, query, template."""
    from avhopp.app import create_app
    from avhopp.crypto.keyring import encode_env_value, generate_key_file
    from avhopp.db import get_database
    from tests.conftest import FrozenClock, login, make_user

    clock = FrozenClock(dt.datetime.now(dt.UTC))
    app = create_app({"ENV": "testing", "DATABASE_URL": f"sqlite:///{path}",
                      "KEYS": encode_env_value(generate_key_file()),
                      "INSTANCE_PATH": str(workdir / "instance"), "CLOCK": clock})
    from avhopp.accounts.models import User

    with get_database(app).scope() as session:
        # The actors of the generated log become real accounts, so the actor filter accepts them.
        for index, staff_id in enumerate(staff):
            if session.get(User, staff_id) is None:
                session.add(User(id=staff_id, username=f"staff.{index}", role="coordinator",
                                 password_hash="-"))
    client = app.test_client()
    login(client, make_user(app, role="board"), clock)
    day = START + dt.timedelta(days=100)
    pages = {
        "no filter": "/audit/",
        "action + outcome": "/audit/?action=security.access_denied&outcome=denied",
        "actor + month": f"/audit/?actor={staff[3]}&date_from={day:%Y-%m-%d}"
                         f"&date_to={day + dt.timedelta(days=30):%Y-%m-%d}",
        "flag: after hours": "/audit/?flag=after_hours",
        "older page (keyset)": "/audit/?before=500000",
    }
    for label, url in pages.items():
        timings = []
        for _ in range(5):
            start = time.perf_counter()
            response = client.get(url)
            timings.append(time.perf_counter() - start)
            assert response.status_code == 200, response.status_code
        shown = response.get_data(as_text=True).count('<td class="num">')
        ms = statistics.median(timings) * 1000
        report.add(f"board page over HTTP, 1,000,000 entries, {label}", ms, "ms",
                   target="≤ 200 ms", met=ms <= 200,
                   note=f"{shown} rows; gate, recorded view, query with flags, template")
    get_database(app).engine.dispose()


def run(report: Any) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        _append_overhead(report, workdir)
        signer = Signer.generate(KEY_NAME)
        path = workdir / "million.sqlite"
        start = time.perf_counter()
        # One checkpoint per 500 entries ≈ what the thinning keeps (every checkpoint of the
        # last 30 days, one a day before that) for a year of a busy office.
        staff = build_log(path, 1_000_000, checkpoint_every=500, signer=signer)
        report.add("build 1,000,000 entries (bulk insert, not a target)",
                   time.perf_counter() - start, "s")
        _verification(report, path, signer)
        _board_page(report, path, staff)
        _board_http(report, path, staff, workdir)


if __name__ == "__main__":  # pragma: no cover - `python -m tests.bench.bench_audit`
    from tests.bench.run import Report

    run(Report())
    print(json.dumps({"done": True}))
