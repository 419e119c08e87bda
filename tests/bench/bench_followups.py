"""Follow-ups: the enqueue tick and the Min dag page with 100,000 follow-ups, both engines."""

from __future__ import annotations

import datetime as dt
import os
import random
import statistics
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, insert, text

from avhopp import migrate
from avhopp.db import refresh_statistics

FOLLOW_UPS = 100_000
TRACKS = 4_000
WORKERS = 40
NOW = dt.datetime(2026, 11, 2, 9, 0, tzinfo=dt.UTC)
PG_ADMIN = os.environ.get("AVHOPP_TEST_PG_URL",
                          "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")


def _app(url: str, workdir: Path, clock: Any) -> Any:
    from avhopp.app import create_app
    from avhopp.crypto.keyring import encode_env_value, generate_key_file

    return create_app({"ENV": "testing", "DATABASE_URL": url, "CLOCK": clock,
                       "KEYS": encode_env_value(generate_key_file()),
                       "INSTANCE_PATH": str(workdir / "instance")})


def _fill(app: Any, me: uuid.UUID) -> None:
    """Staff, persons (no identity fields: none is needed here), tracks and follow-ups, in bulk.
    About 1 % of the open follow-ups fall due for a reminder in the last five minutes; older
    ones were reminded by earlier ticks (the steady state of a running scheduler)."""
    from avhopp.accounts.models import User
    from avhopp.casework.models import Person, Track
    from avhopp.db import get_database
    from avhopp.followups.models import FollowUp, ReminderPreference

    rng = random.Random(7)  # noqa: S311  synthetic data, not security
    with get_database(app).scope() as session:
        workers = [me] + [uuid.uuid4() for _ in range(WORKERS - 1)]
        session.execute(insert(User.__table__), [
            {"id": w, "username": f"bench.{i}", "role": "support_worker", "is_active": True,
             "password_hash": "-", "must_change_password": False, "password_changed_at": NOW,
             "totp_last_step": 0, "created_at": NOW, "version": 1}
            for i, w in enumerate(workers[1:], start=1)])
        session.execute(insert(ReminderPreference.__table__), [
            {"user_id": w, "mode": "immediate", "email": f"w{i}@example.org", "updated_at": NOW}
            for i, w in enumerate(workers)])
        persons = [uuid.uuid4() for _ in range(TRACKS)]
        session.execute(insert(Person.__table__), [
            {"id": p, "created_at": NOW, "version": 1} for p in persons])
        tracks = [(uuid.uuid4(), rng.choice(workers), p) for p in persons]
        session.execute(insert(Track.__table__), [
            {"id": t, "kind": "defector", "code": f"AV-{i:05d}", "status": "active",
             "owner_id": o, "person_id": p, "opened_at": NOW - dt.timedelta(days=200),
             "referral_source": "self", "access_level": "normal", "version": 1}
            for i, (t, o, p) in enumerate(tracks)])
        rows = []
        for _ in range(FOLLOW_UPS):
            track_id, owner, person = rng.choice(tracks)
            due = NOW + dt.timedelta(minutes=rng.randrange(-60 * 24 * 60, 60 * 24 * 365))
            is_open = due > NOW - dt.timedelta(days=3) or rng.random() < 0.05
            remind = due - dt.timedelta(days=1)
            fresh = NOW - dt.timedelta(minutes=5) < remind <= NOW
            rows.append({
                "id": uuid.uuid4(), "track_id": track_id, "person_id": person,
                "series_id": uuid.uuid4(), "occurrence": 1, "kind": "contact",
                "status": "open" if is_open else "done", "assignee_id": owner,
                "anchor_at": due, "due_at": due, "reminder_lead_minutes": 1440,
                "escalation_delay_minutes": 2880, "remind_at": remind,
                "escalate_at": due + dt.timedelta(days=2), "recurrence": "weekly",
                "revision": 1, "reminded_revision": 0 if fresh or remind > NOW else 1,
                "escalated_revision": 1 if due + dt.timedelta(days=2) <= NOW else 0,
                "created_at": NOW, "version": 1})
        for start in range(0, len(rows), 10_000):
            session.execute(insert(FollowUp.__table__), rows[start:start + 10_000])


def _measure(report: Any, engine_name: str, url: str, workdir: Path) -> None:
    from avhopp.followups import outbox
    from avhopp.followups.settings import FollowUpSettings
    from tests.conftest import FrozenClock, login, make_user

    clock = FrozenClock(NOW - dt.timedelta(minutes=10))
    app = _app(url, workdir, clock)
    me = make_user(app, role="support_worker")
    _fill(app, me.id)
    if engine_name == "PostgreSQL":
        with app.extensions["avhopp.db"].engine.begin() as conn:
            conn.execute(text("ANALYZE"))
    else:  # what the scheduler's daily statistics duty does on SQLite
        refresh_statistics(app.extensions["avhopp.db"].engine)
    from avhopp.db import get_database

    clock.now = NOW
    settings = FollowUpSettings()
    with get_database(app).scope() as session:
        start = time.perf_counter()
        queued = (outbox.enqueue_reminders(session, now=NOW, settings=settings)
                  + outbox.enqueue_escalations(session, now=NOW, settings=settings))
        seconds = time.perf_counter() - start
    report.add(f"enqueue tick over {FOLLOW_UPS:,} follow-ups, {engine_name}", seconds, "s",
               target="≤ 1 s", met=seconds <= 1.0,
               note=f"{queued} reminders and escalations queued (the last five minutes' due)")
    with get_database(app).scope() as session:
        start = time.perf_counter()
        again = (outbox.enqueue_reminders(session, now=NOW, settings=settings)
                 + outbox.enqueue_escalations(session, now=NOW, settings=settings))
        idle = time.perf_counter() - start
    report.add(f"enqueue tick with nothing new due, {engine_name}", idle * 1000, "ms",
               note=f"{again} queued")

    client = app.test_client()
    login(client, me, clock)
    timings = []
    for _ in range(60):
        start = time.perf_counter()
        response = client.get("/followups/my-day")
        timings.append(time.perf_counter() - start)
        assert response.status_code == 200, response.status_code
    timings = sorted(timings[10:])  # the first requests warm caches
    p95 = statistics.quantiles(timings, n=20)[-1] * 1000
    shown = response.get_data(as_text=True).count("/followups/") - 1
    report.add(f"Min dag page over HTTP, {FOLLOW_UPS:,} follow-ups, p95, {engine_name}", p95,
               "ms", target="≤ 50 ms", met=p95 <= 50,
               note=f"median {statistics.median(timings) * 1000:.1f} ms; ~{shown} links "
                    "for a worker with ~2,500 follow-ups")
    get_database(app).engine.dispose()


def run(report: Any) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        url = f"sqlite:///{workdir / 'followups.sqlite'}"
        migrate.upgrade(url)
        _measure(report, "SQLite", url, workdir)
        name = f"avhopp_bench_fu_{uuid.uuid4().hex[:8]}"
        admin = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        try:
            pg_url = PG_ADMIN.rsplit("/", 1)[0] + f"/{name}"
            migrate.upgrade(pg_url)
            _measure(report, "PostgreSQL", pg_url, workdir / "pg")
        finally:
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            admin.dispose()


if __name__ == "__main__":  # pragma: no cover - `python -m tests.bench.bench_followups`
    from tests.bench.run import Report

    run(Report())
