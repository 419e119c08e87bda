"""Backup and restore of the whole database: encrypted file, manifest, drill and restore checks."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import secrets
import shutil
import sqlite3

# pg_dump and pg_restore run with fixed argument lists and no shell.
import subprocess  # nosec B404
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PublicKey
from sqlalchemy import Connection, create_engine, delete, func, make_url, select, text
from sqlalchemy.orm import Session
from sqlalchemy.pool import StaticPool

from avhopp import migrate
from avhopp.audit.models import AuditEvent, AuditHead
from avhopp.audit.policy import AuditSettings
from avhopp.audit.services import record, register_actions
from avhopp.audit.verify import verify_log
from avhopp.crypto.errors import CryptoError, KeyDestroyed, KeyNotFound
from avhopp.crypto.keyring import LocalKeyRing
from avhopp.db import Base, Database, utcnow
from avhopp.encryption.models import BlindIndexValue, DataKey
from avhopp.encryption.orm import REGISTRY
from avhopp.encryption.services import FieldCrypto, field_crypto
from avhopp.privacy.backupfile import (
    BackupError,
    BackupKey,
    BackupWriter,
    authenticate,
    decrypt_to,
    open_chunks,
)

MANIFEST_FORMAT = "avhopp-backup-manifest/1"
_LEN_BYTES = 4

register_actions({
    "backup.created": frozenset({"engine", "size", "audit_size", "tables"}),
    "backup.restored": frozenset({"from_size", "backup_created", "engine", "unreadable"}),
    "backup.drilled": frozenset({"result", "from_size", "backup_created", "fields",
                                 "erased", "unreadable", "problems"}),
})


# --- manifest -----------------------------------------------------------------------------------


def _tables() -> list[str]:
    migrate.import_models()
    return [t.name for t in Base.metadata.sorted_tables]


def _count(conn: Connection, name: str) -> int:
    table = Base.metadata.tables[name]
    return int(conn.execute(select(func.count()).select_from(table)).scalar_one())


def build_manifest(conn: Connection, *, engine: str, now: dt.datetime) -> dict[str, Any]:
    """What a restore checks against: schema revision, row counts, audit head, KEK ids."""
    counts = {}
    for name in _tables():
        counts[name] = _count(conn, name)
    revision = conn.execute(text("SELECT version_num FROM alembic_version")).scalars().all()
    size = conn.execute(select(AuditHead.size).where(AuditHead.id == 1)).scalar_one_or_none() or 0
    last = conn.execute(select(AuditEvent.leaf_hash).where(AuditEvent.seq == size)
                        ).scalar_one_or_none()
    keks = set(conn.execute(select(DataKey.kek_id).where(DataKey.wrapped.is_not(None))
                            .distinct()).scalars())
    keks |= set(conn.execute(text("SELECT DISTINCT totp_kek_id FROM staff_user "
                                  "WHERE totp_kek_id IS NOT NULL")).scalars())
    return {
        "format": MANIFEST_FORMAT,
        "created_at": now.astimezone(dt.UTC).isoformat(timespec="seconds"),
        "engine": engine,
        "schema_revision": sorted(revision),
        "counts": counts,
        "audit": {"size": int(size), "last_leaf_hash": bytes(last).hex() if last else None},
        "kek_ids": sorted(k for k in keks if k),
    }


def _frame(manifest: dict[str, Any]) -> bytes:
    body = json.dumps(manifest, sort_keys=True).encode()
    return len(body).to_bytes(_LEN_BYTES, "big") + body


# --- create -------------------------------------------------------------------------------------


@dataclass
class BackupResult:
    path: Path
    manifest: dict[str, Any]
    size: int


def _sqlite_path(url: str) -> Path:
    database = make_url(url).database
    if not database or database == ":memory:":
        raise BackupError("an in-memory SQLite database cannot be backed up")
    return Path(database)


def _pg_env(url: str) -> dict[str, str]:
    """libpq settings from the SQLAlchemy URL: the password goes in the environment, never on a
    command line other users could read."""
    parsed = make_url(url)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    for name, value in (("PGHOST", parsed.host), ("PGPORT", parsed.port),
                        ("PGUSER", parsed.username), ("PGPASSWORD", parsed.password),
                        ("PGDATABASE", parsed.database)):
        if value is not None:
            env[name] = str(value)
    return env


def _tool(name: str) -> str:
    """The PostgreSQL client tool's full path; its major version must not be older than the
    server's (docs/operations.md)."""
    path = shutil.which(name)
    if path is None:
        raise BackupError(f"{name} is not installed (Debian: apt-get install postgresql-client)")
    return path


def _header(manifest: dict[str, Any]) -> dict[str, Any]:
    # Only what an operator needs to pick the key file without decrypting: no counts.
    return {"created_at": manifest["created_at"], "engine": manifest["engine"],
            "kek_ids": manifest["kek_ids"], "schema_revision": manifest["schema_revision"]}


def _open_output(path: Path) -> IO[bytes]:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    return os.fdopen(fd, "wb")


def create_backup(database_url: str, *, output: Path, recipient: X25519PublicKey,
                  keyring: LocalKeyRing, now: dt.datetime | None = None) -> BackupResult:
    """Write an encrypted backup of the database to `output` (created; never overwritten)."""
    moment = now or utcnow()
    try:
        out = _open_output(output)
    except FileExistsError:
        raise BackupError(f"refusing to overwrite {output}") from None
    try:
        with out:
            if make_url(database_url).get_backend_name() == "sqlite":
                manifest, size = _backup_sqlite(database_url, out, recipient, keyring, moment)
            else:
                manifest, size = _backup_postgres(database_url, out, recipient, keyring, moment)
            out.flush()
            os.fsync(out.fileno())
    except BaseException:
        output.unlink(missing_ok=True)
        raise
    return BackupResult(output, manifest, size)


def _backup_sqlite(url: str, out: IO[bytes], recipient: X25519PublicKey, keyring: LocalKeyRing,
                   now: dt.datetime) -> tuple[dict[str, Any], int]:
    source = sqlite3.connect(_sqlite_path(url))
    memory = sqlite3.connect(":memory:")
    try:
        # The online backup API copies a consistent snapshot (WAL included) while the app runs;
        # into memory, so no plaintext copy touches the disk.
        source.backup(memory)
        engine = create_engine("sqlite://", creator=lambda: memory, poolclass=StaticPool)
        with engine.connect() as conn:
            manifest = build_manifest(conn, engine="sqlite", now=now)
        image = memory.serialize()
    finally:
        source.close()
    writer = BackupWriter(out, recipient=recipient, signer=keyring.audit_signing_key(),
                          header=_header(manifest))
    writer.write(_frame(manifest))
    view = memoryview(image)
    for start in range(0, len(view), 1 << 20):
        writer.write(bytes(view[start:start + (1 << 20)]))
    writer.close()
    memory.close()
    return manifest, writer.bytes_written


def _backup_postgres(url: str, out: IO[bytes], recipient: X25519PublicKey,
                     keyring: LocalKeyRing, now: dt.datetime) -> tuple[dict[str, Any], int]:
    engine = create_engine(url, isolation_level="REPEATABLE READ")
    try:
        with engine.connect() as conn:
            # The manifest and pg_dump see the same snapshot: counts match the dump exactly.
            snapshot = conn.execute(text("SELECT pg_export_snapshot()")).scalar_one()
            manifest = build_manifest(conn, engine="postgresql", now=now)
            writer = BackupWriter(out, recipient=recipient, signer=keyring.audit_signing_key(),
                                  header=_header(manifest))
            writer.write(_frame(manifest))
            with subprocess.Popen(  # noqa: S603  # nosec B603
                [_tool("pg_dump"), "--format=custom", "--no-owner", "--no-privileges",
                 f"--snapshot={snapshot}"],
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=_pg_env(url),
            ) as proc:
                assert proc.stdout is not None and proc.stderr is not None  # noqa: S101  # nosec B101
                while chunk := proc.stdout.read(1 << 20):
                    writer.write(chunk)
                err = proc.stderr.read()
                code = proc.wait()
            if code != 0:
                raise BackupError("pg_dump failed: " + err.decode(errors="replace").strip())
            writer.close()
            conn.rollback()
    finally:
        engine.dispose()
    return manifest, writer.bytes_written


def record_backup(session: Session, *, result: BackupResult) -> None:
    manifest = result.manifest
    record(session, action="backup.created", object_type="backup",
           object_id=manifest["created_at"],
           details={"engine": manifest["engine"], "size": result.size,
                    "audit_size": manifest["audit"]["size"],
                    "tables": len(manifest["counts"])})


# --- restore ------------------------------------------------------------------------------------


class _Payload:
    """Splits the decrypted stream into the manifest frame and the database image."""

    def __init__(self, sink: Callable[[bytes], None]) -> None:
        self.sink = sink
        self.buffer = bytearray()
        self.manifest: dict[str, Any] | None = None

    def feed(self, data: bytes) -> None:
        if self.manifest is not None:
            self.sink(data)
            return
        self.buffer += data
        if len(self.buffer) < _LEN_BYTES:
            return
        length = int.from_bytes(self.buffer[:_LEN_BYTES], "big")
        if len(self.buffer) < _LEN_BYTES + length:
            return
        try:
            manifest = json.loads(bytes(self.buffer[_LEN_BYTES:_LEN_BYTES + length]))
        except ValueError:
            raise BackupError("the manifest is not valid JSON") from None
        if not isinstance(manifest, dict) or manifest.get("format") != MANIFEST_FORMAT:
            raise BackupError("unknown manifest format")
        self.manifest = manifest
        rest = bytes(self.buffer[_LEN_BYTES + length:])
        self.buffer.clear()
        if rest:
            self.sink(rest)


def _require_empty_sqlite(path: Path) -> None:
    for candidate in (path, Path(f"{path}-wal")):
        if candidate.exists() and candidate.stat().st_size > 0:
            raise BackupError(f"{candidate} exists: move the old database away before restoring")


def _restore_sqlite(backup: Path, key: BackupKey, keyring: LocalKeyRing, target: Path
                    ) -> dict[str, Any]:
    _require_empty_sqlite(target)
    temp = target.with_name(f".{target.name}.restore-{secrets.token_hex(4)}")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as fh:
            payload = _Payload(fh.write)
            header = decrypt_to(backup, key, keyring.audit_signing_key().public_key(),
                                payload.feed)
            fh.flush()
            os.fsync(fh.fileno())
        if payload.manifest is None or header.get("engine") != "sqlite":
            raise BackupError("this backup is not an SQLite backup")
        check = sqlite3.connect(temp)
        try:
            result = check.execute("PRAGMA integrity_check").fetchone()
        finally:
            check.close()
        if not result or result[0] != "ok":
            raise BackupError("the restored SQLite image fails its integrity check")
        for stale in (Path(f"{target}-wal"), Path(f"{target}-shm")):
            stale.unlink(missing_ok=True)
        os.replace(temp, target)
    finally:
        temp.unlink(missing_ok=True)
    return payload.manifest


def _require_empty_postgres(url: str) -> None:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            tables = conn.execute(text(
                "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'"
            )).scalar_one()
    finally:
        engine.dispose()
    if tables:
        raise BackupError("the target PostgreSQL database is not empty; restore into a new, "
                          "empty database (createdb) and point DATABASE_URL at it")


def _restore_postgres(backup: Path, key: BackupKey, keyring: LocalKeyRing, url: str
                      ) -> dict[str, Any]:
    _require_empty_postgres(url)
    verifier = keyring.audit_signing_key().public_key()
    # Authenticate before pg_restore sees a byte.
    header = authenticate(backup, key, verifier)
    if header.get("engine") != "postgresql":
        raise BackupError("this backup is not a PostgreSQL backup")
    with subprocess.Popen(  # noqa: S603  # nosec B603
        [_tool("pg_restore"), "--no-owner", "--no-privileges", "--exit-on-error",
         "--single-transaction", "--dbname", make_url(url).database or ""],
        stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        env=_pg_env(url),
    ) as proc:
        assert proc.stdin is not None and proc.stderr is not None  # noqa: S101  # nosec B101
        payload = _Payload(proc.stdin.write)
        try:
            open_chunks(backup, key, verifier, payload.feed)
        except BrokenPipeError:
            pass  # pg_restore stopped early; its exit status and message say why
        finally:
            with contextlib.suppress(BrokenPipeError):
                proc.stdin.close()
        err = proc.stderr.read()
        code = proc.wait()
    if code != 0:
        raise BackupError("pg_restore failed: " + err.decode(errors="replace").strip()[:500])
    if payload.manifest is None:
        raise BackupError("the backup holds no manifest")
    return payload.manifest


def restore_file(backup: Path, *, key: BackupKey, keyring: LocalKeyRing,
                 target_url: str) -> dict[str, Any]:
    """Restore into an empty target database; return the backup's manifest."""
    if make_url(target_url).get_backend_name() == "sqlite":
        return _restore_sqlite(backup, key, keyring, _sqlite_path(target_url))
    return _restore_postgres(backup, key, keyring, target_url)


# --- checks -------------------------------------------------------------------------------------


@dataclass
class CheckReport:
    """What a restored database looks like: counts, audit verification, decryptability."""

    counts_ok: bool = True
    count_problems: list[str] = field(default_factory=list)
    audit_ok: bool = False
    audit_problems: list[str] = field(default_factory=list)
    fields_opened: int = 0
    erased_subjects: int = 0
    unreadable_subjects: set[uuid.UUID] = field(default_factory=set)
    field_failures: int = 0

    @property
    def ok(self) -> bool:
        return (self.counts_ok and self.audit_ok and self.field_failures == 0
                and not self.unreadable_subjects)

    def problems(self) -> list[str]:
        out = list(self.count_problems) + list(self.audit_problems)
        if self.unreadable_subjects:
            out.append(f"{len(self.unreadable_subjects)} people cannot be decrypted: their data "
                       "keys are wrapped by a KEK that is retired or missing from the key file")
        if self.field_failures:
            out.append(f"{self.field_failures} encrypted fields fail to decrypt")
        return out


def _check_counts(session: Session, manifest: dict[str, Any], report: CheckReport) -> None:
    for name, expected in manifest.get("counts", {}).items():
        # Table names come from the authenticated manifest and must be ours.
        if name not in _tables():
            report.count_problems.append(f"unknown table {name} in the manifest")
            continue
        found = _count(session.connection(), name)
        if found != expected:
            report.count_problems.append(f"{name}: {found} rows, the manifest says {expected}")
    report.counts_ok = not report.count_problems


def _check_keys(session: Session, keyring: LocalKeyRing, report: CheckReport) -> set[uuid.UUID]:
    """Unwrap every data key once; return the subjects whose keys are destroyed (erased)."""
    erased: set[uuid.UUID] = set()
    crypto = field_crypto(session)
    for row in session.execute(select(DataKey.id, DataKey.subject_id, DataKey.wrapped)):
        if row.wrapped is None:
            erased.add(row.subject_id)
            continue
        try:
            crypto.key_by_id(session, row.id)
        except (KeyDestroyed, KeyNotFound, CryptoError):
            report.unreadable_subjects.add(row.subject_id)
    return erased


def _iter_rows(session: Session, model: type) -> Iterator[Any]:
    yield from session.scalars(select(model).execution_options(yield_per=500))


def decrypt_everything(session: Session, keyring: LocalKeyRing, report: CheckReport) -> None:
    erased = _check_keys(session, keyring, report)
    skip = erased | report.unreadable_subjects
    report.erased_subjects = len(erased - report.unreadable_subjects)
    for model, fields in REGISTRY.items():
        attr = getattr(model, "__encryption_subject__", "id")
        for row in _iter_rows(session, model):
            if getattr(row, attr) in skip:
                continue
            for name, spec in fields.items():
                if getattr(row, spec.column_attr) is None:
                    continue
                try:
                    getattr(row, name)
                except CryptoError:
                    report.field_failures += 1
                else:
                    report.fields_opened += 1
            session.expunge(row)


def check_database(database_url: str, *, keyring: LocalKeyRing, settings: AuditSettings,
                   manifest: dict[str, Any] | None) -> CheckReport:
    """Counts against the manifest, `audit verify`, and every encrypted field opened with a
    fresh key cache (so nothing is read from a key this process unwrapped before)."""
    report = CheckReport()
    database = Database(database_url)
    database.attach_field_crypto(FieldCrypto(keyring))
    try:
        with database.factory() as session:
            if manifest is not None:
                _check_counts(session, manifest, report)
            audit, _tree = verify_log(session, verifier=settings.verifier(keyring),
                                      origin=settings.origin)
            report.audit_ok = audit.ok
            report.audit_problems = [f"audit: {p.code}: {p.message}" for p in audit.problems]
            decrypt_everything(session, keyring, report)
            session.rollback()
    finally:
        database.engine.dispose()
    return report


def forget_unreadable(session: Session, subjects: set[uuid.UUID]) -> int:
    """After restoring an old backup: the blind-index values of people whose keys are gone
    (retired KEK epoch) go too, so nothing searchable of an erased person comes back."""
    if not subjects:
        return 0
    result = session.execute(delete(BlindIndexValue).where(
        BlindIndexValue.subject_id.in_(list(subjects))))
    session.flush()
    return int(getattr(result, "rowcount", 0) or 0)


def record_restore(session: Session, *, manifest: dict[str, Any], unreadable: int) -> None:
    """The restored log continues from the backup's head: what happened between the backup and
    the restore is lost, and this entry marks that discontinuity."""
    record(session, action="backup.restored", object_type="backup",
           object_id=str(manifest.get("created_at", ""))[:64],
           details={"from_size": int(manifest.get("audit", {}).get("size", 0)),
                    "backup_created": str(manifest.get("created_at", ""))[:64],
                    "engine": str(manifest.get("engine", ""))[:16],
                    "unreadable": unreadable})


def restore(backup: Path, *, key: BackupKey, keyring: LocalKeyRing, settings: AuditSettings,
            target_url: str) -> tuple[dict[str, Any], CheckReport]:
    """Restore into the (empty) target, record the discontinuity, then check it."""
    manifest = restore_file(backup, key=key, keyring=keyring, target_url=target_url)
    report = check_database(target_url, keyring=keyring, settings=settings, manifest=manifest)
    database = Database(target_url)
    database.attach_field_crypto(FieldCrypto(keyring))
    try:
        with database.scope() as session:
            forget_unreadable(session, report.unreadable_subjects)
            record_restore(session, manifest=manifest,
                           unreadable=len(report.unreadable_subjects))
    finally:
        database.engine.dispose()
    return manifest, report


# --- drill --------------------------------------------------------------------------------------


@contextlib.contextmanager
def scratch_database(like_url: str, directory: Path) -> Iterator[str]:
    """An empty database of the same engine, dropped afterwards."""
    if make_url(like_url).get_backend_name() == "sqlite":
        path = directory / f"drill-{secrets.token_hex(4)}.sqlite"
        try:
            yield f"sqlite:///{path}"
        finally:
            for leftover in directory.glob(path.name + "*"):
                leftover.unlink(missing_ok=True)
        return
    name = f"avhopp_drill_{secrets.token_hex(6)}"
    admin_url = make_url(like_url).set(database="postgres")
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        try:
            yield make_url(like_url).set(database=name).render_as_string(hide_password=False)
        finally:
            with admin.connect() as conn:
                conn.execute(text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = :name AND pid <> pg_backend_pid()"), {"name": name})
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
    finally:
        admin.dispose()


def drill(backup: Path, *, key: BackupKey, keyring: LocalKeyRing, settings: AuditSettings,
          like_url: str, directory: Path) -> tuple[dict[str, Any], CheckReport]:
    """Restore into a scratch database, check it, drop it. The live database is untouched."""
    with scratch_database(like_url, directory) as url:
        manifest = restore_file(backup, key=key, keyring=keyring, target_url=url)
        report = check_database(url, keyring=keyring, settings=settings, manifest=manifest)
    return manifest, report


def record_drill(session: Session, *, manifest: dict[str, Any], report: CheckReport) -> None:
    record(session, action="backup.drilled", object_type="backup",
           outcome="success" if report.ok else "error",
           object_id=str(manifest.get("created_at", ""))[:64],
           details={"result": "ok" if report.ok else "failed",
                    "from_size": int(manifest.get("audit", {}).get("size", 0)),
                    "backup_created": str(manifest.get("created_at", ""))[:64],
                    "fields": report.fields_opened, "erased": report.erased_subjects,
                    "unreadable": len(report.unreadable_subjects),
                    "problems": len(report.problems())})

