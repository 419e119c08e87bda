"""`avhopp retention run [--dry-run]`: what the scheduler runs daily, by hand."""

from __future__ import annotations

import click
from flask import current_app
from flask.cli import AppGroup

from avhopp.db import get_database, utcnow

retention = AppGroup("retention", help="Retention (gallring) of closed tracks.")


@retention.command("run")
@click.option("--dry-run", is_flag=True, help="List what would be erased; change nothing.")
def run(dry_run: bool) -> None:
    """Run approved erasures that are due; list tracks past their date awaiting review."""
    from avhopp.encryption.services import compact_after_erasure
    from avhopp.privacy.retention import RetentionRules, run_due_erasures

    rules = RetentionRules.from_config(current_app.config)
    now = (current_app.config.get("CLOCK") or utcnow)()
    database = get_database(current_app)
    with database.scope() as session:
        result = run_due_erasures(session, rules=rules, now=now, dry_run=dry_run)
        erased = [(str(r.id), str(r.track_id), r.ground) for r in result.erased]
        waiting = [(r.code, r.retention_until.isoformat()) for r in result.awaiting_review]
        if dry_run:
            session.rollback()
    if not dry_run and erased:
        compact_after_erasure(database.engine)
    verb = "would erase" if dry_run else "erased"
    click.echo(f"{verb} {len(erased)} person(s)")
    for request_id, _track, ground in erased:
        click.echo(f"  request {request_id} ({ground})")
    click.echo(f"{len(waiting)} closed track(s) past their retention date await review")
    for code, until in waiting:
        click.echo(f"  {code} retention date {until}")
