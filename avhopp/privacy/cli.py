"""`avhopp backup ...`: backup keys, encrypted backups, restore and restore drills."""

from __future__ import annotations

import datetime as dt
import tempfile
from pathlib import Path
from typing import Any

import click
from flask import current_app
from flask.cli import AppGroup

from avhopp.db import utcnow
from avhopp.privacy.backupfile import BackupError

backup = AppGroup("backup", help="Encrypted backups, restore and restore drills.")

PUBLIC_KEY_ENV = "AVHOPP_BACKUP_PUBLIC_KEY_FILE"
PRIVATE_KEY_ENV = "AVHOPP_BACKUP_KEY_FILE"


def _database() -> Any:
    from avhopp.db import get_database

    return get_database(current_app)


def _keys() -> Any:
    return current_app.extensions["avhopp.keys"]


def _settings() -> Any:
    from avhopp.audit.policy import AuditSettings

    return current_app.extensions.get("avhopp.audit") or AuditSettings.from_config(
        current_app.config)


def _print_report(report: Any) -> None:
    click.echo(f"audit verify:   {'OK' if report.audit_ok else 'FAILED'}")
    click.echo(f"row counts:     {'match the manifest' if report.counts_ok else 'DIFFER'}")
    click.echo(f"fields opened:  {report.fields_opened}")
    click.echo(f"erased people:  {report.erased_subjects} (keys destroyed, stay unreadable)")
    for problem in report.problems():
        click.echo(f"  problem: {problem}")


@backup.command("keygen", with_appcontext=False)
@click.option("--private", "private", type=click.Path(dir_okay=False, path_type=Path),
              required=True, help="Where to write the private backup key (keep it offline).")
def keygen(private: Path) -> None:
    """Create a backup key pair; print the public key the server encrypts backups to."""
    from avhopp.privacy.backupfile import generate_backup_key, write_backup_key

    key = generate_backup_key()
    try:
        write_backup_key(private, key)
    except BackupError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(key.public_text())
    click.echo(f"wrote the private key to {private}; store it offline, apart from the backups. "
               "Put the line above in the file AVHOPP_BACKUP_PUBLIC_KEY_FILE names.", err=True)


@backup.command("create")
@click.option("--output", "-o", type=click.Path(dir_okay=False, path_type=Path), required=True)
@click.option("--public-key", "public_key", envvar=PUBLIC_KEY_ENV, required=True,
              type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help=f"File with the backup public key (or {PUBLIC_KEY_ENV}).")
def create(output: Path, public_key: Path) -> None:
    """Write an encrypted, signed backup of the database with its manifest."""
    from avhopp.privacy import backup as service
    from avhopp.privacy.backupfile import parse_public_key

    try:
        recipient = parse_public_key(public_key.read_text(encoding="utf-8"))
        result = service.create_backup(current_app.config["DATABASE_URL"], output=output,
                                       recipient=recipient, keyring=_keys(),
                                       now=(current_app.config.get("CLOCK") or utcnow)())
    except (BackupError, OSError) as exc:
        raise click.ClickException(str(exc)) from exc
    with _database().scope() as session:
        service.record_backup(session, result=result)
    manifest = result.manifest
    click.echo(f"wrote {output} ({result.size} bytes)")
    click.echo(f"schema {','.join(manifest['schema_revision'])}, audit size "
               f"{manifest['audit']['size']}, KEKs {', '.join(manifest['kek_ids']) or '-'}")


def _load_key(path: Path) -> Any:
    from avhopp.privacy.backupfile import read_backup_key

    try:
        return read_backup_key(path)
    except BackupError as exc:
        raise click.ClickException(str(exc)) from exc


@backup.command("inspect", with_appcontext=False)
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def inspect(file: Path) -> None:
    """Print a backup's plaintext header (when, engine, which KEKs it needs); no key needed."""
    from avhopp.privacy.backupfile import read_header

    try:
        with file.open("rb") as fh:
            header, _prefix = read_header(fh)
    except BackupError as exc:
        raise click.ClickException(str(exc)) from exc
    for name in ("created_at", "engine", "schema_revision", "kek_ids"):
        click.echo(f"{name + ':':17} {header.get(name)}")


@backup.command("restore")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--key", "key_path", envvar=PRIVATE_KEY_ENV, required=True,
              type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help=f"The private backup key file (or {PRIVATE_KEY_ENV}).")
@click.option("--drill", is_flag=True,
              help="Restore into a scratch database, check it and drop it; the configured "
                   "database is not touched.")
def restore(file: Path, key_path: Path, drill: bool) -> None:
    """Restore a backup into the configured (empty) database, or drill a restore."""
    from avhopp.privacy import backup as service

    key = _load_key(key_path)
    url = current_app.config["DATABASE_URL"]
    started = dt.datetime.now(dt.UTC)
    try:
        if drill:
            with tempfile.TemporaryDirectory(prefix="avhopp-drill-") as scratch:
                manifest, report = service.drill(file, key=key, keyring=_keys(),
                                                 settings=_settings(), like_url=url,
                                                 directory=Path(scratch))
            with _database().scope() as session:
                service.record_drill(session, manifest=manifest, report=report)
        else:
            manifest, report = service.restore(file, key=key, keyring=_keys(),
                                               settings=_settings(), target_url=url)
    except (BackupError, OSError) as exc:
        raise click.ClickException(f"restore refused: {exc}") from exc
    seconds = (dt.datetime.now(dt.UTC) - started).total_seconds()
    click.echo(f"{'drill of' if drill else 'restored'} backup from {manifest['created_at']} "
               f"(audit size {manifest['audit']['size']}) in {seconds:.1f} s")
    _print_report(report)
    if not report.ok:
        raise click.ClickException("the restored database failed its checks")
    click.echo("OK: every record decrypts and the audit log verifies")


imports = AppGroup("import", help="Import existing records from a spreadsheet (CSV).")


@imports.command("tracks")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--as", "username", required=True, help="The coordinator the import is made as.")
@click.option("--dry-run", is_flag=True, help="Validate every row; import nothing.")
def import_tracks(file: Path, username: str, dry_run: bool) -> None:
    """Import defector tracks from a CSV file (columns: docs/import.md); all rows or none."""
    from sqlalchemy import select

    from avhopp.accounts.models import User
    from avhopp.privacy import importing

    database = _database()
    now = (current_app.config.get("CLOCK") or utcnow)()
    data = file.read_bytes()
    with database.factory() as session:
        actor = session.scalars(select(User).where(User.username == username.lower())).first()
        if actor is None or not actor.is_active or actor.role != "coordinator":
            raise click.ClickException(f"{username!r} is not an active coordinator")
        result = importing.import_tracks(session, actor=actor, data=data, dry_run=dry_run,
                                         now=now)
        if result.ok and not dry_run:
            importing.record_import(session, actor=actor, result=result, dry_run=dry_run)
            session.commit()
        else:
            session.rollback()
            importing.record_import(session, actor=actor, result=result, dry_run=dry_run)
            session.commit()
    for error in result.errors:
        where = f"column {error.column}" if error.column else "file"
        click.echo(f"line {error.row}, {where}: {error.code}")
    if not result.ok:
        raise click.ClickException(f"{len(result.errors)} error(s); nothing was imported")
    if dry_run:
        click.echo(f"dry run: all {result.rows} rows are valid; nothing was imported")
    else:
        click.echo(f"imported {len(result.codes)} tracks: {', '.join(result.codes)}")
