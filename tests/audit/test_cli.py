"""`avhopp audit ...`: checkpoint, verify (with witnesses), proof, public-key, redact."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, text

from avhopp.audit import services
from avhopp.audit.models import AuditCheckpoint, AuditEvent
from avhopp.audit.note import Signer
from avhopp.cli import main
from avhopp.db import get_database
from tests.audit.conftest import add_events, signer, tampering, write_witnesses

TOOL = Path(__file__).resolve().parents[2] / "tools" / "verify_checkpoint.py"


@pytest.fixture
def cli(app: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("FLASK_RUN_FROM_CLI", "true")
    runner = app.test_cli_runner()

    def run(*args: str, **kwargs: Any) -> Any:
        return runner.invoke(main, ["audit", *args], **kwargs)

    return run


def test_checkpoint_signs_and_prints_the_note(app: Any, cli: Any, db: Any) -> None:
    add_events(app, 3)
    result = cli("checkpoint")
    assert result.exit_code == 0, result.output
    assert result.output.startswith("avhopp audit log\n4\n")
    assert db.scalars(select(AuditCheckpoint.size)).all() == [4]


def test_verify_passes_on_a_good_log_and_records_it(app: Any, cli: Any, db: Any) -> None:
    add_events(app, 3)
    cli("checkpoint")
    result = cli("verify")
    assert result.exit_code == 0, result.output
    assert "OK" in result.output
    last = db.scalars(select(AuditEvent).order_by(AuditEvent.seq.desc()).limit(1)).one()
    assert last.action == "audit.verified"


def test_verify_fails_with_the_first_bad_number(app: Any, cli: Any) -> None:
    add_events(app, 6)
    with tampering(app) as conn:
        conn.execute(text("DELETE FROM audit_event WHERE seq = 4"))
    result = cli("verify")
    assert result.exit_code == 1
    assert "first bad sequence number: 4" in result.output


def test_verify_uses_witnessed_checkpoints(app: Any, cli: Any, tmp_path: Path) -> None:
    add_events(app, 5)
    cli("checkpoint")
    with get_database(app).scope() as session:
        kept = session.scalars(select(AuditCheckpoint)).all()
        session.expunge_all()
    witnesses = write_witnesses(tmp_path / "board", kept)
    assert cli("verify", "--witness", str(witnesses)).exit_code == 0
    with tampering(app) as conn:
        conn.execute(text("DELETE FROM audit_event WHERE seq > 3"))
        conn.execute(text("UPDATE audit_head SET size = 3"))
        conn.execute(text("DELETE FROM audit_checkpoint"))
    result = cli("verify", "--witness", str(witnesses))
    assert result.exit_code == 1
    assert "first bad sequence number: 4" in result.output


def test_verify_refuses_a_witness_directory_that_does_not_exist(
    cli: Any, tmp_path: Path
) -> None:
    result = cli("verify", "--witness", str(tmp_path / "nowhere"))
    assert result.exit_code != 0


def test_proof_and_export_checkpoint_feed_the_offline_tool(
    app: Any, cli: Any, tmp_path: Path
) -> None:
    add_events(app, 4)
    assert cli("checkpoint").exit_code == 0
    assert cli("export-checkpoint", "-o", str(tmp_path / "old.txt")).exit_code == 0
    add_events(app, 9)
    assert cli("checkpoint").exit_code == 0
    assert cli("export-checkpoint", "-o", str(tmp_path / "new.txt")).exit_code == 0
    proof = cli("proof", "--from", "5", "-o", str(tmp_path / "proof.txt"))
    assert proof.exit_code == 0, proof.output
    vkey = cli("public-key").output.strip()
    assert vkey == signer(app).vkey
    checked = subprocess.run(
        [sys.executable, str(TOOL), vkey, str(tmp_path / "old.txt"), str(tmp_path / "new.txt"),
         str(tmp_path / "proof.txt")],
        capture_output=True, text=True, timeout=60, check=False)
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_proof_beyond_the_log_is_an_error(app: Any, cli: Any) -> None:
    add_events(app, 2)
    cli("checkpoint")
    result = cli("proof", "--from", "50")
    assert result.exit_code != 0
    assert "Error" in result.output


def test_public_key_warns_when_the_pinned_key_differs(make_app: Any, monkeypatch: Any) -> None:
    application = make_app(AUDIT_PUBLIC_KEY=Signer.generate("avhopp-audit-log").vkey)
    monkeypatch.setenv("FLASK_RUN_FROM_CLI", "true")
    result = application.test_cli_runner().invoke(main, ["audit", "public-key"])
    assert result.exit_code == 1
    assert "WARNING" in result.output


def test_redact_empties_old_entries_and_is_recorded(app: Any, cli: Any, db: Any) -> None:
    with get_database(app).scope() as session:
        services.record(session, action="user.listed", details={"count": 1},
                        now=dt.datetime(2020, 1, 1, tzinfo=dt.UTC))
    result = cli("redact", "--before", "2021-01-01", "--yes")
    assert result.exit_code == 0, result.output
    assert "redacted 1 entries" in result.output
    first = db.get(AuditEvent, 1)
    assert first is not None
    assert first.redacted_at is not None
    assert first.details is None
    db.rollback()
    assert cli("verify").exit_code == 0


def test_redact_refuses_recent_dates(app: Any, cli: Any) -> None:
    tomorrow = (dt.datetime.now(dt.UTC) + dt.timedelta(days=1)).strftime("%Y-%m-%d")
    result = cli("redact", "--before", tomorrow, "--yes")
    assert result.exit_code != 0
    assert "may not be redacted" in result.output


def test_redact_asks_before_it_acts(app: Any, cli: Any) -> None:
    result = cli("redact", "--before", "2021-01-01", input="n\n")
    assert result.exit_code != 0
