"""Crash and concurrency proof (SECURITY.md R-lines): kill -9 mid-write, many writers at once."""

from __future__ import annotations

import datetime as dt
import multiprocessing
import os
import random
import signal
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from avhopp.accounts.models import User
from avhopp.app import create_app
from avhopp.casework import services as casework
from avhopp.casework.models import JournalEntry, PlanGoal
from avhopp.db import get_database
from avhopp.errors import Conflict
from tests.conftest import ENGINES, PG_ADMIN_URL
from tests.proof.harness import Browser, Instance, gunicorn, worker_pids

pytestmark = pytest.mark.proof


@pytest.fixture(params=ENGINES)
def instance(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Instance]:
    made = Instance(tmp_path, request.param, PG_ADMIN_URL)
    try:
        made.create(tracks=2, users=1)
        yield made
    finally:
        made.drop()


def _journal_notes(instance: Instance, track_id: uuid.UUID) -> list[str]:
    app = create_app(instance.overrides())
    database = get_database(app)
    try:
        with database.scope() as session:
            rows = session.scalars(select(JournalEntry).where(JournalEntry.track_id == track_id))
            return [row.note for row in rows]
    finally:
        database.engine.dispose()


def test_killing_web_workers_mid_write_loses_no_acknowledged_write(instance: Instance) -> None:
    account = instance.plan["users"][0]
    track = account["tracks"][0]
    acknowledged: list[str] = []
    interrupted = 0
    with gunicorn(instance, workers=3) as (url, server):
        browser = Browser(url)
        browser.login(account)
        stop = threading.Event()

        def write() -> None:
            nonlocal interrupted
            n = 0
            while not stop.is_set():
                n += 1
                marker = f"krocktest-{n}-{uuid.uuid4().hex[:8]}"
                try:
                    token = browser.csrf(f"/tracks/{track}")
                    status, _ = browser.request(f"/tracks/{track}/journal", {
                        "csrf_token": token, "occurred_at": "2026-11-20T10:00",
                        "contact_type": "phone", "contact_achieved": "y", "note": marker,
                        "sensitivity": "normal"})
                except (OSError, RuntimeError):
                    interrupted += 1  # the worker died under us: not acknowledged
                    continue
                if status == 302:
                    acknowledged.append(marker)

        writer = threading.Thread(target=write)
        writer.start()
        rng = random.Random(5)  # noqa: S311  # nosec B311  kill timing only
        kills = 0
        deadline = time.monotonic() + 120
        try:
            # Kill a worker every so often until enough kills and enough acknowledged writes
            # have happened; a slow machine just takes longer.
            while (kills < 6 or len(acknowledged) < 20) and time.monotonic() < deadline:
                time.sleep(rng.uniform(0.4, 0.9))
                pids = worker_pids(server.pid)
                if pids and kills < 6:
                    os.kill(rng.choice(pids), signal.SIGKILL)
                    kills += 1
        finally:
            stop.set()
            writer.join(timeout=30)
        assert server.poll() is None, "the gunicorn master must survive its workers being killed"
    assert kills == 6
    assert len(acknowledged) >= 20, f"too few writes got through ({len(acknowledged)})"
    stored = _journal_notes(instance, uuid.UUID(track))
    missing = [m for m in acknowledged if m not in stored]
    assert missing == [], f"{len(missing)} acknowledged journal entries were lost"
    assert all(stored.count(m) == 1 for m in acknowledged), "an acknowledged entry was doubled"
    verify = instance.cli("audit", "verify", check=False)
    assert verify.returncode == 0, verify.stdout + verify.stderr


def _edit_worker(job: dict[str, Any], out: Any) -> None:
    overrides, track_id, goal_id = job["overrides"], job["track"], job["goal"]
    username, worker, edits = job["username"], job["worker"], job["edits"]
    app = create_app(overrides)
    database = get_database(app)
    successes = conflicts = 0
    when = dt.datetime(2026, 11, 20, 10, 0, tzinfo=dt.UTC)
    try:
        for i in range(edits):
            with database.scope() as session:
                actor = session.scalars(select(User).where(User.username == username)).one()
                casework.add_journal_entry(
                    session, actor=actor, track_id=uuid.UUID(track_id), occurred_at=when,
                    contact_type="phone", contact_achieved=True, note=f"p{worker}-{i}")
            while True:  # read-modify-write under optimistic locking, retried on a conflict
                try:
                    with database.scope() as session:
                        actor = session.scalars(
                            select(User).where(User.username == username)).one()
                        goal = session.get(PlanGoal, uuid.UUID(goal_id))
                        assert goal is not None
                        casework.update_plan_goal(
                            session, actor=actor, track_id=uuid.UUID(track_id),
                            goal_id=goal.id, expected_version=goal.version,
                            changes={"sub_goal": f"p{worker}-{i}"})
                    successes += 1
                    break
                except Conflict:
                    conflicts += 1
        out.put(("ok", worker, successes, conflicts))
    except Exception as error:  # reported to the parent, which fails the test
        out.put(("error", worker, repr(error), 0))
    finally:
        database.engine.dispose()


def test_four_processes_editing_one_track_lose_no_update_on_sqlite(tmp_path: Path) -> None:
    instance = Instance(tmp_path, "sqlite", PG_ADMIN_URL)
    instance.create(tracks=1, users=1)
    account = instance.plan["users"][0]
    track = account["tracks"][0]
    app = create_app(instance.overrides())
    database = get_database(app)
    with database.scope() as session:
        goal = session.scalars(select(PlanGoal).where(
            PlanGoal.track_id == uuid.UUID(track))).first()
        assert goal is not None, "the seeded track has a plan goal"
        goal_id, start_version = str(goal.id), goal.version
        before = len(session.scalars(select(JournalEntry.id).where(
            JournalEntry.track_id == uuid.UUID(track))).all())
    processes, edits = 4, 200
    context = multiprocessing.get_context("spawn")
    out = context.Queue()
    workers = [context.Process(target=_edit_worker, args=(
        {"overrides": instance.overrides(), "track": track, "goal": goal_id,
         "username": account["username"], "worker": n, "edits": edits}, out))
        for n in range(processes)]
    for proc in workers:
        proc.start()
    results = [out.get(timeout=600) for _ in workers]
    for proc in workers:
        proc.join(timeout=60)
    errors = [r for r in results if r[0] != "ok"]
    assert errors == [], errors
    with database.scope() as session:
        goal = session.get(PlanGoal, uuid.UUID(goal_id))
        assert goal is not None
        after = len(session.scalars(select(JournalEntry.id).where(
            JournalEntry.track_id == uuid.UUID(track))).all())
        assert goal.version == start_version + processes * edits, "an update was lost"
    database.engine.dispose()
    assert after - before == processes * edits
    assert sum(r[2] for r in results) == processes * edits
    verify = instance.cli("audit", "verify", check=False)
    assert verify.returncode == 0, verify.stdout + verify.stderr
