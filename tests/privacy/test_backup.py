"""Backup and restore: encrypted, signed, complete; drill; tampering refused; restore audited."""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path

import pytest
from sqlalchemy import create_engine, select, text

from avhopp.casework.models import Person
from avhopp.db import Database
from avhopp.encryption.services import FieldCrypto
from avhopp.privacy import backup as service
from avhopp.privacy.backupfile import BackupError, read_header
from tests.conftest import PG_ADMIN_URL
from tests.privacy.conftest import run_cli


def _names(url, keyring):
    database = Database(url)
    database.attach_field_crypto(FieldCrypto(keyring))
    try:
        with database.factory() as session:
            return sorted(p.name for p in session.scalars(select(Person)))
    finally:
        database.engine.dispose()


@pytest.fixture
def fresh_target(app, tmp_path):
    """An empty database of the app's engine to restore into (a 'new server')."""
    url = app.config["DATABASE_URL"]
    if url.startswith("sqlite"):
        yield f"sqlite:///{tmp_path / 'restored.sqlite'}"
        return
    name = f"avhopp_restore_{uuid.uuid4().hex[:8]}"
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    yield PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    with admin.connect() as conn:
        conn.execute(text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                          "WHERE datname = :n AND pid <> pg_backend_pid()"), {"n": name})
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
    admin.dispose()


@pytest.mark.usefixtures("seeded")
def test_backup_then_restore_into_an_empty_database_decrypts_everything_and_verifies(
        app, backup_key, tmp_path, fresh_target):
    _key, private, public = backup_key
    keyring = app.extensions["avhopp.keys"]
    before = _names(app.config["DATABASE_URL"], keyring)
    out = tmp_path / "b.avbk"
    created = run_cli(app, "backup", "create", "-o", str(out), "--public-key", str(public))
    assert created.exit_code == 0, created.output
    # No plaintext of any person in the file.
    raw = out.read_bytes()
    for name in before:
        assert name.split()[0].encode() not in raw
    assert os.stat(out).st_mode & 0o077 == 0

    # Lose the database: restore into an empty one (a new server).
    restored_app = app  # the CLI reads DATABASE_URL from the app it runs in
    restored_app.config["DATABASE_URL"] = fresh_target
    result = run_cli(restored_app, "backup", "restore", str(out), "--key", str(private))
    assert result.exit_code == 0, result.output
    assert "OK: every record decrypts and the audit log verifies" in result.output
    assert _names(fresh_target, keyring) == before

    # The restore is in the restored log, as a discontinuity marker after the backup's head.
    engine = create_engine(fresh_target)
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT action, details FROM audit_event ORDER BY seq")).all()
    engine.dispose()
    actions = [r.action for r in rows]
    assert actions[-1] == "backup.restored"
    details = json.loads(rows[-1].details)
    assert details["from_size"] == len(rows) - 1
    report = service.check_database(fresh_target, keyring=keyring,
                                    settings=app.extensions["avhopp.audit"], manifest=None)
    assert report.ok, report.problems()


@pytest.mark.usefixtures("seeded")
def test_drill_restores_into_a_scratch_database_and_leaves_the_live_one_alone(
        app, db, backup_key, tmp_path):
    _key, private, public = backup_key
    out = tmp_path / "b.avbk"
    assert run_cli(app, "backup", "create", "-o", str(out), "--public-key",
                   str(public)).exit_code == 0
    result = run_cli(app, "backup", "restore", str(out), "--key", str(private), "--drill")
    assert result.exit_code == 0, result.output
    assert "audit verify:   OK" in result.output
    db.expire_all()
    actions = [r[0] for r in db.execute(text("SELECT action FROM audit_event ORDER BY seq"))]
    assert actions[-2:] == ["backup.created", "backup.drilled"]
    assert "backup.restored" not in actions


@pytest.mark.usefixtures("seeded")
def test_manifest_records_schema_counts_audit_head_and_keks(app, db, backup_key, tmp_path):
    key, _private, _public = backup_key
    keyring = app.extensions["avhopp.keys"]
    result = service.create_backup(app.config["DATABASE_URL"], output=tmp_path / "b",
                                   recipient=key.public, keyring=keyring)
    manifest = result.manifest
    head = db.execute(text("SELECT size FROM audit_head")).scalar_one()
    assert manifest["audit"]["size"] == head
    assert manifest["counts"]["person"] == 3
    assert manifest["counts"]["track"] == 3
    assert manifest["schema_revision"] == [db.execute(
        text("SELECT version_num FROM alembic_version")).scalar_one()]
    assert manifest["kek_ids"] == [keyring.active_kek_id]
    with (tmp_path / "b").open("rb") as fh:
        header, _ = read_header(fh)
    # The plaintext header says which key file is needed, but not how many people there are.
    assert header["kek_ids"] == [keyring.active_kek_id]
    assert "counts" not in header


@pytest.mark.parametrize("where", ["header", "middle", "end", "truncate", "append"])
@pytest.mark.usefixtures("seeded")
def test_a_tampered_backup_is_refused_and_nothing_is_restored(
        app, backup_key, tmp_path, fresh_target, where):
    key, private, _public = backup_key
    keyring = app.extensions["avhopp.keys"]
    out = tmp_path / "b"
    service.create_backup(app.config["DATABASE_URL"], output=out, recipient=key.public,
                          keyring=keyring)
    data = bytearray(out.read_bytes())
    if where == "header":
        data[30] ^= 1
    elif where == "middle":
        data[len(data) // 2] ^= 1
    elif where == "end":
        data[-70] ^= 1
    elif where == "truncate":
        del data[-1000:]
    else:
        data += b"\x00" * 10
    out.write_bytes(bytes(data))
    with pytest.raises(BackupError):
        service.restore_file(out, key=key, keyring=keyring, target_url=fresh_target)
    if fresh_target.startswith("sqlite"):
        assert not Path(fresh_target.removeprefix("sqlite:///")).exists()
    else:
        engine = create_engine(fresh_target)
        with engine.connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM information_schema.tables "
                                     "WHERE table_schema = 'public'")).scalar_one() == 0
        engine.dispose()
    app.config["DATABASE_URL"] = fresh_target
    refused = run_cli(app, "backup", "restore", str(out), "--key", str(private))
    assert refused.exit_code != 0
    assert "restore refused" in refused.output


@pytest.mark.usefixtures("seeded")
def test_a_backup_for_another_key_or_another_installation_is_refused(
        app, backup_key, tmp_path, fresh_target):
    from avhopp.crypto.keyring import LocalKeyRing, generate_key_file
    from avhopp.privacy.backupfile import generate_backup_key

    key, _private, _public = backup_key
    keyring = app.extensions["avhopp.keys"]
    out = tmp_path / "b"
    service.create_backup(app.config["DATABASE_URL"], output=out, recipient=key.public,
                          keyring=keyring)
    with pytest.raises(BackupError, match="another backup key"):
        service.restore_file(out, key=generate_backup_key(), keyring=keyring,
                             target_url=fresh_target)
    # Anyone with the public key could write a backup; only this installation's signing key
    # makes one restore.
    forged = tmp_path / "forged"
    service.create_backup(app.config["DATABASE_URL"], output=forged, recipient=key.public,
                          keyring=LocalKeyRing(generate_key_file()))
    with pytest.raises(BackupError, match="signature"):
        service.restore_file(forged, key=key, keyring=keyring, target_url=fresh_target)


@pytest.mark.usefixtures("seeded")
def test_restore_refuses_a_target_that_holds_a_database(app, backup_key, tmp_path):
    key, _private, _public = backup_key
    keyring = app.extensions["avhopp.keys"]
    out = tmp_path / "b"
    service.create_backup(app.config["DATABASE_URL"], output=out, recipient=key.public,
                          keyring=keyring)
    with pytest.raises(BackupError, match="restor"):
        service.restore_file(out, key=key, keyring=keyring,
                             target_url=app.config["DATABASE_URL"])
    # The live database is still whole.
    assert _names(app.config["DATABASE_URL"], keyring)


def test_backup_never_overwrites_a_file(app, backup_key, tmp_path):
    _key, _private, public = backup_key
    out = tmp_path / "exists"
    out.write_bytes(b"keep me")
    result = run_cli(app, "backup", "create", "-o", str(out), "--public-key", str(public))
    assert result.exit_code != 0
    assert out.read_bytes() == b"keep me"

