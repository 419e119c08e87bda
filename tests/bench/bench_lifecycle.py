"""Data lifecycle: backup, restore and restore drill of 10,000 tracks; the statistics page."""

from __future__ import annotations

import datetime as dt
import random
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, text

from avhopp import migrate
from avhopp.accounts.models import User
from avhopp.app import create_app
from avhopp.audit.services import record
from avhopp.cases.models import DefectorCase
from avhopp.casework.models import Consent, JournalEntry, Person, Track
from avhopp.crypto.keyring import encode_env_value, generate_key_file
from avhopp.db import get_database
from avhopp.privacy import backup
from avhopp.privacy.backupfile import generate_backup_key

TRACKS = 10_000
BATCH = 500
PG_ADMIN = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
NOW = dt.datetime(2026, 11, 1, 9, 0, tzinfo=dt.UTC)


def seed(app: Any, count: int | None = None) -> None:
    """Synthetic tracks written in batches through the ORM (so every field is really sealed
    under its person's key and indexed), with a statistics consent, a journal entry and one
    audit event each; much faster than `avhopp dev seed`, which goes through every service."""
    count = TRACKS if count is None else count
    rng = random.Random(8)  # noqa: S311  synthetic benchmark data
    database = get_database(app)
    with database.scope() as session:
        owner = User(id=uuid.uuid4(), username="bench.owner", role="coordinator",
                     password_hash="x", is_active=True)
        session.add(owner)
    for start in range(0, count, BATCH):
        with database.scope() as session:
            later = []
            for i in range(start, min(start + BATCH, count)):
                person = Person(name=f"Bench Person {i} (TESTDATA)", alias=f"B{i}",
                                phone=f"+4670174{605 + i % 95:04d}",
                                personnummer=None, birth_year=1980 + i % 25)
                opened = NOW - dt.timedelta(days=rng.randrange(1, 720))
                track = Track(id=uuid.uuid4(), kind="defector", code=f"B{i:07d}",
                              status="active", owner_id=owner.id, person_id=person.id,
                              opened_at=opened, referral_source="self",
                              municipality=rng.choice(("0180", "1280", "1480", "0380")),
                              risk_level=rng.choice(("low", "medium", "high", None)))
                if i % 3 == 0:
                    track.status = "closed"
                    track.closed_at = opened + dt.timedelta(days=30)
                case = DefectorCase(id=track.id, person_id=person.id)
                case.environment = rng.choice(("white_power", "violent_islamism"))
                case.safety_plan = "Syntetisk säkerhetsplan för mätning."
                consent = Consent(track_id=track.id, person_id=person.id,
                                  consent_type="statistics", form="written",
                                  recorded_by=owner.id, valid_from=dt.date(2024, 1, 1))
                entry = JournalEntry(track_id=track.id, person_id=person.id,
                                     occurred_at=opened, contact_type="meeting",
                                     contact_achieved=True, author_id=owner.id)
                entry.note = "Syntetisk journalanteckning för mätning."
                session.add_all([person, track])
                later += [case, consent, entry]
            # No ORM relationships to order the inserts by: parents first.
            session.flush()
            session.add_all(later)
            session.flush()
            for i in range(start, min(start + BATCH, count)):
                record(session, action="track.opened", object_type="track",
                       object_id=f"B{i:07d}", details={"kind": "defector"})


def _timed(fn: Any) -> tuple[float, Any]:
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def _pg_database(name: str) -> str:
    admin = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return PG_ADMIN.rsplit("/", 1)[0] + f"/{name}"


def _drop(name: str) -> None:
    admin = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                          "WHERE datname = :n AND pid <> pg_backend_pid()"), {"n": name})
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
    admin.dispose()


def bench_engine(report: Any, engine: str, folder: Path) -> None:
    keys = encode_env_value(generate_key_file())
    created: list[str] = []
    if engine == "sqlite":
        url = f"sqlite:///{folder / 'bench.sqlite'}"
        target = f"sqlite:///{folder / 'restored.sqlite'}"
    else:
        tag = uuid.uuid4().hex[:8]
        created = [f"avhopp_bench_{tag}", f"avhopp_bench_restore_{tag}"]
        url, target = _pg_database(created[0]), _pg_database(created[1])
    try:
        migrate.upgrade(url)
        app = create_app({"ENV": "testing", "DATABASE_URL": url, "KEYS": keys,
                          "INSTANCE_PATH": str(folder / "instance")})
        seconds, _ = _timed(lambda: seed(app))
        report.add(f"{engine}: seed {TRACKS:,} tracks (setup, not a target)", seconds, "s")
        ring = app.extensions["avhopp.keys"]
        settings = app.extensions["avhopp.audit"]
        key = generate_backup_key()
        out = folder / f"{engine}.avbk"
        seconds, result = _timed(lambda: backup.create_backup(
            url, output=out, recipient=key.public, keyring=ring))
        report.add(f"{engine}: backup create, {TRACKS:,} tracks", seconds, "s",
                   target="≤ 60 s", met=seconds <= 60,
                   note=f"{result.size / 1e6:.1f} MB encrypted")
        seconds, _ = _timed(lambda: backup.restore_file(out, key=key, keyring=ring,
                                                       target_url=target))
        report.add(f"{engine}: restore (authenticate, decrypt, load)", seconds, "s",
                   target="≤ 120 s", met=seconds <= 120)
        seconds, check = _timed(lambda: backup.check_database(
            target, keyring=ring, settings=settings, manifest=result.manifest))
        report.add(f"{engine}: restore checks (counts, audit verify, decrypt every field)",
                   seconds, "s", target="≤ 120 s", met=seconds <= 120 and check.ok,
                   note=f"{check.fields_opened:,} fields opened; ok={check.ok}")
        _time_stats(report, engine, app)
        get_database(app).engine.dispose()
    finally:
        for name in created:
            _drop(name)


def _time_stats(report: Any, engine: str, app: Any) -> None:
    from avhopp.stats import services
    from avhopp.stats.views import ORDERS

    database = get_database(app)
    samples = []
    for _ in range(3):
        with database.factory() as session:
            seconds, stats = _timed(lambda s=session: services.compute(
                s, now=NOW, orders=ORDERS))
            session.rollback()
        samples.append(seconds)
    report.add(f"{engine}: statistics over {stats.population:,} consenting tracks (best of 3)",
               min(samples), "s", target="≤ 2 s", met=min(samples) <= 2,
               note="uncached: the page keeps its counts for STATS_CACHE_SECONDS")
    with app.test_request_context("/stats/"):
        from flask import render_template

        from avhopp.stats.views import TITLES, label

        seconds, html = _timed(lambda: render_template(
            "stats/index.html", stats=stats, titles=TITLES, label=label))
    report.add(f"{engine}: statistics page render (SVG charts and tables)", seconds, "s",
               note=f"{len(html) / 1e3:.0f} kB of HTML")


def run(report: Any) -> None:
    for engine in ("sqlite", "postgresql"):
        with tempfile.TemporaryDirectory(prefix="avhopp-bench-") as folder:
            bench_engine(report, engine, Path(folder))
