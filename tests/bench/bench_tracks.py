"""Defector tracks: list page, track page and personnummer search over 10,000 seeded tracks."""

from __future__ import annotations

import datetime as dt
import os
import re
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, select, text

from avhopp import migrate
from avhopp.cases import seed
from avhopp.casework.models import Person, Track
from avhopp.db import get_database, refresh_statistics, session_scope

TRACKS = int(os.environ.get("AVHOPP_BENCH_TRACKS", "10000"))
SAMPLES = 40
_CSRF = re.compile(r'name="csrf_token" type="hidden" value="([^"]+)"')


def _p95(samples: list[float]) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))]


def _timed(call: Callable[[], Any], runs: int = SAMPLES) -> tuple[list[float], Any]:
    call()  # warm: templates compiled, statements cached
    samples, last = [], None
    for _ in range(runs):
        start = time.perf_counter()
        last = call()
        samples.append((time.perf_counter() - start) * 1000)
    return samples, last


@contextmanager
def _postgres() -> Iterator[str | None]:
    admin_url = os.environ.get("AVHOPP_TEST_PG_URL",
                               "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
    name = f"avhopp_bench_{uuid.uuid4().hex[:8]}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception:  # the benchmark reports what it could not measure
        yield None
        admin.dispose()
        return
    try:
        yield admin_url.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def _engine(report: Any, label: str, url: str, workdir: Path) -> None:
    from avhopp.app import create_app
    from avhopp.crypto.keyring import encode_env_value, generate_key_file
    from tests.conftest import FrozenClock, login, make_user

    migrate.upgrade(url)
    clock = FrozenClock(dt.datetime.now(dt.UTC))
    app = create_app({"ENV": "testing", "DATABASE_URL": url,
                      "KEYS": encode_env_value(generate_key_file()),
                      "INSTANCE_PATH": str(workdir / f"instance-{label}"), "CLOCK": clock})
    database = get_database(app)
    worker = make_user(app, role="support_worker")
    coordinator = make_user(app, role="coordinator")
    with session_scope(database.factory) as session:
        demo = seed.ensure_staff(session, policy=app.extensions["avhopp.account_policy"])
    # The measured worker owns a quarter of the tracks (2,500 of 10,000).
    staff = seed.DemoStaff(coordinator.id, (worker.id, *demo.worker_ids), {})
    start = time.perf_counter()
    seed.bulk_seed_tracks(database.factory, count=TRACKS, staff=staff, rng_seed=5,
                          now=clock())
    seconds = time.perf_counter() - start
    report.add(f"{label}: seed {TRACKS:,} tracks (bulk path, real encryption; not a target)",
               seconds, "s", note=f"{seconds / TRACKS * 1000:.1f} ms a track")
    if label == "PostgreSQL":
        # What autovacuum would do after a bulk load; committed, or the statistics are lost.
        with database.engine.begin() as conn:
            conn.execute(text("ANALYZE"))
    else:
        refresh_statistics(database.engine)  # what the scheduler's daily duty does on SQLite
    with database.factory() as session:
        own = list(session.scalars(select(Track.id).where(Track.owner_id == worker.id)
                                   .order_by(Track.code).limit(SAMPLES)))
        people = session.scalars(select(Person).join(Track, Track.person_id == Person.id)
                                 .where(Track.owner_id == worker.id).limit(SAMPLES)).all()
        numbers = [p.personnummer for p in people]

    client = app.test_client()
    login(client, worker, clock)
    lists = {
        "my tracks, newest first": "/tracks/mine",
        "my tracks, by risk level": "/tracks/mine?sort=risk_level&direction=desc",
        "my tracks, status filter, page 40": "/tracks/mine?status=active&page=40",
    }
    for name, path in lists.items():
        samples, response = _timed(lambda path=path: client.get(path))
        assert response.status_code == 200, response.status_code
        p95 = _p95(samples)
        report.add(f"{label}: list page, {name} (p95)", p95, "ms", target="≤ 50 ms",
                   met=p95 <= 50, note=f"median {statistics.median(samples):.1f} ms")

    page = client.get(f"/tracks/{own[0]}")
    token = _CSRF.search(page.get_data(as_text=True))
    assert token, "no CSRF token on the track page"
    ids = iter(own * 3)
    samples, response = _timed(lambda: client.get(f"/tracks/{next(ids)}"))
    assert response.status_code == 200, response.status_code
    p95 = _p95(samples)
    report.add(f"{label}: track page, header and forms (p95)", p95, "ms", target="≤ 80 ms",
               met=p95 <= 80, note=f"median {statistics.median(samples):.1f} ms")
    ids = iter(own * 3)
    samples, response = _timed(lambda: client.post(
        f"/tracks/{next(ids)}/content", data={"csrf_token": token.group(1),
                                              "purpose": "casework"}))
    assert response.status_code == 200, response.status_code
    assert "TESTDATA" in response.get_data(as_text=True)
    p95 = _p95(samples)
    report.add(f"{label}: track page with every section shown (p95)", p95, "ms",
               target="≤ 80 ms", met=p95 <= 80,
               note=f"median {statistics.median(samples):.1f} ms; audited read, "
                    "each track a different person (cold data key)")

    found = iter(numbers * 3)
    samples, response = _timed(lambda: client.post(
        "/tracks/search", data={"csrf_token": token.group(1), "personnummer": next(found)}))
    assert response.status_code == 200, response.status_code
    assert "AV-" in response.get_data(as_text=True)
    p95 = _p95(samples)
    report.add(f"{label}: search by personnummer over HTTP (p95)", p95, "ms",
               target="≤ 20 ms", met=p95 <= 20,
               note=f"median {statistics.median(samples):.1f} ms; blind index, confirmed "
                    "by decryption, audited")

    client = app.test_client()
    clock.advance(seconds=30)
    login(client, coordinator, clock)
    for name, path in {"all tracks, newest first": "/tracks/all",
                       "all tracks, by owner, page 200": "/tracks/all?sort=owner&page=200"
                       }.items():
        samples, response = _timed(lambda path=path: client.get(path))
        assert response.status_code == 200, response.status_code
        p95 = _p95(samples)
        report.add(f"{label}: coordinator's list, {name} (p95)", p95, "ms", target="≤ 50 ms",
                   met=p95 <= 50, note=f"median {statistics.median(samples):.1f} ms")
    database.engine.dispose()


def run(report: Any) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        _engine(report, "SQLite", f"sqlite:///{workdir / 'tracks.sqlite'}", workdir)
        with _postgres() as url:
            if url is None:
                report.add("PostgreSQL", 0, "ms", note="not measured: server unreachable")
            else:
                _engine(report, "PostgreSQL", url, workdir)


if __name__ == "__main__":  # pragma: no cover - `python -m tests.bench.bench_tracks`
    from tests.bench.run import Report

    run(Report())
