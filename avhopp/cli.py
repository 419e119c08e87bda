"""The `avhopp` command: each command is a thin adapter that calls one service."""

from __future__ import annotations

import os
import secrets
import sys
from pathlib import Path
from typing import Any

import click
from flask import current_app
from flask.cli import FlaskGroup, with_appcontext
from sqlalchemy import select

from avhopp import migrate
from avhopp.audit.cli import audit as audit_group
from avhopp.cases.seed import dev as dev_group
from avhopp.config import DEV_SECRET_PREFIX, resolve_paths_only
from avhopp.privacy.cli import backup as backup_group
from avhopp.privacy.cli import imports as import_group
from avhopp.privacy.cli_retention import retention as retention_group
from avhopp.relatives.seed import seed_relatives_command


def _create_app() -> Any:
    from avhopp.app import create_app
    from avhopp.config import ConfigError

    try:
        return create_app()
    except ConfigError as exc:
        # An operator needs the message, not a traceback.
        raise click.ClickException(str(exc)) from exc


main = FlaskGroup(
    create_app=_create_app,
    add_default_commands=True,
    add_version_option=False,
    help="avhopp: case management for exit work. Settings come from config/*.toml and AVHOPP_*.",
)


def _database() -> Any:
    from avhopp.db import get_database

    return get_database(current_app)


def _policy() -> Any:
    return current_app.extensions["avhopp.account_policy"]


# --- development set-up ---------------------------------------------------------------------


@main.command("init-dev", with_appcontext=False)
def init_dev() -> None:
    """Create instance/ with development keys (mode 0600) if they do not exist yet."""
    from avhopp.crypto.keyring import generate_key_file, write_key_file
    from avhopp.keys import DEVELOPMENT_MARKER

    if os.environ.get("AVHOPP_ENV") == "production":
        raise click.ClickException("init-dev is for development; use `avhopp keys init`")
    paths = resolve_paths_only()
    instance = Path(paths["INSTANCE_PATH"])
    instance.mkdir(mode=0o700, parents=True, exist_ok=True)
    secret_file = Path(paths["SECRET_KEY_FILE"])
    if not secret_file.exists():
        fd = os.open(secret_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(DEV_SECRET_PREFIX + secrets.token_urlsafe(32) + "\n")
        click.echo(f"created {secret_file}")
    key_file = Path(paths["KEY_FILE"])
    if not key_file.exists():
        data = generate_key_file()
        data[DEVELOPMENT_MARKER] = True
        write_key_file(key_file, data)
        click.echo(f"created {key_file}")


# --- database -------------------------------------------------------------------------------


@main.group("db")
def db_group() -> None:
    """Schema migrations (Alembic)."""


@db_group.command("upgrade")
@click.argument("revision", default="head")
@with_appcontext
def db_upgrade(revision: str) -> None:
    """Migrate the database up to REVISION (default: head)."""
    migrate.upgrade(current_app.config["DATABASE_URL"], revision)


@db_group.command("downgrade")
@click.argument("revision")
@with_appcontext
def db_downgrade(revision: str) -> None:
    """Migrate the database down to REVISION."""
    migrate.downgrade(current_app.config["DATABASE_URL"], revision)


@db_group.command("current")
@with_appcontext
def db_current() -> None:
    """Show the revision the database is at."""
    migrate.current(current_app.config["DATABASE_URL"])


# --- users ----------------------------------------------------------------------------------


@main.group("users")
def users_group() -> None:
    """Staff accounts."""


@users_group.command("create")
@click.argument("username")
@click.option("--role", type=click.Choice(["admin", "coordinator", "support_worker", "board"]),
              required=True)
@with_appcontext
def users_create(username: str, role: str) -> None:
    """Create a staff account and print its one-time password."""
    from avhopp.accounts import services
    from avhopp.errors import DomainError

    with _database().scope() as session:
        try:
            user, one_time = services.create_user(
                session, actor=None, username=username, role=role, policy=_policy()
            )
        except DomainError as exc:
            raise click.ClickException(f"could not create user: {exc.code or exc}") from exc
        name = user.username
    _print_one_time(name, one_time)


def _print_one_time(username: str, one_time: str) -> None:
    click.echo(f"user:               {username}")
    click.echo(f"one-time password:  {one_time}")
    click.echo("At first login the password must be changed and two-factor authentication set up.")


@users_group.command("ensure-admin")
@with_appcontext
def users_ensure_admin() -> None:
    """Create the first administrator `admin` if there is no active administrator."""
    from avhopp.accounts import services

    with _database().scope() as session:
        if services.count_admins(session) > 0:
            click.echo("an administrator exists; nothing to do")
            return
        user, one_time = services.create_user(
            session, actor=None, username="admin", role="admin", policy=_policy()
        )
        name = user.username
    _print_one_time(name, one_time)


@users_group.command("list")
@with_appcontext
def users_list() -> None:
    """List staff accounts (username, role, active, 2FA)."""
    from avhopp.accounts import services
    from avhopp.audit.services import record

    with _database().scope() as session:
        users = services.list_users(session, actor=None)
        record(session, action="user.listed", details={"count": len(users)})
        for user in users:
            state = "active" if user.is_active else "deactivated"
            totp = "2fa" if user.has_totp else "no-2fa"
            click.echo(f"{user.username:30} {user.role:15} {state:12} {totp}")


def _user_id(session: Any, username: str) -> Any:
    from avhopp.accounts.models import User
    from avhopp.accounts.services import normalise_username

    user = session.scalars(
        select(User).where(User.username == normalise_username(username))
    ).one_or_none()
    if user is None:
        raise click.ClickException(f"no user named {username!r}")
    return user.id


@users_group.command("deactivate")
@click.argument("username")
@with_appcontext
def users_deactivate(username: str) -> None:
    """Deactivate an account and end its sessions."""
    from avhopp.accounts import services

    with _database().scope() as session:
        services.set_active(session, actor=None, user_id=_user_id(session, username), active=False)
    click.echo(f"deactivated {username}")


@users_group.command("unlock")
@click.argument("username")
@with_appcontext
def users_unlock(username: str) -> None:
    """Clear the failed-login lock of an account."""
    from avhopp.accounts import services

    with _database().scope() as session:
        services.unlock(session, actor=None, user_id=_user_id(session, username), policy=_policy())
    click.echo(f"unlocked {username}")


@users_group.command("reset-2fa")
@click.argument("username")
@with_appcontext
def users_reset_2fa(username: str) -> None:
    """Remove an account's two-factor enrolment; they enrol again at next login."""
    from avhopp.accounts import services

    with _database().scope() as session:
        services.reset_totp(session, actor=None, user_id=_user_id(session, username))
    click.echo(f"two-factor authentication reset for {username}")


# --- keys -----------------------------------------------------------------------------------


@main.group("keys")
def keys_group() -> None:
    """Key files and key rotation."""


@keys_group.command("init", with_appcontext=False)
@click.option("--path", "path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Where to write the key file (default: KEY_FILE from the configuration).")
def keys_init(path: Path | None) -> None:
    """Write a new key file (mode 0600; never overwrites)."""
    from avhopp.crypto.errors import KeyFileError
    from avhopp.crypto.keyring import generate_key_file, write_key_file

    target = path or Path(resolve_paths_only()["KEY_FILE"])
    try:
        write_key_file(target, generate_key_file())
    except KeyFileError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"created {target}; back it up offline and restrict it to the service user")


def _replace_key_file(path: Path, data: dict[str, Any]) -> None:
    """Write the new key file beside the old one, then rename it over (atomic on POSIX)."""
    from avhopp.crypto.keyring import write_key_file

    temp = path.with_name(path.name + f".new-{secrets.token_hex(4)}")
    write_key_file(temp, data)
    os.replace(temp, path)


def _key_file_data() -> tuple[Path, dict[str, Any]]:
    from avhopp.crypto.keyring import load_key_file

    if current_app.config.get("KEYS"):
        raise click.ClickException("keys come from AVHOPP_KEYS; rotate them where they are kept")
    path = Path(current_app.config["KEY_FILE"])
    production = current_app.config["ENV"] == "production"
    return path, load_key_file(path, require_private_mode=production)


@keys_group.command("status")
@with_appcontext
def keys_status() -> None:
    """Show the KEKs and how many data keys each wraps."""
    from avhopp.encryption.services import keys_by_kek

    ring = current_app.extensions["avhopp.keys"]
    with _database().scope() as session:
        counts = keys_by_kek(session)
    for kek_id in sorted(ring.kek_ids | set(counts)):
        marker = "active" if kek_id == ring.active_kek_id else (
            "present" if kek_id in ring.kek_ids else "MISSING")
        click.echo(f"{kek_id:32} {marker:8} {counts.get(kek_id, 0):>9} data keys")


@keys_group.command("add-kek")
@with_appcontext
def keys_add_kek() -> None:
    """Add a new active KEK to the key file (then restart the app and run rotate-kek)."""
    from avhopp.audit.services import record
    from avhopp.crypto.keyring import add_kek

    path, data = _key_file_data()
    new = add_kek(data)
    _replace_key_file(path, new)
    with _database().scope() as session:
        record(session, action="key.kek_added", object_type="kek", object_id=new["active_kek"])
    click.echo(f"new active KEK {new['active_kek']}; restart the app processes, then run "
               "`avhopp keys rotate-kek`")


@keys_group.command("rotate-kek")
@click.option("--batch-size", default=1000, show_default=True, type=click.IntRange(1, 100_000))
@with_appcontext
def keys_rotate_kek(batch_size: int) -> None:
    """Re-wrap every data key under the active KEK, in resumable batches."""
    from avhopp.encryption.services import keys_by_kek, rotate_kek

    ring = current_app.extensions["avhopp.keys"]
    database = _database()
    with database.scope() as session:
        todo = sum(n for kek, n in keys_by_kek(session).items() if kek != ring.active_kek_id)
    with click.progressbar(length=todo, label="re-wrapping data keys") as bar:
        total = rotate_kek(database.factory, keyring=ring, batch_size=batch_size,
                           progress=bar.update)
    click.echo(f"re-wrapped {total} data keys under {ring.active_kek_id}")


@keys_group.command("retire-kek")
@click.argument("kek_id")
@with_appcontext
def keys_retire_kek(kek_id: str) -> None:
    """Remove an old KEK's material; refused while any data key still depends on it."""
    from avhopp.audit.services import record
    from avhopp.crypto.keyring import retire_kek
    from avhopp.encryption.services import keys_by_kek

    with _database().scope() as session:
        still = keys_by_kek(session).get(kek_id, 0)
    if still:
        raise click.ClickException(f"{still} data keys are still wrapped by {kek_id}; "
                                   "run `avhopp keys rotate-kek` first")
    path, data = _key_file_data()
    _replace_key_file(path, retire_kek(data, kek_id))
    with _database().scope() as session:
        record(session, action="key.kek_retired", object_type="kek", object_id=kek_id)
    click.echo(f"retired {kek_id}; backups made before the rotation can no longer be decrypted "
               "with the new key file")


@keys_group.command("rotate-person")
@click.argument("subject_id", type=click.UUID)
@with_appcontext
def keys_rotate_person(subject_id: Any) -> None:
    """Re-encrypt one person's fields under a new data key."""
    from avhopp.encryption.services import rotate_subject_key

    with _database().scope() as session:
        rotate_subject_key(session, actor=None, subject_id=subject_id)
    click.echo("done")


@keys_group.command("rotate-index")
@click.argument("field", type=click.Choice(["personnummer", "phone", "email"]))
@click.option("--population", type=click.IntRange(1), default=None,
              help="Expected number of people (sets the index width).")
@with_appcontext
def keys_rotate_index(field: str, population: int | None) -> None:
    """Add a new blind-index version for a Person field, backfill it, and switch to it."""
    from avhopp.casework.models import Person
    from avhopp.encryption.services import add_index_version, backfill_index, switch_index

    database = _database()
    with database.scope() as session:
        version = add_index_version(session, actor=None, model=Person, field_name=field,
                                    population=population)
    after = None
    count = 0
    while True:
        with database.scope() as session:
            after = backfill_index(session, model=Person, field_name=field, version=version,
                                   after=after)
        count += 1
        click.echo(f"backfilled batch {count}")
        if after is None:
            break
    with database.scope() as session:
        switch_index(session, actor=None, model=Person, field_name=field, version=version)
    click.echo(f"person.{field} now uses index version {version}")


@main.command("scheduler")
@with_appcontext
def scheduler_command() -> None:
    """Run the scheduler (reminders, outbox, audit checkpoints, digests, retention) until stopped.
    Run it beside the web server, never inside it; several at once are safe."""
    from avhopp import scheduler
    from avhopp.followups.mail import MailConfigError, check_sending_config

    try:
        check_sending_config(current_app.config)
    except MailConfigError as exc:
        raise click.ClickException(str(exc)) from exc
    scheduler.run(current_app._get_current_object())  # type: ignore[attr-defined]


@main.command("followups-tick")
@with_appcontext
def followups_tick() -> None:
    """Run every scheduler duty once (derive, enqueue, digest, send) and print the result."""
    from avhopp.cases import followup_sources  # noqa: F401  registers the risk source
    from avhopp.followups import ticks

    report = ticks.run_all(current_app._get_current_object())  # type: ignore[attr-defined]
    click.echo(f"sent {report.sent}, to retry {report.retried}, failed {report.failed}")


main.add_command(audit_group)
dev_group.add_command(seed_relatives_command)
main.add_command(dev_group)
main.add_command(backup_group)
main.add_command(retention_group)
main.add_command(import_group)


def run() -> None:  # pragma: no cover - console entry helper
    main(prog_name="avhopp")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
