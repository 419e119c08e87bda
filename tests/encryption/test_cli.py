"""The `avhopp keys` commands: init, status, add, rotate and retire KEKs, rotate a person."""

from __future__ import annotations

import stat

from click.testing import CliRunner
from flask.cli import ScriptInfo
from sqlalchemy import select

from avhopp.casework.models import Person
from avhopp.cli import main
from avhopp.crypto.keyring import generate_key_file, load_key_file, write_key_file
from avhopp.db import get_database
from tests.conftest import audit_actions


def run(app, *args):
    result = CliRunner().invoke(main, list(args), obj=ScriptInfo(create_app=lambda: app))
    assert "Traceback" not in result.output
    return result


def file_app(make_app, tmp_path):
    key_file = tmp_path / "keys.json"
    write_key_file(key_file, generate_key_file())
    return make_app(KEYS="", KEY_FILE=str(key_file)), key_file


def test_keys_init_writes_a_private_file_and_never_overwrites(tmp_path):
    target = tmp_path / "keys.json"
    first = CliRunner().invoke(main, ["keys", "init", "--path", str(target)])
    assert first.exit_code == 0, first.output
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert load_key_file(target, require_private_mode=True)["format"] == "avhopp-keys/v1"
    again = CliRunner().invoke(main, ["keys", "init", "--path", str(target)])
    assert again.exit_code != 0 and "refusing to overwrite" in again.output


def test_kek_rotation_from_the_command_line_keeps_data_readable(make_app, tmp_path):
    app, key_file = file_app(make_app, tmp_path)
    with get_database(app).scope() as session:
        session.add_all([Person(name=f"P{i}") for i in range(5)])
    old_kek = load_key_file(key_file, require_private_mode=True)["active_kek"]
    status = run(app, "keys", "status")
    assert f"{old_kek}" in status.output and "5 data keys" in status.output

    added = run(app, "keys", "add-kek")
    assert added.exit_code == 0, added.output
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    # The running app must load the new key file before re-wrapping (as after a restart).
    app = make_app(KEYS="", KEY_FILE=str(key_file))
    refused = run(app, "keys", "retire-kek", old_kek)
    assert refused.exit_code != 0 and "still wrapped" in refused.output
    rotated = run(app, "keys", "rotate-kek", "--batch-size", "2")
    assert rotated.exit_code == 0 and "re-wrapped 5 data keys" in rotated.output
    retired = run(app, "keys", "retire-kek", old_kek)
    assert retired.exit_code == 0, retired.output

    fresh = make_app(KEYS="", KEY_FILE=str(key_file))
    with get_database(fresh).scope() as session:
        names = sorted(p.name for p in session.scalars(select(Person)))
        assert names == [f"P{i}" for i in range(5)]
        actions = [a for a, _o, _d in audit_actions(session)]
    assert {"key.kek_added", "key.kek_rotated", "key.kek_retired"} <= set(actions)
