"""tools/decrypt_record.py reads a person's fields with only the key file (no avhopp code)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from avhopp.app import create_app
from avhopp.casework.models import Person
from avhopp.crypto.keyring import generate_key_file, write_key_file
from avhopp.db import get_database
from avhopp.encryption.services import erase_subject

TOOL = Path(__file__).resolve().parents[2] / "tools" / "decrypt_record.py"


@pytest.fixture
def sqlite_file_app(tmp_path, sqlite_template):
    """The standalone tool reads SQLite files, so this module uses an SQLite app only (the
    envelopes are the same bytes on PostgreSQL; the library tests cover both engines)."""
    db_path = tmp_path / "avhopp.sqlite"
    shutil.copyfile(sqlite_template, db_path)
    key_file = tmp_path / "keys.json"
    write_key_file(key_file, generate_key_file())
    app = create_app({"ENV": "testing", "DATABASE_URL": f"sqlite:///{db_path}", "KEYS": "",
                      "KEY_FILE": str(key_file), "INSTANCE_PATH": str(tmp_path / "instance")})
    yield app, key_file, str(db_path)
    get_database(app).engine.dispose()


def run_tool(db_path, key_file, row_id):
    return subprocess.run(
        [sys.executable, "-I", str(TOOL), "--db", db_path, "--keys", str(key_file), str(row_id)],
        capture_output=True, text=True, check=False,
    )


def test_tool_decrypts_every_field_of_a_person(sqlite_file_app):
    app, key_file, db_path = sqlite_file_app
    with get_database(app).scope() as session:
        person = Person(name="Åsa Öberg", birth_year=1988, email="asa@example.se")
        session.add(person)
        person_id = person.id
    result = run_tool(db_path, key_file, person_id)
    assert result.returncode == 0, result.stderr
    lines = set(result.stdout.splitlines())
    assert {"name: Åsa Öberg", "birth_year: 1988", "email: asa@example.se"} <= lines


def test_tool_reports_erased_people_as_erased(sqlite_file_app):
    app, key_file, db_path = sqlite_file_app
    with get_database(app).scope() as session:
        person = Person(name="Åsa")
        session.add(person)
        person_id = person.id
    with get_database(app).scope() as session:
        erase_subject(session, actor=None, subject_id=person_id)
    result = run_tool(db_path, key_file, person_id)
    assert result.stdout.strip() == "name: <erased>"


def test_tool_fails_with_the_wrong_key_file(sqlite_file_app, tmp_path):
    app, key_file, db_path = sqlite_file_app
    with get_database(app).scope() as session:
        person = Person(name="Åsa")
        session.add(person)
        person_id = person.id
    wrong = json.loads(key_file.read_text())
    other = generate_key_file()
    wrong["keks"] = {k: other["keks"][other["active_kek"]] for k in wrong["keks"]}
    wrong_file = tmp_path / "wrong.json"
    wrong_file.write_text(json.dumps(wrong))
    result = run_tool(db_path, wrong_file, person_id)
    assert result.returncode == 1 and "Åsa" not in result.stdout
