"""Helpers for the audit tests: sign checkpoints, verify, and tamper behind the triggers' back."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import text

from avhopp.audit import services
from avhopp.audit.policy import AuditSettings
from avhopp.audit.verify import Report, WitnessFile
from avhopp.db import get_database


def settings(app: Any) -> AuditSettings:
    return app.extensions["avhopp.audit"]  # type: ignore[no-any-return]


def signer(app: Any) -> Any:
    return settings(app).signer(app.extensions["avhopp.keys"])


def add_events(app: Any, count: int, action: str = "user.listed") -> list[int]:
    """Append `count` entries through the choke point, one transaction each."""
    seqs = []
    for i in range(count):
        with get_database(app).scope() as session:
            details = {"count": i} if action == "user.listed" else {}
            seqs.append(services.record(session, action=action, details=details).seq)
    return seqs


def sign(app: Any) -> Any:
    """Sign and store a checkpoint; returns it (detached, attributes loaded)."""
    audit = settings(app)
    keys = app.extensions["avhopp.keys"]
    with get_database(app).scope() as session:
        checkpoint = services.sign_checkpoint(
            session, signer=audit.signer(keys), verifier=audit.verifier(keys),
            origin=audit.origin)
        session.flush()
        session.expunge(checkpoint)
    return checkpoint


def verify(app: Any, witnesses: list[WitnessFile] | None = None) -> Report:
    audit = settings(app)
    with get_database(app).scope() as session:
        return services.verify(session, actor=None,
                               verifier=audit.verifier(app.extensions["avhopp.keys"]),
                               origin=audit.origin, witnesses=witnesses or [])


def witness(checkpoint: Any) -> WitnessFile:
    return WitnessFile(f"checkpoint-{checkpoint.size}.txt", checkpoint.note.encode())


def is_sqlite(app: Any) -> bool:
    return bool(get_database(app).is_sqlite)


@contextmanager
def tampering(app: Any) -> Iterator[Any]:
    """A connection on which the append-only triggers do not fire: what an attacker with
    database access can do. SQLite: the triggers are dropped in this test's own file copy;
    PostgreSQL: replica mode switches triggers off for this connection only."""
    engine = get_database(app).engine
    with engine.begin() as conn:
        if engine.dialect.name == "sqlite":
            conn.execute(text("DROP TRIGGER IF EXISTS audit_event_no_update"))
            conn.execute(text("DROP TRIGGER IF EXISTS audit_event_no_delete"))
        else:
            conn.execute(text("SET session_replication_role = replica"))
        yield conn
        if engine.dialect.name != "sqlite":
            conn.execute(text("SET session_replication_role = DEFAULT"))


def write_witnesses(directory: Path, checkpoints: list[Any]) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for checkpoint in checkpoints:
        (directory / f"checkpoint-{checkpoint.size}.txt").write_text(checkpoint.note,
                                                                     encoding="utf-8")
    return directory
