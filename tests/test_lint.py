"""The linters of `make lint` pass: ruff, the import contracts and bandit (D4)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent

COMMANDS = {
    "ruff": ["ruff", "check", "avhopp", "tests", "tools", "migrations", "wsgi.py"],
    "import-linter": ["lint-imports", "--config", "setup.cfg"],
    "bandit": ["bandit", "-q", "-r", "avhopp", "tools", "-c", "bandit.yaml"],
}


@pytest.mark.parametrize("name", list(COMMANDS))
def test_linter_passes(name: str) -> None:
    tool, *args = COMMANDS[name]
    executable = BIN / tool
    assert executable.exists(), f"{executable} is missing: run `make install`"
    result = subprocess.run(
        [str(executable), *args], cwd=ROOT, capture_output=True, text=True, timeout=300,
        check=False,
    )
    output = f"{result.stdout[-4000:]}\n{result.stderr[-2000:]}"
    assert result.returncode == 0, f"{name} failed:\n{output}"
