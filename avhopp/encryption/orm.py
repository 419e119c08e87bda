"""Encrypted model attributes: sealed at flush, opened lazily, never comparable in SQL."""

from __future__ import annotations

import datetime as dt
import uuid
import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Generic, TypeVar, overload

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import LargeBinary, TypeDecorator, event
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import Session, mapped_column, object_session
from sqlalchemy.orm.attributes import instance_state
from sqlalchemy.sql.operators import is_, is_not

from avhopp.crypto.envelope import FieldContext, RowContext
from avhopp.crypto.errors import KeyNotFound

if TYPE_CHECKING:
    from avhopp.encryption.services import FieldCrypto

T = TypeVar("T")

SESSION_KEY = "avhopp.field_crypto"
# Per-session SessionKeys: kid -> the data key's AES-GCM cipher (see FieldCrypto.session_keys).
SESSION_KEYS = "avhopp.session_keys"
KINDS: dict[str, tuple[type, ...]] = {
    "text": (str,),
    "int": (int,),
    "date": (dt.date,),
    "bytes": (bytes,),
    "json": (dict, list),
}
# model class -> {attribute name: descriptor}; used by rotation, erasure and the D1 check.
REGISTRY: dict[type, dict[str, Encrypted[Any]]] = {}


class EncryptedComparisonError(TypeError):
    """An encrypted column was used in a SQL comparison; it would silently match nothing."""


class EncryptionNotConfigured(RuntimeError):
    """A session without field crypto tried to write or read an encrypted field."""


class _Pending:
    """Placeholder stored in the column until flush replaces it by ciphertext. It is not bytes,
    so a flush that somehow bypassed encryption fails instead of writing something."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "<pending encryption>"


PENDING = _Pending()
_MISSING = object()


class EncryptedBlob(TypeDecorator[bytes]):
    """Column type of an envelope. Any comparison but IS [NOT] NULL raises (fail closed)."""

    impl = LargeBinary
    cache_ok = True

    class comparator_factory(LargeBinary.Comparator):  # noqa: N801  SQLAlchemy's naming
        def operate(self, op: Any, *other: Any, **kwargs: Any) -> Any:
            if op in (is_, is_not):
                return super().operate(op, *other, **kwargs)
            raise EncryptedComparisonError(
                "encrypted columns cannot be compared in SQL; use the blind-index search"
            )

        def reverse_operate(self, op: Any, other: Any, **kwargs: Any) -> Any:
            raise EncryptedComparisonError("encrypted columns cannot be compared in SQL")

    def process_bind_param(self, value: Any, dialect: Dialect) -> bytes | None:
        if value is None or isinstance(value, bytes):
            return value
        raise EncryptionNotConfigured("an encrypted field reached the database unencrypted")


class _ClassAttribute:
    """What `Model.field` returns: refuses to be used in a query."""

    def __init__(self, owner: type, name: str) -> None:
        self._where = f"{owner.__name__}.{name}"

    def _refuse(self, *_args: Any, **_kwargs: Any) -> Any:
        raise EncryptedComparisonError(
            f"{self._where} is encrypted and cannot be used in SQL; search by blind index"
        )

    __eq__ = __ne__ = __lt__ = __le__ = __gt__ = __ge__ = _refuse  # type: ignore[assignment]
    like = ilike = in_ = not_in = contains = startswith = endswith = _refuse
    __hash__ = object.__hash__


class Encrypted(Generic[T]):
    """Declare an encrypted attribute: `name = Encrypted[str]("text", index="phone")`.

    Adds a nullable `<name>_enc` envelope column. The value is sealed at flush under the row's
    subject's data key, with (table, column, row id, subject id) bound as associated data, and
    opened on first access (a page showing two fields decrypts two fields).
    """

    def __init__(self, kind: str, *, index: str | None = None,
                 data_class: str = "personal") -> None:
        if kind not in KINDS:
            raise ValueError(f"unknown kind {kind!r}")
        self.kind = kind
        self.index = index
        self.data_class = data_class
        self.name = ""
        self.column_attr = ""
        self.value_key = ""
        self.blob_key = ""

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name
        self.column_attr = f"{name}_enc"
        # Instance-dict keys of the cached plaintext and of the envelope it was read from.
        self.value_key = f"_avhopp_plain.{name}"
        self.blob_key = f"_avhopp_blob.{name}"
        # Declarative scans the class namespace after __set_name__, so this becomes a column.
        setattr(owner, self.column_attr, mapped_column(
            self.column_attr, EncryptedBlob(), nullable=True,
            info={"data_class": self.data_class, "encrypted": True},
        ))
        REGISTRY.setdefault(owner, {})[name] = self

    @overload
    def __get__(self, obj: None, owner: type) -> _ClassAttribute: ...
    @overload
    def __get__(self, obj: object, owner: type) -> T | None: ...

    def __get__(self, obj: object | None, owner: type) -> Any:
        if obj is None:
            return _ClassAttribute(owner, self.name)
        state = obj.__dict__
        # A loaded column sits in the instance dict; only an expired or deferred one needs the
        # instrumented attribute (which loads it). This is the hot path of every list page.
        blob = state.get(self.column_attr, _MISSING)
        if blob is _MISSING:
            blob = getattr(obj, self.column_attr)
        cached = state.get(self.blob_key, _MISSING)
        if cached is blob or (cached is not _MISSING and cached == blob):
            return state[self.value_key]
        if blob is None:
            return None
        if blob is PENDING:
            raise EncryptionNotConfigured("value is pending encryption but not cached")
        row: _Row | None = state.get(_ROW)
        if row is None:
            row = row_context_of(obj)
        # The session's key map, remembered on the row by weak reference and used only while
        # it is alive, open and of the session the row is in now: the map dies or is closed
        # at commit and rollback, and erasure evicts from this very map.
        keys = row.keys_ref()
        if keys is None or keys.session_id != instance_state(obj).session_id:
            keys = _session_keys_of(obj, row)
        try:
            value = row.open(self.name, blob, keys, keys.fetch)
        except KeyNotFound:
            # Unknown key or another person's: to the reader, an undecryptable field.
            raise row.error(self.name) from None
        state[self.value_key] = value
        state[self.blob_key] = blob
        return value

    def remember(self, obj: object, blob: Any, value: Any) -> None:
        """Cache value as the plaintext of `blob` (the column's current content).

        Kept as two flat entries of the instance dict, not a per-object dict of tuples: a list
        page keeps thousands of rows alive, and every extra container per field they hold
        makes the garbage collector's full passes over them slower.
        """
        state = obj.__dict__
        state[self.value_key] = value
        state[self.blob_key] = blob

    def __set__(self, obj: object, value: T | None) -> None:
        if value is not None and (
            not isinstance(value, KINDS[self.kind]) or isinstance(value, bool)
        ):
            raise TypeError(f"{self.name} takes {self.kind}, not {type(value).__name__}")
        pending: set[str] = obj.__dict__.setdefault("_avhopp_pending", set())
        if value is None:
            setattr(obj, self.column_attr, None)
            self.remember(obj, None, None)
            pending.discard(self.name)
        else:
            setattr(obj, self.column_attr, PENDING)
            self.remember(obj, PENDING, value)
            pending.add(self.name)


def _session_keys_of(obj: object, row: _Row) -> SessionKeys:
    """The key map of obj's session (created on first use), remembered on obj's row."""
    session = instance_state(obj).session
    if session is None:
        raise EncryptionNotConfigured("the object is not in a session with field crypto")
    keys: SessionKeys | None = session.info.get(SESSION_KEYS)
    if keys is None:
        crypto = session.info.get(SESSION_KEY)
        if crypto is None:
            raise EncryptionNotConfigured("the object is not in a session with field crypto")
        keys = crypto.session_keys(session)
    row.keys_ref = keys.ref
    return keys


def subject_of(obj: object) -> uuid.UUID:
    attr = getattr(type(obj), "__encryption_subject__", "id")
    subject = getattr(obj, attr)
    if not isinstance(subject, uuid.UUID):
        raise ValueError(f"{type(obj).__name__} needs a UUID {attr} before encrypting")
    return subject


def _row_spec(model: type) -> tuple[str, str]:
    """(table name, subject attribute) of a model, looked up once per class."""
    spec = _ROW_SPECS.get(model)
    if spec is None:
        spec = _ROW_SPECS[model] = (
            model.__table__.name,  # type: ignore[attr-defined]
            getattr(model, "__encryption_subject__", "id"),
        )
    return spec


_ROW_SPECS: dict[type, tuple[str, str]] = {}


def _no_keys() -> SessionKeys | None:
    return None


class _Row(RowContext):
    """A row's RowContext plus, by weak reference, the key map its fields were last opened
    with: one instance-dict entry per row instead of two (a Person read with four fields
    then still fits its dict without a resize)."""

    __slots__ = ("keys_ref",)

    def __init__(self, table: str, row_id: str, subject_id: str) -> None:
        super().__init__(table, row_id, subject_id)
        self.keys_ref: Callable[[], SessionKeys | None] = _no_keys


def row_context_of(obj: object) -> _Row:
    """The row's (table, row id, subject id), encoded once per object: ids never change."""
    state = obj.__dict__
    row: _Row | None = state.get(_ROW)
    if row is None:
        table, subject_attr = _row_spec(type(obj))
        # Loaded ids sit in the instance dict; getattr only for an expired or unset one.
        row_id = state.get("id") or getattr(obj, "id", None)
        if not isinstance(row_id, uuid.UUID):
            # The id is part of the associated data, so it must exist before the INSERT.
            raise ValueError(f"{type(obj).__name__} must get its UUID id in the constructor")
        row_str = str(row_id)
        if subject_attr == "id":
            subject_str = row_str  # a person is their own subject
        else:
            subject = subject_of(obj)
            subject_str = row_str if subject == row_id else str(subject)
        row = state[_ROW] = _Row(table, row_str, subject_str)
    return row


def context_of(obj: object, field: Encrypted[Any]) -> FieldContext:
    """The field's encryption context (for sealing; opening uses the row context directly)."""
    return row_context_of(obj).field(field.name)


class SessionKeys(dict[str, AESGCM]):
    """Ciphers of the data keys already used in one session, by kid: a list page opens several
    fields per person without the shared cache's lock and clock, or building a cipher per
    field. Lives in session.info until the transaction ends (closed and dropped at commit and
    rollback, evicted from by erasure); `fetch` fills it on a miss.

    No reference cycle (the session is held weakly, fetch is a method, not a closure over the
    map), so the keys go as soon as session.info lets go of the map, without waiting for the
    garbage collector. Rows remember the map only through `ref`, so they do not keep it alive.
    """

    __slots__ = ("__weakref__", "_crypto", "_session", "ref", "session_id")

    def __init__(self, crypto: FieldCrypto, session: Session) -> None:
        super().__init__()
        self._crypto = crypto
        self._session = weakref.ref(session)
        # Unique per session for the life of the process, so a row that moved to another
        # session never uses this map.
        self.session_id: object = session.hash_key
        self.ref = weakref.ref(self)

    def close(self) -> None:
        """Forget every key and stop serving rows (the transaction has ended)."""
        self.session_id = _CLOSED
        self.clear()

    def fetch(self, kid: str, subject_id: str) -> AESGCM:
        session = self._session()
        if session is None or self.session_id is _CLOSED:
            raise KeyNotFound(f"data key {kid}: the session's key map is closed")
        crypto = self._crypto
        # The shared cache first, without cipher_by_id's frame: every person on a list page
        # is one miss here.
        aead = crypto.cache.get_cipher(kid) or crypto.cipher_by_id(session, kid, subject_id)
        self[kid] = aead
        return aead


_CLOSED = object()
# Instance-dict key of a row's _Row (see row_context_of and Encrypted.__get__).
_ROW = "_avhopp_row"


def field_crypto_of(obj: object) -> FieldCrypto:
    session = object_session(obj)
    crypto = session.info.get(SESSION_KEY) if session is not None else None
    if crypto is None:
        raise EncryptionNotConfigured("the object is not in a session with field crypto")
    return crypto  # type: ignore[no-any-return]


def pending_fields(obj: object) -> list[Encrypted[Any]]:
    names = obj.__dict__.get("_avhopp_pending")
    if not names:
        return []
    fields = REGISTRY.get(type(obj), {})
    return [fields[n] for n in sorted(names)]


@event.listens_for(Session, "before_flush")
def _seal_pending(session: Session, _ctx: Any, _instances: Any) -> None:
    """Encrypt every pending value (and refresh its blind index) just before it is written."""
    targets = [obj for obj in (*session.new, *session.dirty) if pending_fields(obj)]
    if not targets:
        return
    crypto = session.info.get(SESSION_KEY)
    if crypto is None:
        raise EncryptionNotConfigured("this session cannot encrypt: no field crypto attached")
    for obj in targets:
        crypto.seal_pending(session, obj)


@event.listens_for(Session, "after_commit")
@event.listens_for(Session, "after_soft_rollback")
def _forget_new_keys(session: Session, *_args: Any) -> None:
    # Keys created in this transaction are in the database after a commit and gone after a
    # rollback; either way the next lookup must ask the database, never a stale map.
    session.info.pop("avhopp.new_keys", None)
    session.info.pop("avhopp.index_versions", None)
    keys = session.info.pop(SESSION_KEYS, None)
    if keys is not None:
        # Rows that remember the map see it closed even if something still holds it.
        keys.close()
