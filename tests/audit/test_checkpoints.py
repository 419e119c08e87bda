"""Signed checkpoints, consistency proofs for the offline verifier, sign-offs (both engines)."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, text

from avhopp.audit import services
from avhopp.audit.merkle import root_from_leaf_hashes, verify_consistency
from avhopp.audit.models import AuditCheckpoint, AuditEvent, AuditSignOff
from avhopp.audit.note import Signer, open_note, parse_checkpoint
from avhopp.db import get_database
from avhopp.errors import Forbidden, ValidationError
from tests.audit.conftest import add_events, settings, sign, signer

TOOL = Path(__file__).resolve().parents[2] / "tools" / "verify_checkpoint.py"


def leaves(db: Any, size: int | None = None) -> list[bytes]:
    rows = db.scalars(select(AuditEvent.leaf_hash).order_by(AuditEvent.seq)).all()
    db.rollback()
    return list(rows[:size] if size is not None else rows)


def test_a_checkpoint_ends_with_its_own_heartbeat_entry(app: Any, db: Any) -> None:
    add_events(app, 4)
    checkpoint = sign(app)
    assert checkpoint.size == 5
    heartbeat = db.get(AuditEvent, 5)
    assert heartbeat is not None
    assert heartbeat.action == "audit.checkpoint_signed"
    db.rollback()


def test_a_checkpoint_is_a_signed_c2sp_note_over_the_tree(app: Any, db: Any) -> None:
    add_events(app, 6)
    checkpoint = sign(app)
    body = open_note(checkpoint.note, [signer(app).verifier()])
    parsed = parse_checkpoint(body)
    assert parsed.origin == "avhopp audit log"
    assert parsed.size == checkpoint.size == 7
    assert parsed.root == checkpoint.root == root_from_leaf_hashes(leaves(db))
    assert checkpoint.note.splitlines()[0] == "avhopp audit log"
    assert "\n\n\u2014 avhopp-audit-log " in checkpoint.note


def test_later_checkpoints_resume_from_the_stored_frontier(app: Any, db: Any) -> None:
    sizes = []
    for count in (3, 1, 5, 2):
        add_events(app, count)
        sizes.append(sign(app).size)
    stored = db.scalars(select(AuditCheckpoint).order_by(AuditCheckpoint.size)).all()
    all_leaves = leaves(db)
    assert [c.size for c in stored] == sizes
    for checkpoint in stored:
        assert checkpoint.root == root_from_leaf_hashes(all_leaves[: checkpoint.size])


def test_a_damaged_frontier_is_not_trusted(app: Any, db: Any) -> None:
    add_events(app, 3)
    first = sign(app)
    with get_database(app).engine.begin() as conn:
        conn.execute(text("UPDATE audit_checkpoint SET frontier = :f WHERE size = :s"),
                     {"f": b"\x00" * len(first.frontier), "s": first.size})
    add_events(app, 2)
    second = sign(app)
    assert second.root == root_from_leaf_hashes(leaves(db))


def test_signing_is_refused_when_the_key_ring_does_not_match_the_pinned_key(
    make_app: Any,
) -> None:
    other = Signer.generate("avhopp-audit-log")
    application = make_app(AUDIT_PUBLIC_KEY=other.vkey)
    add_events(application, 1)
    with pytest.raises(services.AuditError, match="does not match"):
        sign(application)


def test_old_checkpoints_are_thinned_to_one_a_day(app: Any, db: Any) -> None:
    audit = settings(app)
    keys = app.extensions["avhopp.keys"]
    start = dt.datetime(2026, 1, 1, 8, 0, tzinfo=dt.UTC)
    for day in range(3):
        for hour in range(4):
            add_events(app, 1)
            with get_database(app).scope() as session:
                services.sign_checkpoint(
                    session, signer=audit.signer(keys), verifier=audit.verifier(keys),
                    origin=audit.origin,
                    now=start + dt.timedelta(days=day, hours=hour))
    with get_database(app).scope() as session:
        pruned = services.prune_checkpoints(session, keep_days=30,
                                            now=start + dt.timedelta(days=31, hours=12))
    kept = db.scalars(select(AuditCheckpoint.signed_at).order_by(AuditCheckpoint.size)).all()
    # Days 0 and 1 are older than 30 days: one each; day 2 is within 30 days: all four.
    assert pruned == 6
    assert [k.hour for k in kept] == [11, 11, 8, 9, 10, 11]


# --- consistency proofs and the offline verifier --------------------------------------------


def run_tool(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(TOOL), *map(str, args)],
                          capture_output=True, text=True, timeout=60, check=False)


def test_a_proof_lets_the_offline_tool_verify_two_checkpoints(
    app: Any, db: Any, tmp_path: Path
) -> None:
    add_events(app, 5)
    old = sign(app)
    add_events(app, 12)
    new = sign(app)
    with get_database(app).scope() as session:
        to_size, proof = services.consistency_proof(session, actor=None, old_size=old.size)
    assert to_size == new.size
    assert verify_consistency(old.size, new.size, old.root, new.root, proof)
    (tmp_path / "old.txt").write_text(old.note, encoding="utf-8")
    (tmp_path / "new.txt").write_text(new.note, encoding="utf-8")
    (tmp_path / "proof.txt").write_text(services.format_proof(proof), encoding="utf-8")
    result = run_tool(signer(app).vkey, tmp_path / "old.txt", tmp_path / "new.txt",
                      tmp_path / "proof.txt", "--origin", "avhopp audit log")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "OK" in result.stdout
    # A proof recorded as an export.
    last = db.scalars(select(AuditEvent).order_by(AuditEvent.seq.desc()).limit(1)).one()
    assert (last.action, last.object_type) == ("audit.exported", "proof")


def test_the_offline_tool_rejects_checkpoints_of_a_rewritten_log(
    app: Any, tmp_path: Path
) -> None:
    add_events(app, 5)
    old = sign(app)
    add_events(app, 5)
    new = sign(app)
    # A genuine old checkpoint, a new one of a different history signed with the same key.
    forged_root = bytes(32)
    from avhopp.audit.note import format_checkpoint, sign_note

    forged = sign_note(format_checkpoint("avhopp audit log", new.size, forged_root),
                       signer(app))
    with get_database(app).scope() as session:
        _size, proof = services.consistency_proof(session, actor=None, old_size=old.size)
    (tmp_path / "old.txt").write_text(old.note, encoding="utf-8")
    (tmp_path / "new.txt").write_text(forged, encoding="utf-8")
    (tmp_path / "proof.txt").write_text(services.format_proof(proof), encoding="utf-8")
    result = run_tool(signer(app).vkey, tmp_path / "old.txt", tmp_path / "new.txt",
                      tmp_path / "proof.txt")
    assert result.returncode == 1
    assert "FEL" in result.stdout


def test_a_proof_beyond_the_log_is_refused(app: Any) -> None:
    add_events(app, 2)
    sign(app)
    with pytest.raises(ValidationError), get_database(app).scope() as session:
        services.consistency_proof(session, actor=None, old_size=50)


def test_a_proof_needs_a_checkpoint(app: Any) -> None:
    add_events(app, 2)
    with pytest.raises(ValidationError), get_database(app).scope() as session:
        services.consistency_proof(session, actor=None, old_size=1)


# --- sign-off -----------------------------------------------------------------------------


def member(role: str = "board") -> Any:
    return type("Staff", (), {"id": uuid.uuid4(), "role": role})()


def test_a_sign_off_is_stored_pinned_by_the_root_and_recorded(app: Any, db: Any) -> None:
    add_events(app, 8)
    sign(app)
    add_events(app, 3)
    board = member()
    with get_database(app).scope() as session:
        signoff = services.sign_off(session, actor=board, from_seq=2, to_seq=11,
                                    verifier=signer(app).verifier(),
                                    origin=settings(app).origin)
        event_seq = signoff.event_seq
    stored = db.scalars(select(AuditSignOff)).one()
    assert (stored.from_seq, stored.to_seq, stored.signed_off_by) == (2, 11, board.id)
    assert stored.tree_root == root_from_leaf_hashes(leaves(db, 11))
    event = db.get(AuditEvent, event_seq)
    assert event is not None
    assert (event.action, event.details) == ("audit.signed_off", '{"from_seq":2,"to_seq":11}')


def test_a_sign_off_must_lie_within_the_log(app: Any) -> None:
    add_events(app, 3)
    with pytest.raises(ValidationError), get_database(app).scope() as session:
        services.sign_off(session, actor=member(), from_seq=1, to_seq=10,
                          verifier=signer(app).verifier(), origin=settings(app).origin)


def test_only_board_members_sign_off(app: Any) -> None:
    add_events(app, 3)
    with pytest.raises(Forbidden), get_database(app).scope() as session:
        services.sign_off(session, actor=member("coordinator"), from_seq=1, to_seq=2,
                          verifier=signer(app).verifier(), origin=settings(app).origin)
