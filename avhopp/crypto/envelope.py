"""COSE_Encrypt0 (RFC 9052, A256GCM) envelopes for single encrypted database fields."""

from __future__ import annotations

import datetime as dt
import json
import os
import struct
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Final, TypeAlias

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from avhopp.crypto.errors import DecryptionError

FIELD_AAD_LABEL: Final = "avhopp/field/v1"
COSE_ALG_A256GCM: Final = 3
IV_LEN: Final = 12
TAG_LEN: Final = 16
KEY_LEN: Final = 32

TYPE_TEXT: Final = 0x01
TYPE_INT: Final = 0x02
TYPE_DATE: Final = 0x03
TYPE_BYTES: Final = 0x04
TYPE_JSON: Final = 0x05

FieldValue: TypeAlias = str | int | dt.date | bytes | dict[str, Any] | list[Any]

_SMALL_BUCKETS: Final = (16, 32, 64, 128, 256, 512, 1024)
_COSE_TAG_ENCRYPT0: Final = b"\xd0\x83"  # tag(16) + array(3)
_ENC_STRUCTURE_HEAD: Final = b"\x83\x68Encrypt0"  # array(3) + tstr "Encrypt0"
_UNPROTECTED_HEAD: Final = b"\xa1\x05\x4c"  # map(1) {5: bstr(12) ...}
_PROTECTED_HEAD: Final = b"\xa2\x01\x03\x04"  # map(2) {1: 3, 4: ...}


_LEN: Final = struct.Struct(">I")


def length_prefixed(*parts: str | bytes) -> bytes:
    """Encode parts unambiguously: each as a 4-byte big-endian length followed by its bytes."""
    chunks = []
    for part in parts:
        raw = part.encode("utf-8") if isinstance(part, str) else bytes(part)
        chunks.append(_LEN.pack(len(raw)))
        chunks.append(raw)
    return b"".join(chunks)


@dataclass(frozen=True, slots=True)
class FieldContext:
    """Where an encrypted value lives; bound into the ciphertext as external AAD."""

    table: str
    column: str
    row_id: str
    subject_id: str
    external_aad: bytes = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        for name in ("table", "column", "row_id", "subject_id"):
            if not isinstance(getattr(self, name), str):
                raise TypeError(f"FieldContext.{name} must be str")
        # Computed once: a context is typically reused for several columns' worth of calls.
        aad = length_prefixed(
            FIELD_AAD_LABEL, self.table, self.column, self.row_id, self.subject_id
        )
        object.__setattr__(self, "external_aad", aad)

    def _error(self) -> DecryptionError:
        return DecryptionError(self.table, self.column, self.row_id)

    @classmethod
    def for_row(cls, table: str, column: str, row_id: str, subject_id: str) -> FieldContext:
        """Same as the constructor, for callers that pass str ids they built themselves: the
        (label, table, column) prefix of the AAD is encoded once and reused. Loading a list
        builds one context per field shown, so this is on the hot path."""
        ctx = object.__new__(cls)
        object.__setattr__(ctx, "table", table)
        object.__setattr__(ctx, "column", column)
        object.__setattr__(ctx, "row_id", row_id)
        object.__setattr__(ctx, "subject_id", subject_id)
        row = row_id.encode("utf-8")
        subject = subject_id.encode("utf-8")
        aad = b"".join((_aad_prefix(table, column), _LEN.pack(len(row)), row,
                        _LEN.pack(len(subject)), subject))
        object.__setattr__(ctx, "external_aad", aad)
        return ctx


@lru_cache(maxsize=512)
def _aad_prefix(table: str, column: str) -> bytes:
    return length_prefixed(FIELD_AAD_LABEL, table, column)


@lru_cache(maxsize=256)
def _aead(key: bytes) -> AESGCM:
    # Building an AESGCM costs about as much as one small encryption; reuse per key.
    return AESGCM(key)


def clear_cipher_cache() -> None:
    """Drop cached cipher objects (call after destroying data keys)."""
    _aead.cache_clear()


def _bstr_head(n: int) -> bytes:
    if n < 24:
        return bytes((0x40 + n,))
    if n < 0x100:
        return b"\x58" + n.to_bytes(1, "big")
    if n < 0x10000:
        return b"\x59" + n.to_bytes(2, "big")
    if n < 0x100000000:
        return b"\x5a" + n.to_bytes(4, "big")
    raise ValueError("value too large for an envelope")


def _bstr(data: bytes) -> bytes:
    return _bstr_head(len(data)) + data


def _read_bstr(buf: bytes, pos: int) -> tuple[bytes, int]:
    """Read a definite-length, shortest-form CBOR bstr at pos; return (value, next pos)."""
    head = buf[pos]
    if head & 0xE0 != 0x40:
        raise ValueError("not a bstr")
    info = head & 0x1F
    pos += 1
    if info < 24:
        n = info
    elif 24 <= info <= 26:
        width = 1 << (info - 24)
        n = int.from_bytes(buf[pos : pos + width], "big")
        if len(buf) < pos + width or n < (24 if width == 1 else 1 << (4 * width)):
            raise ValueError("non-canonical length")
        pos += width
    else:
        raise ValueError("unsupported bstr length")
    end = pos + n
    if end > len(buf):
        raise ValueError("truncated")
    return buf[pos:end], end


@lru_cache(maxsize=1024)
def _protected(kid: str) -> bytes:
    # Encoded once per kid: the protected header is the same for every field of one person.
    kid_bytes = kid.encode("utf-8")
    if not kid_bytes:
        raise ValueError("kid must not be empty")
    return _PROTECTED_HEAD + _bstr(kid_bytes)


def bucket_size(n: int) -> int:
    """Padded length for n bytes of payload (room for the 0x80 marker included)."""
    need = n + 1
    for size in _SMALL_BUCKETS:
        if need <= size:
            return size
    return -(-need // 1024) * 1024


# bucket_size(n) for the payload lengths of almost every field, as one tuple index.
_BUCKET_OF: Final = tuple(bucket_size(n) for n in range(_SMALL_BUCKETS[-1]))


def pad(payload: bytes) -> bytes:
    """ISO/IEC 7816-4 padding (0x80 then zeros) up to the next length bucket."""
    return payload + b"\x80" + bytes(bucket_size(len(payload)) - len(payload) - 1)


def unpad(padded: bytes) -> bytes:
    """Reverse pad(); reject anything that pad() could not have produced."""
    payload = padded.rstrip(b"\x00")
    if not payload or payload[-1] != 0x80:
        raise ValueError("bad padding")
    payload = payload[:-1]
    if bucket_size(len(payload)) != len(padded):
        raise ValueError("bad padding length")
    return payload


def encode_value(value: FieldValue) -> bytes:
    """Type tag + value bytes (before padding)."""
    if isinstance(value, str):
        return bytes((TYPE_TEXT,)) + value.encode("utf-8")
    if isinstance(value, bool):
        # bool is an int subclass; refusing it avoids reading back 1 where True was stored.
        raise TypeError("bool is not an encryptable field type")
    if isinstance(value, int):
        width = (value if value >= 0 else ~value).bit_length() // 8 + 1
        return bytes((TYPE_INT,)) + value.to_bytes(width, "big", signed=True)
    if isinstance(value, dt.datetime):
        raise TypeError("datetime is not an encryptable field type (use date or text)")
    if isinstance(value, dt.date):
        return bytes((TYPE_DATE,)) + value.isoformat().encode("ascii")
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes((TYPE_BYTES,)) + bytes(value)
    if isinstance(value, (dict, list)):
        text = json.dumps(
            value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
        )
        return bytes((TYPE_JSON,)) + text.encode("utf-8")
    if value is None:
        raise TypeError("None is stored as NULL and never encrypted")
    raise TypeError(f"{type(value).__name__} is not an encryptable field type")


def decode_value(payload: bytes) -> FieldValue:
    """Inverse of encode_value; strict, so every stored value has exactly one encoding."""
    tag, body = payload[0], payload[1:]
    if tag == TYPE_TEXT:
        return body.decode("utf-8")
    if tag == TYPE_INT:
        number = int.from_bytes(body, "big", signed=True)
        if not body or encode_value(number)[1:] != body:
            raise ValueError("non-minimal int")
        return number
    if tag == TYPE_DATE:
        text = body.decode("ascii")
        day = dt.date.fromisoformat(text)
        if len(text) != 10 or day.isoformat() != text:
            raise ValueError("non-canonical date")
        return day
    if tag == TYPE_BYTES:
        return body
    if tag == TYPE_JSON:
        decoded = json.loads(body.decode("utf-8"))
        if not isinstance(decoded, (dict, list)):
            raise ValueError("JSON field must be an object or array")
        return decoded
    raise ValueError("unknown type tag")


def _unpad_decode(padded: bytes) -> FieldValue:
    """decode_value(unpad(padded)) with the same checks, text decoded inline (the hot path)."""
    payload = padded.rstrip(b"\x00")
    n = len(payload) - 1  # payload length without the 0x80 marker
    if n < 0 or payload[n] != 0x80:
        raise ValueError("bad padding")
    if (_BUCKET_OF[n] if n < len(_BUCKET_OF) else bucket_size(n)) != len(padded):
        raise ValueError("bad padding length")
    if n and payload[0] == TYPE_TEXT:
        return payload[1:n].decode("utf-8")
    return decode_value(payload[:n])


def seal(
    key: bytes, kid: str, ctx: FieldContext, value: FieldValue, *, iv: bytes | None = None
) -> bytes:
    """Encrypt value for ctx under the data key `key` (id `kid`); returns a tagged COSE_Encrypt0."""
    if len(key) != KEY_LEN:
        raise ValueError("data key must be 32 bytes")
    if iv is None:
        iv = os.urandom(IV_LEN)
    elif len(iv) != IV_LEN:
        raise ValueError("IV must be 12 bytes")
    enc_head, envelope_head = _seal_heads(kid)
    # encode_value() and pad() inlined for text, the common case (same bytes; the known-answer
    # vectors pin them): every encrypted field of every write passes here.
    payload = b"\x01" + value.encode("utf-8") if type(value) is str else encode_value(value)
    n = len(payload)
    size = _BUCKET_OF[n] if n < _SMALL_BUCKETS[-1] else bucket_size(n)
    aad = ctx.external_aad
    ciphertext = _aead(key).encrypt(
        iv, payload + b"\x80" + bytes(size - n - 1), enc_head + _bstr_head(len(aad)) + aad
    )
    return b"".join((envelope_head, iv, _bstr_head(len(ciphertext)), ciphertext))


@lru_cache(maxsize=1024)
def _seal_heads(kid: str) -> tuple[bytes, bytes]:
    """For one kid: the Enc_structure up to the external AAD's bstr, and the envelope up to
    the IV (both contain the protected header, which depends on the kid alone)."""
    protected = _bstr(_protected(kid))
    return _ENC_STRUCTURE_HEAD + protected, _COSE_TAG_ENCRYPT0 + protected + _UNPROTECTED_HEAD


def _parse(blob: bytes | bytearray | memoryview) -> tuple[bytes, str, bytes, bytes]:
    """Split an envelope into (protected bstr, kid, iv, ciphertext); accepts only our encoding.

    The first element is the protected header *with* its CBOR bstr head: exactly the bytes
    the Enc_structure embeds, so opening needs no re-encoding.
    """
    blob = bytes(blob)  # DB drivers may hand over memoryview (psycopg bytea)
    if blob[:2] != _COSE_TAG_ENCRYPT0:
        raise ValueError("not a tagged COSE_Encrypt0")
    protected, pos = _read_bstr(blob, 2)
    kid = _kid_of_protected(protected)
    if blob[pos : pos + 3] != _UNPROTECTED_HEAD:
        raise ValueError("unexpected unprotected header")
    iv = blob[pos + 3 : pos + 3 + IV_LEN]
    ciphertext, end = _read_bstr(blob, pos + 3 + IV_LEN)
    if end != len(blob) or len(ciphertext) < TAG_LEN + 16:
        raise ValueError("bad ciphertext")
    return blob[2:pos], kid, iv, ciphertext


@lru_cache(maxsize=4096)
def _kid_of_protected(protected: bytes) -> str:
    """The kid of a protected header; cached because it is the same for all of a person's
    fields (parsing it was a third of the cost of opening a field)."""
    if protected[:4] != _PROTECTED_HEAD:
        raise ValueError("unexpected protected header")
    kid_bytes, end = _read_bstr(protected, 4)
    if end != len(protected) or not kid_bytes:
        raise ValueError("unexpected protected header")
    return kid_bytes.decode("utf-8")


@lru_cache(maxsize=16384)
def _header(head: bytes) -> tuple[str, bytes]:
    """Validate an envelope's fixed part (tag, protected header, unprotected-map head up to the
    IV) exactly as _parse() does; return (kid, Enc_structure head including the protected bstr).

    Cached: the header is the same for every field of one person under one data key. Only
    valid headers are cached (a failed validation raises, and lru_cache keeps no exceptions).
    """
    if head[:2] != _COSE_TAG_ENCRYPT0:
        raise ValueError("not a tagged COSE_Encrypt0")
    protected, pos = _read_bstr(head, 2)
    kid = _kid_of_protected(protected)
    if head[pos:] != _UNPROTECTED_HEAD:
        raise ValueError("unexpected unprotected header")
    return kid, _ENC_STRUCTURE_HEAD + head[2:pos]


def _split(blob: bytes) -> tuple[str, bytes, bytes, bytes]:
    """(kid, Enc_structure head, iv, ciphertext) of an envelope; accepts exactly what _parse()
    accepts. Fast path for protected headers and ciphertexts under 256 bytes (every kid we
    issue, every field up to 223 bytes); anything else goes through _parse()."""
    first = blob[2]
    if first == 0x58:
        h = blob[3] + 7  # tag 2 + bstr head 2 + protected + unprotected head 3
    elif 0x40 <= first < 0x58:
        h = first - 0x3A  # tag 2 + bstr head 1 + protected + unprotected head 3
    else:
        protected, kid, iv, ciphertext = _parse(blob)
        return kid, _ENC_STRUCTURE_HEAD + protected, iv, ciphertext
    kid, enc_head = _header(blob[:h])
    if blob[h + 12] != 0x58:
        protected, kid, iv, ciphertext = _parse(blob)
        return kid, _ENC_STRUCTURE_HEAD + protected, iv, ciphertext
    n = blob[h + 13]
    # n >= 32 also rules out a non-canonical one-byte length (< 24).
    if n < TAG_LEN + 16 or h + 14 + n != len(blob):
        raise ValueError("bad ciphertext")
    return kid, enc_head, blob[h : h + 12], blob[h + 14 :]


@lru_cache(maxsize=1024)
def _external_aad_head(table: str, column: str, rest: int) -> bytes:
    """bstr head of the external AAD plus its (label, table, column) part, for a row whose
    (row id, subject id) part is `rest` bytes long."""
    prefix = length_prefixed(FIELD_AAD_LABEL, table, column)
    return _bstr_head(len(prefix) + rest) + prefix


class _AadHeads(dict[str, bytes]):
    """column -> _external_aad_head(table, column, rest) for one (table, rest): rows of one
    table share it, so a field's lookup is one dict lookup by column name."""

    __slots__ = ("rest", "table")

    def __init__(self, table: str, rest: int) -> None:
        super().__init__()
        self.table = table
        self.rest = rest

    def __missing__(self, column: str) -> bytes:
        head = self[column] = _external_aad_head(self.table, column, self.rest)
        return head


@lru_cache(maxsize=256)
def _aad_heads(table: str, rest: int) -> _AadHeads:
    return _AadHeads(table, rest)


class RowContext:
    """The (table, row id, subject id) every field of one row shares, encoded once per row.

    `RowContext(t, r, s).field(c)` is `FieldContext(t, c, r, s)`; `open()` opens a field of the
    row with the same checks and errors as open_with() but without building a FieldContext:
    a list page opens several fields of many rows, so this is the hot path.
    """

    __slots__ = ("_heads", "_rest", "row_id", "subject_id", "table")

    def __init__(self, table: str, row_id: str, subject_id: str) -> None:
        if not (isinstance(table, str) and isinstance(row_id, str)
                and isinstance(subject_id, str)):
            raise TypeError("RowContext takes str table, row_id and subject_id")
        self.table = table
        self.row_id = row_id
        self.subject_id = subject_id
        row = row_id.encode("utf-8")
        subject = row if subject_id is row_id else subject_id.encode("utf-8")
        # length_prefixed(row_id, subject_id), spelt out: one RowContext per row loaded.
        self._rest = b"".join((_LEN.pack(len(row)), row, _LEN.pack(len(subject)), subject))
        self._heads = _aad_heads(table, len(self._rest))

    def __repr__(self) -> str:
        return f"RowContext({self.table!r}, {self.row_id!r}, {self.subject_id!r})"

    def field(self, column: str) -> FieldContext:
        return FieldContext(self.table, column, self.row_id, self.subject_id)

    def error(self, column: str) -> DecryptionError:
        return DecryptionError(self.table, column, self.row_id)

    def open(
        self,
        column: str,
        blob: bytes | bytearray | memoryview,
        ciphers: Mapping[str, AESGCM],
        fetch: Callable[[str, str], AESGCM],
    ) -> FieldValue:
        """Decrypt `column` of this row. The data key's cipher (see cipher()) comes from
        `ciphers` by kid, or on a miss from fetch(kid, subject_id); errors raised by fetch
        (KeyDestroyed, KeyNotFound) propagate unchanged, every other failure is
        DecryptionError naming table, column and row.
        """
        if type(blob) is not bytes:
            blob = bytes(blob)
        try:
            # _split() inlined for its common case: one-byte protected and ciphertext lengths
            # (literals, not the named constants: this runs for every field of every row).
            h = blob[3] + 7  # tag 2 + bstr head 2 + protected + unprotected head 3
            if blob[2] == 0x58 and blob[h + 12] == 0x58:
                kid, enc_head = _header(blob[:h])
                n = blob[h + 13]
                # n >= 32 (TAG_LEN + 16) also rules out a non-canonical one-byte length (< 24).
                if n < 32 or h + 14 + n != len(blob):
                    raise ValueError("bad ciphertext")
                iv = blob[h : h + 12]
                ciphertext = blob[h + 14 :]
            else:
                kid, enc_head, iv, ciphertext = _split(blob)
        except (ValueError, IndexError, TypeError):
            raise self.error(column) from None
        aead = ciphers.get(kid)
        if aead is None:
            aead = fetch(kid, self.subject_id)
        try:
            padded = aead.decrypt(iv, ciphertext, b"".join((enc_head, self._heads[column],
                                                             self._rest)))
            # _unpad_decode() inlined for text (type tag 0x01), the common case; same checks
            # (1024 is len(_BUCKET_OF)).
            payload = padded.rstrip(b"\x00")
            n = len(payload) - 1
            if 0 < n < 1024 and payload[n] == 0x80 and payload[0] == 0x01:
                if _BUCKET_OF[n] != len(padded):
                    raise ValueError("bad padding length")
                return payload[1:n].decode("utf-8")
            return _unpad_decode(padded)
        except (ValueError, IndexError, TypeError, InvalidTag):
            raise self.error(column) from None


def cipher(key: bytes) -> AESGCM:
    """The AES-256-GCM cipher of a data key, for RowContext.open's map of ciphers by kid
    (building one costs about as much as a small decryption, so callers keep it)."""
    if len(key) != KEY_LEN:
        raise ValueError("data key must be 32 bytes")
    return AESGCM(key)


def read_kid(blob: bytes | bytearray | memoryview, ctx: FieldContext | None = None) -> str:
    """The data-key id of an envelope, so the caller can fetch the key before open_()."""
    try:
        return _split(blob if type(blob) is bytes else bytes(blob))[0]
    except (ValueError, IndexError, TypeError):
        if ctx is None:
            raise DecryptionError("<unknown>", "<unknown>", "<unknown>") from None
        raise ctx._error() from None


def open_(
    key: bytes, ctx: FieldContext, blob: bytes | bytearray | memoryview, *, kid: str | None = None
) -> FieldValue:
    """Decrypt an envelope made by seal() for exactly this ctx; any failure is DecryptionError.

    If kid is given the envelope must name that data key.
    """
    try:
        blob_kid, enc_head, iv, ciphertext = _split(blob if type(blob) is bytes else bytes(blob))
        if kid is not None and blob_kid != kid:
            raise ValueError("kid mismatch")
        aad = b"".join((enc_head, _bstr(ctx.external_aad)))
        return _unpad_decode(_aead(key).decrypt(iv, ciphertext, aad))
    except (ValueError, IndexError, TypeError, InvalidTag):
        # No chained cause: it could carry fragments of plaintext (e.g. a UnicodeDecodeError).
        raise ctx._error() from None


def open_with(
    key_for_kid: Callable[[str], bytes],
    ctx: FieldContext,
    blob: bytes | bytearray | memoryview,
) -> FieldValue:
    """Like open_(), but parses the envelope once and asks `key_for_kid` for its data key.

    Errors raised by key_for_kid (KeyDestroyed, KeyNotFound) propagate unchanged so callers can
    tell an erased person from a damaged value; every other failure is DecryptionError.
    """
    try:
        kid, enc_head, iv, ciphertext = _split(blob if type(blob) is bytes else bytes(blob))
    except (ValueError, IndexError, TypeError):
        raise ctx._error() from None
    key = key_for_kid(kid)
    try:
        aad = b"".join((enc_head, _bstr(ctx.external_aad)))
        return _unpad_decode(_aead(key).decrypt(iv, ciphertext, aad))
    except (ValueError, IndexError, TypeError, InvalidTag):
        raise ctx._error() from None
