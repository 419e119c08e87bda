"""`verify` finds every kind of tampering and names the first bad sequence number (both engines).

The attacker here has database access: the tests switch the append-only triggers off for their
own connection (tests/audit/conftest.py: tampering) and change rows the way a person with a SQL
prompt could.
"""

from __future__ import annotations

import datetime as dt
import os
import uuid
from typing import Any

import pytest
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from avhopp.audit import services
from avhopp.audit.merkle import TreeBuilder
from avhopp.audit.models import AuditCheckpoint, AuditEvent, computed_leaf_hash
from avhopp.audit.note import Signer, format_checkpoint, sign_note
from avhopp.audit.verify import WitnessFile
from avhopp.db import get_database
from tests.audit.conftest import (
    add_events,
    is_sqlite,
    settings,
    sign,
    signer,
    tampering,
    verify,
    witness,
)


@pytest.fixture
def log(app: Any) -> dict[str, Any]:
    """20 entries: 1-10, heartbeat 11 (checkpoint), 12-16, heartbeat 17 (checkpoint), 18-20."""
    add_events(app, 10)
    first = sign(app)
    add_events(app, 5)
    second = sign(app)
    add_events(app, 3)
    assert (first.size, second.size) == (11, 17)
    return {"checkpoints": [first, second]}


def first_bad(report: Any) -> int | None:
    assert not report.ok
    return report.first_bad_seq  # type: ignore[no-any-return]


def test_an_untouched_log_verifies(app: Any, log: dict[str, Any]) -> None:
    report = verify(app, [witness(cp) for cp in log["checkpoints"]])
    assert report.ok, report.problems
    assert report.size == 20
    assert report.checkpoints == 2
    assert report.witnesses == 2
    assert report.first_bad_seq is None


def test_the_empty_log_verifies(app: Any) -> None:
    report = verify(app)
    assert report.ok
    assert report.size == 0


TAMPERED = {
    "occurred_at": lambda current: current + dt.timedelta(microseconds=1),
    "actor_id": lambda _current: uuid.uuid4(),
    "nonce": lambda _current: os.urandom(16),
    "leaf_hash": lambda _current: os.urandom(32),
    "details": lambda _current: '{"count":999}',
    "outcome": lambda current: "denied" if current != "denied" else "error",
    "action": lambda current: "user.created" if current != "user.created" else "user.listed",
}


def tampered_value(field: str, current: Any) -> Any:
    return TAMPERED.get(field, lambda _current: "tampered")(current)


def change_field(app: Any, seq: int, field: str) -> None:
    with tampering(app) as conn:
        session = Session(bind=conn)
        event = session.get(AuditEvent, seq)
        assert event is not None
        setattr(event, field, tampered_value(field, getattr(event, field)))
        session.flush()
        session.close()


FIELDS = ("occurred_at", "actor_id", "actor_role", "session_hash", "client_addr", "action",
          "object_type", "object_id", "outcome", "purpose", "details", "request_id", "nonce",
          "leaf_hash")


@pytest.mark.parametrize("field", FIELDS)
def test_changing_any_field_of_an_entry_is_found_at_that_entry(
    app: Any, log: dict[str, Any], field: str
) -> None:
    change_field(app, 7, field)
    report = verify(app)
    assert first_bad(report) == 7
    assert report.problems[0].code in {"leaf_mismatch", "unreadable"}


@pytest.mark.parametrize("seq", [1, 11, 17, 20])
@pytest.mark.parametrize("field", ["details", "occurred_at", "leaf_hash"])
def test_changing_any_entry_is_found_at_that_entry(
    app: Any, log: dict[str, Any], seq: int, field: str
) -> None:
    change_field(app, seq, field)
    assert first_bad(verify(app)) == seq


def test_marking_a_changed_entry_as_redacted_does_not_hide_it(
    app: Any, log: dict[str, Any]
) -> None:
    # Redacted entries are checked by their stored leaf hash; claiming "redacted" while keeping
    # (altered) content must not be a way around the leaf check.
    with tampering(app) as conn:
        conn.execute(text("UPDATE audit_event SET details = :details, redacted_at = "
                          "occurred_at WHERE seq = 7"), {"details": '{"count":5}'})
    report = verify(app)
    assert first_bad(report) == 7
    assert {p.code for p in report.problems} >= {"redacted_payload"}


def test_a_redaction_nobody_recorded_is_found(app: Any, log: dict[str, Any]) -> None:
    # Emptying entries the way the retention path does, but without the recorded redaction.
    with tampering(app) as conn:
        session = Session(bind=conn)
        event = session.get(AuditEvent, 5)
        assert event is not None
        for column in ("actor_id", "actor_role", "session_hash", "client_addr", "object_type",
                       "object_id", "purpose", "details", "request_id", "nonce"):
            setattr(event, column, None)
        event.redacted_at = event.occurred_at
        session.flush()
        session.close()
    report = verify(app)
    assert first_bad(report) == 5
    assert report.problems[0].code == "unrecorded_redaction"


def test_deleting_a_middle_entry_is_found(app: Any, log: dict[str, Any]) -> None:
    with tampering(app) as conn:
        conn.execute(text("DELETE FROM audit_event WHERE seq = 9"))
    report = verify(app)
    assert first_bad(report) == 9
    assert report.problems[0].code == "gap"


def test_deleting_a_middle_entry_and_renumbering_the_rest_is_found(
    app: Any, log: dict[str, Any]
) -> None:
    with tampering(app) as conn:
        conn.execute(text("DELETE FROM audit_event WHERE seq = 9"))
        for seq in range(10, 21):
            conn.execute(text("UPDATE audit_event SET seq = :new WHERE seq = :old"),
                         {"new": seq - 1, "old": seq})
        conn.execute(text("UPDATE audit_head SET size = 19"))
    assert first_bad(verify(app)) == 9


def test_swapping_two_entries_is_found(app: Any, log: dict[str, Any]) -> None:
    with tampering(app) as conn:
        conn.execute(text("UPDATE audit_event SET seq = -1 WHERE seq = 5"))
        conn.execute(text("UPDATE audit_event SET seq = 5 WHERE seq = 13"))
        conn.execute(text("UPDATE audit_event SET seq = 13 WHERE seq = -1"))
    report = verify(app)
    assert first_bad(report) == 5
    assert {p.seq for p in report.problems if p.code == "leaf_mismatch"} == {5, 13}


def test_deleting_the_tail_is_found_through_the_head(app: Any, log: dict[str, Any]) -> None:
    with tampering(app) as conn:
        conn.execute(text("DELETE FROM audit_event WHERE seq >= 19"))
    assert first_bad(verify(app)) == 19


def truncate_thoroughly(app: Any, keep: int) -> None:
    """Remove every entry after `keep`, and every trace: head and stored checkpoints."""
    with tampering(app) as conn:
        conn.execute(text("DELETE FROM audit_event WHERE seq > :keep"), {"keep": keep})
        conn.execute(text("UPDATE audit_head SET size = :keep"), {"keep": keep})
        conn.execute(text("DELETE FROM audit_checkpoint WHERE size > :keep"), {"keep": keep})


def test_deleting_the_tail_below_a_witnessed_checkpoint_is_found(
    app: Any, log: dict[str, Any]
) -> None:
    truncate_thoroughly(app, 14)
    # With the board's copy of checkpoint 17 the missing entries are named...
    report = verify(app, [witness(cp) for cp in log["checkpoints"]])
    assert first_bad(report) == 15
    assert any(p.code == "truncated" for p in report.problems)
    # ...without it nothing is left to compare with: this is what witnesses are for.
    assert verify(app).ok


def resign_everything(app: Any, stolen: Signer) -> None:
    """What an attacker holding the signing key does after rewriting entries: recompute the
    leaf hashes and re-sign every stored checkpoint, so the database agrees with itself."""
    origin = settings(app).origin
    with tampering(app) as conn:
        session = Session(bind=conn)
        leaves = []
        for event in session.scalars(select(AuditEvent).order_by(AuditEvent.seq)):
            event.leaf_hash = computed_leaf_hash(event)
            leaves.append(event.leaf_hash)
        for checkpoint in session.scalars(select(AuditCheckpoint)):
            builder = TreeBuilder()
            builder.extend(leaves[: checkpoint.size])
            checkpoint.root = builder.root()
            checkpoint.frontier = builder.frontier()
            checkpoint.note = sign_note(format_checkpoint(origin, checkpoint.size,
                                                          checkpoint.root), stolen)
        session.flush()
        session.close()


def rewrite_entry(app: Any, seq: int) -> None:
    with tampering(app) as conn:
        conn.execute(text("UPDATE audit_event SET details = :details WHERE seq = :seq"),
                     {"details": '{"count":4242}', "seq": seq})


def test_a_consistent_rewrite_with_the_stolen_key_is_found_by_a_witness(
    app: Any, log: dict[str, Any]
) -> None:
    witnessed = [witness(cp) for cp in log["checkpoints"]]
    rewrite_entry(app, 12)
    resign_everything(app, signer(app))
    # The database now agrees with itself: without outside evidence it looks perfect.
    assert verify(app).ok
    report = verify(app, witnessed)
    # The board kept the checkpoints of 11 and 17 entries: 11 still matches, 17 does not.
    assert first_bad(report) == 12
    mismatch = [p for p in report.problems if p.code == "checkpoint_mismatch"]
    assert mismatch
    assert (mismatch[0].seq, mismatch[0].last_seq) == (12, 17)


def test_a_rewrite_between_witnesses_is_bounded_by_them(app: Any, log: dict[str, Any]) -> None:
    witnessed = [witness(cp) for cp in log["checkpoints"]]
    rewrite_entry(app, 14)
    resign_everything(app, signer(app))
    report = verify(app, witnessed)
    # Only the roots are kept outside, so the entry can be pinned down to the range between
    # the last witness that still agrees (11) and the first that does not (17).
    problem = next(p for p in report.problems if p.code == "checkpoint_mismatch")
    assert (problem.seq, problem.last_seq) == (12, 17)
    assert report.first_bad_seq == 12


def test_a_rewrite_without_the_key_is_found_by_the_stored_checkpoints(
    app: Any, log: dict[str, Any]
) -> None:
    # Leaf hashes recomputed, but the checkpoints cannot be re-signed without the key.
    rewrite_entry(app, 12)
    with tampering(app) as conn:
        session = Session(bind=conn)
        event = session.get(AuditEvent, 12)
        assert event is not None
        event.leaf_hash = computed_leaf_hash(event)
        session.flush()
        session.close()
    report = verify(app)
    assert first_bad(report) == 12
    assert any(p.code == "checkpoint_mismatch" for p in report.problems)


def test_a_checkpoint_signed_with_another_key_is_refused(app: Any, log: dict[str, Any]) -> None:
    forger = Signer.generate(settings(app).key_name)
    with tampering(app) as conn:
        note = conn.execute(text("SELECT note FROM audit_checkpoint WHERE size = 17")).scalar()
        body = note[: note.rindex("\n\n") + 1]
        conn.execute(text("UPDATE audit_checkpoint SET note = :note WHERE size = 17"),
                     {"note": sign_note(body, forger)})
    report = verify(app)
    assert not report.ok
    assert report.problems[0].code == "checkpoint_invalid"


def test_a_forged_witness_file_fails_verification(app: Any, log: dict[str, Any]) -> None:
    forger = Signer.generate(settings(app).key_name)
    forged = sign_note(format_checkpoint(settings(app).origin, 20, os.urandom(32)), forger)
    report = verify(app, [WitnessFile("forged.txt", forged.encode())])
    assert not report.ok
    assert report.problems[0].code == "witness_invalid"


def test_a_changed_sign_off_range_is_found(app: Any, log: dict[str, Any]) -> None:
    member = type("Member", (), {"id": uuid.uuid4(), "role": "board"})()
    audit = settings(app)
    with get_database(app).scope() as session:
        services.sign_off(session, actor=member, from_seq=1, to_seq=10,
                          verifier=signer(app).verifier(), origin=audit.origin)
    rewrite_entry(app, 4)
    resign_everything(app, signer(app))
    report = verify(app)
    assert any(p.code == "signoff_mismatch" for p in report.problems)


def test_verification_is_recorded(app: Any, db: Any, log: dict[str, Any]) -> None:
    verify(app)
    event = db.scalars(select(AuditEvent).order_by(AuditEvent.seq.desc()).limit(1)).one()
    assert event.action == "audit.verified"
    assert event.outcome == "success"
    assert '"result":"ok"' in (event.details or "")


def test_a_failed_verification_is_recorded_with_the_first_bad_number(
    app: Any, db: Any, log: dict[str, Any]
) -> None:
    change_field(app, 6, "details")
    verify(app)
    event = db.scalars(select(AuditEvent).order_by(AuditEvent.seq.desc()).limit(1)).one()
    assert event.action == "audit.verified"
    assert event.outcome == "error"
    assert '"first_bad_seq":6' in (event.details or "")


def test_an_equivalent_storage_form_is_not_reported(app: Any, db: Any) -> None:
    """The fast path reads raw stored values; one written in another but equivalent form
    (SQLite: a timestamp without microseconds) must be decided by the reference encoding."""
    if not is_sqlite(app):
        pytest.skip("storage forms differ only on SQLite")
    with get_database(app).scope() as session:
        services.record(session, action="auth.logout",
                        now=dt.datetime(2026, 11, 2, 9, 0, tzinfo=dt.UTC))
    with tampering(app) as conn:
        conn.execute(text("UPDATE audit_event SET occurred_at = '2026-11-02 09:00:00', "
                          "actor_id = NULL WHERE seq = 1"))
    assert verify(app).ok
