"""Fixtures for the lifecycle tests: seeded tracks, a backup key, the CLI runner."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from flask.cli import ScriptInfo

from avhopp.cases import seed
from avhopp.cli import main
from avhopp.db import get_database
from avhopp.privacy.backupfile import BackupKey, generate_backup_key, write_backup_key


def run_cli(app: Any, *args: str) -> Any:
    result = CliRunner().invoke(main, list(args), obj=ScriptInfo(create_app=lambda: app))
    assert "Traceback" not in result.output, result.output
    return result


@pytest.fixture
def seeded(app: Any, clock: Any) -> list[str]:
    """Three synthetic defector tracks made through the services (encrypted and audited)."""
    codes, _staff = seed.seed_tracks(
        get_database(app).factory, count=3, policy=app.extensions["avhopp.account_policy"],
        rng_seed=11, now=clock())
    return codes


@pytest.fixture
def backup_key(tmp_path: Path) -> tuple[BackupKey, Path, Path]:
    """(key, private key file, public key file)."""
    key = generate_backup_key()
    private = tmp_path / "backup-key.json"
    write_backup_key(private, key)
    public = tmp_path / "backup-key.pub"
    public.write_text(key.public_text() + "\n")
    return key, private, public
