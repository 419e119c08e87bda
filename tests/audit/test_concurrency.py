"""Several processes writing at once get one gap-free sequence, and the log verifies."""

from __future__ import annotations

import multiprocessing
from typing import Any

from sqlalchemy import func, select

from avhopp.accounts.models import LoginThrottle
from avhopp.audit.models import AuditEvent
from avhopp.db import get_database
from tests.audit._workers import append_events
from tests.audit.conftest import sign, verify

PROCESSES = 4
WRITES = 200


def test_four_processes_times_200_writes_give_sequence_1_to_800(app: Any, db: Any) -> None:
    url = get_database(app).url
    context = multiprocessing.get_context("spawn")
    with context.Pool(PROCESSES) as pool:
        results = pool.starmap(append_events, [(url, w, WRITES) for w in range(PROCESSES)])
    seqs = sorted(seq for worker in results for seq in worker)
    assert seqs == list(range(1, PROCESSES * WRITES + 1))
    # Each process saw its own numbers rise: no write was reordered within a process.
    assert all(worker == sorted(worker) for worker in results)
    stored = db.scalars(select(AuditEvent.seq).order_by(AuditEvent.seq)).all()
    assert list(stored) == seqs
    assert db.scalar(select(func.count()).select_from(AuditEvent)) == PROCESSES * WRITES
    # Every audited change committed together with its entry.
    assert db.scalar(select(func.count()).select_from(LoginThrottle)) == PROCESSES * WRITES
    db.rollback()
    checkpoint = sign(app)
    assert checkpoint.size == PROCESSES * WRITES + 1
    report = verify(app)
    assert report.ok, report.problems
    assert report.size == PROCESSES * WRITES + 1
