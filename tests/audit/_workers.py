"""Worker processes for the concurrency test (a module of its own so 'spawn' can import it)."""

from __future__ import annotations

from avhopp.accounts.models import LoginThrottle
from avhopp.audit.services import record
from avhopp.db import make_engine, make_session_factory, session_scope, utcnow


def append_events(url: str, worker: int, count: int) -> list[int]:
    """`count` audited writes from a fresh engine: each transaction adds a row and its entry."""
    engine = make_engine(url)
    factory = make_session_factory(engine)
    seqs = []
    try:
        for i in range(count):
            with session_scope(factory) as session:
                session.add(LoginThrottle(key=f"w{worker}-{i}", failures=1,
                                          window_started_at=utcnow()))
                event = record(session, action="user.listed", details={"count": i})
                seqs.append(event.seq)
    finally:
        engine.dispose()
    return seqs
