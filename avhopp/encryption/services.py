"""Field crypto for the ORM: data keys per person, sealing, opening, blind-index search,
rotation and crypto-shredding."""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from collections.abc import Callable, Iterable, Sequence
from typing import Any, TypeVar

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import Engine, delete, func, select, update
from sqlalchemy.orm import Session, object_session

from avhopp.audit.services import Actor, record
from avhopp.crypto.blindindex import blind_index, derive_index_key, truncation_bits
from avhopp.crypto.datakeys import DataKeyCache, new_data_key, unwrap_data_key, wrap_data_key
from avhopp.crypto.envelope import cipher, read_kid, seal
from avhopp.crypto.errors import DecryptionError, KeyDestroyed, KeyNotFound
from avhopp.crypto.keyring import LocalKeyRing
from avhopp.db import utcnow
from avhopp.encryption.models import BlindIndexValue, BlindIndexVersion, DataKey
from avhopp.encryption.orm import (
    REGISTRY,
    SESSION_KEY,
    SESSION_KEYS,
    Encrypted,
    SessionKeys,
    context_of,
    pending_fields,
    row_context_of,
    subject_of,
)
from avhopp.identifiers import NORMALISERS

logger = logging.getLogger(__name__)

M = TypeVar("M")

ACTIVE = "active"
BACKFILLING = "backfilling"
RETIRED = "retired"


class FieldCrypto:
    """Everything the ORM needs to seal and open fields; one per app (or CLI process)."""

    def __init__(
        self,
        keyring: LocalKeyRing,
        *,
        population: int = 100_000,
        cache_seconds: float = 60.0,
    ) -> None:
        self.keyring = keyring
        self.population = population
        self.cache = DataKeyCache(cache_seconds)
        self._index_keys: dict[tuple[str, str, int], bytes] = {}

    def attach(self, session: Session) -> Session:
        session.info[SESSION_KEY] = self
        return session

    # --- data keys --------------------------------------------------------------------------

    def _new_key(self, session: Session, subject_id: uuid.UUID) -> tuple[str, bytes]:
        kid = f"dk-{uuid.uuid4().hex}"
        key = new_data_key()
        kek_id, blob = wrap_data_key(self.keyring, key_id=kid, subject_id=str(subject_id), key=key)
        session.add(DataKey(id=kid, subject_id=subject_id, kek_id=kek_id, wrapped=blob,
                            is_active=True))
        self.cache.put(kid, key)
        return kid, key

    def active_key(self, session: Session, subject_id: uuid.UUID) -> tuple[str, bytes]:
        """The subject's active data key, created on first use (in the caller's transaction)."""
        new_keys: dict[uuid.UUID, str] = session.info.setdefault("avhopp.new_keys", {})
        kid = new_keys.get(subject_id)
        if kid is None:
            with session.no_autoflush:
                row = session.scalars(
                    select(DataKey).where(
                        DataKey.subject_id == subject_id, DataKey.is_active.is_(True)
                    )
                ).first()
            if row is None:
                kid, key = self._new_key(session, subject_id)
                new_keys[subject_id] = kid
                return kid, key
            if row.wrapped is None:
                raise KeyDestroyed("the subject's data key has been destroyed")
            kid = row.id
        return kid, self.key_by_id(session, kid, subject_id)

    def cipher_by_id(self, session: Session, kid: str, subject_id: str) -> AESGCM:
        """key_by_id(), as the key's AES-GCM cipher (cached with the key)."""
        aead = self.cache.get_cipher(kid)
        if aead is None:
            key = self.key_by_id(session, kid, uuid.UUID(subject_id))
            aead = self.cache.get_cipher(kid) or cipher(key)
        return aead

    def key_by_id(self, session: Session, kid: str, subject_id: uuid.UUID | None = None) -> bytes:
        cached = self.cache.get(kid)
        if cached is not None:
            return cached
        with session.no_autoflush:
            row = session.get(DataKey, kid)
        if row is None:
            raise KeyNotFound(f"data key {kid} not found")
        if row.wrapped is None or row.kek_id is None:
            raise KeyDestroyed(f"data key {kid} has been destroyed")
        if subject_id is not None and row.subject_id != subject_id:
            raise KeyNotFound(f"data key {kid} belongs to another subject")
        key = unwrap_data_key(self.keyring, kek_id=row.kek_id, blob=row.wrapped, key_id=kid,
                              subject_id=str(row.subject_id))
        self.cache.put(kid, key)
        return key

    # --- sealing and opening ----------------------------------------------------------------

    def seal_pending(self, session: Session, obj: object) -> None:
        subject = subject_of(obj)
        kid, key = self.active_key(session, subject)
        state = obj.__dict__
        for field in pending_fields(obj):
            value = state[field.value_key]
            blob = seal(key, kid, context_of(obj, field), value)
            setattr(obj, field.column_attr, blob)
            field.remember(obj, blob, value)
            if field.index:
                self._write_index(session, obj, field, value, subject)
        obj.__dict__["_avhopp_pending"] = set()

    def open_field(self, obj: object, field: Encrypted[Any], blob: bytes, *,
                   session: Session | None = None) -> Any:
        """Decrypt one field of obj (what reading the attribute does, minus its caching)."""
        session = session or object_session(obj)
        row = row_context_of(obj)
        if session is None:
            raise row.error(field.name)
        keys = self.session_keys(session)
        try:
            return row.open(field.name, blob, keys, keys.fetch)
        except KeyNotFound:
            # Unknown key or another person's: to the reader, an undecryptable field.
            raise row.error(field.name) from None

    def session_keys(self, session: Session) -> SessionKeys:
        """The session's map of data keys already used (created on first use)."""
        keys: SessionKeys | None = session.info.get(SESSION_KEYS)
        if keys is None:
            keys = session.info[SESSION_KEYS] = SessionKeys(self, session)
        return keys

    def forget_key(self, session: Session | None, kid: str) -> None:
        """Drop a destroyed key from the shared cache and from this session's map."""
        self.cache.evict(kid)
        if session is not None:
            keys = session.info.get(SESSION_KEYS)
            if keys is not None:
                keys.pop(kid, None)

    def preload_keys(self, session: Session, rows: Iterable[object],
                     names: Iterable[str] | None = None) -> int:
        """Fetch and unwrap, in one query, the data keys a list of rows needs (a list page over
        many people would otherwise fetch them one by one): those of every encrypted field, or
        only of the fields `names`. Returns how many were unwrapped."""
        wanted: dict[str, uuid.UUID] = {}
        only = None if names is None else set(names)
        for row in rows:
            for name, field in REGISTRY.get(type(row), {}).items():
                if only is not None and name not in only:
                    continue
                blob = getattr(row, field.column_attr)
                if isinstance(blob, bytes | memoryview):
                    try:
                        kid = read_kid(blob)
                    except DecryptionError:
                        continue
                    if self.cache.get(kid) is None:
                        wanted[kid] = subject_of(row)
        if not wanted:
            return 0
        done = 0
        kids = list(wanted)
        for start in range(0, len(kids), 500):
            chunk = kids[start : start + 500]
            for key_row in session.scalars(select(DataKey).where(DataKey.id.in_(chunk))):
                # Skipped keys (destroyed, or not the row's subject's) are left to key_by_id,
                # which raises for them when the field is read.
                if (key_row.wrapped is None or key_row.kek_id is None
                        or key_row.subject_id != wanted[key_row.id]):
                    continue
                key = unwrap_data_key(self.keyring, kek_id=key_row.kek_id,
                                      blob=key_row.wrapped, key_id=key_row.id,
                                      subject_id=str(key_row.subject_id))
                self.cache.put(key_row.id, key)
                done += 1
        return done

    # --- blind indexes ----------------------------------------------------------------------

    def _index_key(self, table: str, column: str, version: int) -> bytes:
        ident = (table, column, version)
        key = self._index_keys.get(ident)
        if key is None:
            key = derive_index_key(self.keyring.index_root, table, column, version)
            self._index_keys[ident] = key
        return key

    def index_versions(self, session: Session, table: str, column: str) -> list[BlindIndexVersion]:
        # Cached per transaction: a flush of many new people must not create version 1 twice.
        cache: dict[tuple[str, str], list[BlindIndexVersion]] = session.info.setdefault(
            "avhopp.index_versions", {})
        rows = cache.get((table, column))
        if rows is not None:
            return rows
        with session.no_autoflush:
            rows = list(session.scalars(
                select(BlindIndexVersion).where(
                    BlindIndexVersion.table_name == table, BlindIndexVersion.column_name == column
                ).order_by(BlindIndexVersion.version)
            ))
        if not rows:
            # The migrations seed version 1 of every index; this covers a column added later.
            first = BlindIndexVersion(table_name=table, column_name=column, version=1,
                                      bits=truncation_bits(self.population), state=ACTIVE)
            session.add(first)
            rows = [first]
        cache[(table, column)] = rows
        return rows

    def digest(self, table: str, column: str, version: int, bits: int, normalised: str) -> bytes:
        return blind_index(self._index_key(table, column, version), normalised, bits=bits)

    @staticmethod
    def normalise(field: Encrypted[Any], value: Any) -> str:
        if field.index is None:
            raise ValueError(f"{field.name} has no blind index")
        _version, normaliser = NORMALISERS[field.index]
        return str(normaliser(str(value)))

    def _write_index(self, session: Session, obj: Any, field: Encrypted[Any], value: Any,
                     subject: uuid.UUID) -> None:
        table = obj.__table__.name
        session.execute(delete(BlindIndexValue).where(
            BlindIndexValue.table_name == table,
            BlindIndexValue.column_name == field.name,
            BlindIndexValue.row_id == obj.id,
        ))
        normalised = self.normalise(field, value)
        for version in self.index_versions(session, table, field.name):
            if version.state == RETIRED:
                continue
            session.add(BlindIndexValue(
                table_name=table, column_name=field.name, version=version.version,
                digest=self.digest(table, field.name, version.version, version.bits, normalised),
                row_id=obj.id, subject_id=subject,
            ))

    def search(self, session: Session, model: type[M], field_name: str, raw: str) -> list[M]:
        """Rows whose `field_name` equals `raw` after normalisation: candidates by blind index,
        confirmed by decryption. Raises identifiers.InvalidIdentifier for malformed input."""
        field = REGISTRY[model][field_name]
        wanted = self.normalise(field, raw)
        table = model.__table__.name  # type: ignore[attr-defined]
        active = [v for v in self.index_versions(session, table, field_name) if v.state == ACTIVE]
        if not active:
            return []
        version = active[0]
        digest = self.digest(table, field_name, version.version, version.bits, wanted)
        candidates = select(BlindIndexValue.row_id).where(
            BlindIndexValue.table_name == table,
            BlindIndexValue.column_name == field_name,
            BlindIndexValue.version == version.version,
            BlindIndexValue.digest == digest,
        )
        rows = session.scalars(
            select(model).where(model.id.in_(candidates))  # type: ignore[attr-defined]
        ).all()
        # Each candidate is confirmed by decrypting: fetch their data keys in one query rather
        # than one query per candidate on a cold key cache.
        if len(rows) > 1:
            self.preload_keys(session, rows, (field_name,))
        found = []
        for row in rows:
            value = getattr(row, field_name)
            if value is not None and self.normalise(field, value) == wanted:
                found.append(row)
        return found


# --- operations (services) ----------------------------------------------------------------------


def field_crypto(session: Session) -> FieldCrypto:
    crypto = session.info.get(SESSION_KEY)
    if crypto is None:
        raise RuntimeError("session has no field crypto attached")
    return crypto  # type: ignore[no-any-return]


def erase_subject(
    session: Session, *, actor: Actor | None, subject_id: uuid.UUID,
    now: dt.datetime | None = None,
) -> int:
    """Crypto-shred a person: destroy their data keys and delete their blind-index values.

    Their encrypted fields stay in place but can never be opened again (they raise KeyDestroyed).
    Returns the number of keys destroyed.
    """
    crypto = field_crypto(session)
    keys = list(session.scalars(select(DataKey).where(DataKey.subject_id == subject_id)))
    for key in keys:
        key.wrapped = None
        key.kek_id = None
        key.is_active = False
        key.destroyed_at = now or utcnow()
        crypto.forget_key(session, key.id)
    session.execute(delete(BlindIndexValue).where(BlindIndexValue.subject_id == subject_id))
    record(session, action="key.subject_erased", actor=actor, object_type="subject",
           object_id=str(subject_id), details={"keys": len(keys)})
    session.flush()
    return len(keys)


def compact_after_erasure(engine: Engine) -> None:
    """On SQLite, fold the WAL into the file so destroyed key bytes leave the WAL too (the file
    itself zeroes freed content: secure_delete is on). Call after the erasure has committed;
    a checkpoint cannot run inside a transaction, so this uses a raw connection."""
    if engine.dialect.name != "sqlite":
        return
    raw = engine.raw_connection()
    try:
        raw.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # type: ignore[attr-defined]
    finally:
        raw.close()


def rows_of_subject(session: Session, subject_id: uuid.UUID) -> Iterable[object]:
    for model, _fields in REGISTRY.items():
        attr = getattr(model, "__encryption_subject__", "id")
        yield from session.scalars(select(model).where(getattr(model, attr) == subject_id))


def rotate_subject_key(
    session: Session, *, actor: Actor | None, subject_id: uuid.UUID
) -> str:
    """Re-encrypt every field of one person under a new data key; destroy the old key(s)."""
    crypto = field_crypto(session)
    rows = list(rows_of_subject(session, subject_id))
    values = [(row, {name: getattr(row, name) for name in REGISTRY[type(row)]}) for row in rows]
    old = list(session.scalars(select(DataKey).where(DataKey.subject_id == subject_id)))
    for key in old:
        key.is_active = False
    session.flush()
    new_kid, _key = crypto._new_key(session, subject_id)
    session.info.setdefault("avhopp.new_keys", {})[subject_id] = new_kid
    for row, fields in values:
        for name, value in fields.items():
            if value is not None:
                setattr(row, name, value)
    session.flush()
    for key in old:
        key.wrapped = None
        key.kek_id = None
        key.destroyed_at = utcnow()
        crypto.forget_key(session, key.id)
    record(session, action="key.subject_rotated", actor=actor, object_type="subject",
           object_id=str(subject_id), details={"rows": len(rows)})
    session.flush()
    return new_kid


def rewrap_batch(session: Session, *, keyring: LocalKeyRing, batch_size: int = 1000) -> int:
    """Re-wrap up to batch_size data keys not yet under the active KEK. Returns how many.

    Each batch is its own transaction (the caller commits), so an interrupted rotation resumes
    where it stopped, and running app processes keep working: they hold every KEK in their ring.
    """
    active = keyring.active_kek_id
    rows = list(session.scalars(
        select(DataKey).where(DataKey.wrapped.is_not(None), DataKey.kek_id != active)
        .order_by(DataKey.id).limit(batch_size)
    ))
    for row in rows:
        if row.kek_id is None or row.wrapped is None:  # excluded by the query; keeps types exact
            continue
        key = unwrap_data_key(keyring, kek_id=row.kek_id, blob=row.wrapped, key_id=row.id,
                              subject_id=str(row.subject_id))
        row.kek_id, row.wrapped = wrap_data_key(keyring, key_id=row.id,
                                                subject_id=str(row.subject_id), key=key)
    session.flush()
    return len(rows)


def rewrap_staff_secrets(session: Session, *, keyring: LocalKeyRing) -> int:
    """TOTP seeds are wrapped by the KEK too; re-wrap those not under the active KEK."""
    from avhopp.accounts.models import User
    from avhopp.accounts.services import _totp_aad

    users = list(session.scalars(select(User).where(
        User.totp_secret_wrapped.is_not(None), User.totp_kek_id != keyring.active_kek_id)))
    for user in users:
        if user.totp_kek_id is None or user.totp_secret_wrapped is None:  # excluded by the query
            continue
        secret = keyring.unwrap(user.totp_kek_id, user.totp_secret_wrapped, _totp_aad(user.id))
        user.totp_kek_id, user.totp_secret_wrapped = keyring.wrap(secret, _totp_aad(user.id))
    session.flush()
    return len(users)


def keys_by_kek(session: Session) -> dict[str, int]:
    """How many live data keys each KEK wraps (for `avhopp keys status`)."""
    rows = session.execute(
        select(DataKey.kek_id, func.count()).where(DataKey.wrapped.is_not(None))
        .group_by(DataKey.kek_id)
    ).all()
    return {str(kek): int(n) for kek, n in rows}


def rotate_kek(
    factory: Callable[[], Session], *, keyring: LocalKeyRing, batch_size: int = 1000,
    progress: Callable[[int], None] | None = None,
) -> int:
    """Re-wrap every data key and staff secret under the active KEK, batch by batch."""
    total = 0
    while True:
        with factory() as session, session.begin():
            done = rewrap_batch(session, keyring=keyring, batch_size=batch_size)
        total += done
        if progress is not None and done:
            progress(done)
        if done < batch_size:
            break
    with factory() as session, session.begin():
        staff = rewrap_staff_secrets(session, keyring=keyring)
        record(session, action="key.kek_rotated", actor=None, object_type="kek",
               object_id=keyring.active_kek_id, details={"keys": total, "staff": staff})
    return total


def add_index_version(
    session: Session, *, actor: Actor | None, model: type, field_name: str,
    population: int | None = None,
) -> int:
    """Start a new index version (state backfilling); returns its number."""
    crypto = field_crypto(session)
    table = model.__table__.name  # type: ignore[attr-defined]
    versions = crypto.index_versions(session, table, field_name)
    if any(v.state == BACKFILLING for v in versions):
        raise ValueError("a new index version is already being backfilled")
    number = max(v.version for v in versions) + 1
    session.add(BlindIndexVersion(
        table_name=table, column_name=field_name, version=number,
        bits=truncation_bits(population or crypto.population), state=BACKFILLING,
    ))
    session.info.pop("avhopp.index_versions", None)
    record(session, action="key.index_version_added", actor=actor, object_type="index",
           object_id=f"{table}.{field_name}", details={"version": number})
    session.flush()
    return number


def backfill_index(session: Session, *, model: type, field_name: str, version: int,
                   after: uuid.UUID | None = None, batch_size: int = 1000) -> uuid.UUID | None:
    """Write version `version` digests for one batch of rows; returns the last row id, or None
    when done. Resumable: pass the returned id as `after`."""
    crypto = field_crypto(session)
    field = REGISTRY[model][field_name]
    table = model.__table__.name  # type: ignore[attr-defined]
    spec = session.get(BlindIndexVersion, (table, field_name, version))
    if spec is None:
        raise ValueError("no such index version")
    ident = model.id  # type: ignore[attr-defined]
    stmt = select(model).where(getattr(model, field.column_attr).is_not(None)).order_by(ident)
    if after is not None:
        stmt = stmt.where(ident > after)
    rows: Sequence[Any] = session.scalars(stmt.limit(batch_size)).all()
    for row in rows:
        session.execute(delete(BlindIndexValue).where(
            BlindIndexValue.table_name == table, BlindIndexValue.column_name == field_name,
            BlindIndexValue.version == version, BlindIndexValue.row_id == row.id))
        normalised = crypto.normalise(field, getattr(row, field_name))
        session.add(BlindIndexValue(
            table_name=table, column_name=field_name, version=version,
            digest=crypto.digest(table, field_name, version, spec.bits, normalised),
            row_id=row.id, subject_id=subject_of(row)))
    session.flush()
    return rows[-1].id if len(rows) == batch_size else None


def switch_index(session: Session, *, actor: Actor | None, model: type, field_name: str,
                 version: int) -> None:
    """Make `version` the active index and retire (and delete) the older ones."""
    table = model.__table__.name  # type: ignore[attr-defined]
    session.execute(update(BlindIndexVersion).where(
        BlindIndexVersion.table_name == table, BlindIndexVersion.column_name == field_name,
        BlindIndexVersion.version != version).values(state=RETIRED))
    session.execute(update(BlindIndexVersion).where(
        BlindIndexVersion.table_name == table, BlindIndexVersion.column_name == field_name,
        BlindIndexVersion.version == version).values(state=ACTIVE))
    session.execute(delete(BlindIndexValue).where(
        BlindIndexValue.table_name == table, BlindIndexValue.column_name == field_name,
        BlindIndexValue.version != version))
    session.info.pop("avhopp.index_versions", None)
    record(session, action="key.index_switched", actor=actor, object_type="index",
           object_id=f"{table}.{field_name}", details={"version": version})
    session.flush()
