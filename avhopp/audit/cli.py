"""`avhopp audit ...`: sign checkpoints, verify, make proofs, print the key, redact old entries."""

from __future__ import annotations

import base64
import datetime as dt
import sys
from pathlib import Path
from typing import Any

import click
from flask import current_app
from flask.cli import AppGroup

audit = AppGroup("audit", help="Tamper-evident audit log: checkpoints, verification, proofs.")


def _database() -> Any:
    from avhopp.db import get_database

    return get_database(current_app)


def _settings() -> Any:
    return current_app.extensions["avhopp.audit"]


def _keys() -> Any:
    return current_app.extensions["avhopp.keys"]


def _write(text: str, output: Path | None) -> None:
    if output is None:
        click.echo(text, nl=False)
        return
    output.write_text(text, encoding="utf-8")
    click.echo(f"wrote {output}", err=True)


@audit.command("checkpoint")
def checkpoint() -> None:
    """Append a heartbeat entry, sign the tree head and store the checkpoint; print it."""
    from avhopp.audit import services

    try:
        with _database().scope() as session:
            note = services.heartbeat(session, settings=_settings(), keys=_keys()).note
    except services.AuditError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(note, nl=False)


@audit.command("export-checkpoint")
@click.option("--size", type=click.IntRange(1), default=None,
              help="The checkpoint's tree size (default: the latest).")
@click.option("--output", "-o", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write to this file instead of standard output.")
def export_checkpoint(size: int | None, output: Path | None) -> None:
    """Print a stored checkpoint (to give to board members)."""
    from avhopp.audit import services

    with _database().scope() as session:
        stored = services.checkpoint_for_download(session, actor=None, size=size)
        if stored is None:
            raise click.ClickException("no such checkpoint; sign one with `avhopp audit "
                                       "checkpoint`")
        note = stored.note
    _write(note, output)


@audit.command("proof")
@click.option("--from", "old_size", type=click.IntRange(0), required=True,
              help="Size of the older checkpoint (the second line of its file).")
@click.option("--to", "new_size", type=click.IntRange(0), default=None,
              help="Size of the newer checkpoint (default: the latest stored one).")
@click.option("--output", "-o", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write to this file instead of standard output.")
def proof(old_size: int, new_size: int | None, output: Path | None) -> None:
    """Write the consistency proof between two tree sizes (for tools/verify_checkpoint.py)."""
    from avhopp.audit import services
    from avhopp.errors import ValidationError

    try:
        with _database().scope() as session:
            to_size, hashes = services.consistency_proof(
                session, actor=None, old_size=old_size, new_size=new_size)
    except (ValidationError, services.AuditError) as exc:
        raise click.ClickException(str(exc)) from exc
    _write(services.format_proof(hashes), output)
    click.echo(f"proof from {old_size} to {to_size} entries", err=True)


@audit.command("public-key")
def public_key() -> None:
    """Print the verifier key (pin it as AUDIT_PUBLIC_KEY and in the board minutes)."""
    settings = _settings()
    own = settings.signer(_keys()).vkey
    click.echo(own)
    if settings.public_key and settings.public_key != own:
        click.echo("WARNING: AUDIT_PUBLIC_KEY is set to a different key; checkpoints signed "
                   "with the key ring will not verify", err=True)
        sys.exit(1)


def _read_witnesses(directory: Path) -> list[Any]:
    from avhopp.audit.verify import WitnessFile

    if not directory.is_dir():
        raise click.ClickException(f"{directory} is not a directory")
    return [
        WitnessFile(path.name, path.read_bytes())
        for path in sorted(directory.iterdir())
        if path.is_file() and not path.name.startswith(".")
    ]


def _print_report(report: Any) -> None:
    root = base64.b64encode(report.root).decode("ascii")
    click.echo(f"entries:      {report.size}")
    click.echo(f"root hash:    {root}")
    click.echo(f"checkpoints:  {report.checkpoints} stored, {report.witnesses} witnessed")
    click.echo(f"sign-offs:    {report.signoffs}")
    click.echo(f"redacted:     {report.redacted}")
    if report.ok:
        click.echo("OK: every entry, the tree and every checkpoint verify")
        return
    first = report.first_bad_seq
    click.echo(f"FAILED: {report.problem_count} problem(s); first bad sequence number: "
               f"{first if first is not None else 'unknown'}")
    for problem in report.problems:
        where = f"[{problem.seq}] " if problem.seq is not None else ""
        click.echo(f"  {problem.code}: {where}{problem.message}")


@audit.command("verify")
@click.option("--witness", "witness_dir", type=click.Path(file_okay=False, path_type=Path),
              default=None, help="A directory of checkpoints kept outside the system.")
def verify(witness_dir: Path | None) -> None:
    """Check the whole log; exit status 1 on any problem."""
    from avhopp.audit import services

    settings = _settings()
    witnesses = _read_witnesses(witness_dir) if witness_dir is not None else []

    def progress(done: int, total: int) -> None:
        if sys.stderr.isatty():
            click.echo(f"\rverified {done:,} of {total:,} entries", nl=False, err=True)

    database = _database()
    session = database.factory()
    recorded = True
    try:
        try:
            report = services.verify(
                session, actor=None, verifier=settings.verifier(_keys()),
                origin=settings.origin, witnesses=witnesses, progress=progress)
            session.commit()
        except services.VerificationNotRecorded as exc:
            session.rollback()
            report, recorded = exc.report, False
    finally:
        session.close()
    if sys.stderr.isatty():
        click.echo("", err=True)
    _print_report(report)
    if not recorded:
        click.echo("warning: the verification could not be recorded in the audit log", err=True)
    if not report.ok:
        sys.exit(1)


@audit.command("redact")
@click.option("--before", "before", type=click.DateTime(formats=["%Y-%m-%d"]), required=True,
              help="Redact entries older than this date (UTC midnight), YYYY-MM-DD.")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
def redact(before: dt.datetime, yes: bool) -> None:
    """Empty the payload of old entries (retention); the tree still verifies."""
    from avhopp.audit import services
    from avhopp.errors import ValidationError

    cutoff = before.replace(tzinfo=dt.UTC)
    if not yes:
        click.confirm(f"Redact every audit entry from before {cutoff:%Y-%m-%d}?", abort=True)
    try:
        with _database().scope() as session:
            count = services.redact(session, actor=None, before=cutoff,
                                    min_age_days=_settings().redact_min_age_days)
    except ValidationError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"redacted {count} entries from before {cutoff:%Y-%m-%d}")
