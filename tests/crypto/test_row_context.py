"""The hot path for reading fields: RowContext.open and the fast envelope split.

Both must accept exactly what the reference parser and open_() accept, and fail the same way.
"""

from __future__ import annotations

import datetime as dt
import os
from typing import Any

import cbor2
import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from hypothesis import example, given
from hypothesis import strategies as st

from avhopp.crypto import (
    DecryptionError,
    FieldContext,
    KeyDestroyed,
    RowContext,
    cipher,
    open_,
    seal,
)
from avhopp.crypto.envelope import _ENC_STRUCTURE_HEAD, _parse, _split, open_with

KEY = bytes(range(32))
KID = "dk-0123456789abcdef0123456789abcdef"  # the shape FieldCrypto issues: 35 bytes
ROW = RowContext("person", "7f1c2a9e-0000-4000-8000-000000000001",
                 "7f1c2a9e-0000-4000-8000-000000000002")
CIPHERS = {KID: AESGCM(KEY)}


def _no_fetch(kid: str, subject_id: str) -> AESGCM:
    raise AssertionError(f"unexpected key fetch for {kid}")


def _seal(value: Any, *, row: RowContext = ROW, column: str = "name", kid: str = KID,
          key: bytes = KEY) -> bytes:
    return seal(key, kid, row.field(column), value)


def _reference(blob: bytes) -> tuple[str, bytes, bytes, bytes]:
    protected, kid, iv, ciphertext = _parse(blob)
    return kid, _ENC_STRUCTURE_HEAD + protected, iv, ciphertext


def _outcome(fn: Any, blob: bytes) -> Any:
    try:
        return fn(blob)
    except (ValueError, IndexError, TypeError):
        return "error"


def test_row_context_field_is_the_field_context() -> None:
    assert ROW.field("name") == FieldContext("person", "name", ROW.row_id, ROW.subject_id)
    assert ROW.field("name").external_aad == FieldContext(
        "person", "name", ROW.row_id, ROW.subject_id).external_aad


def test_row_context_requires_strings() -> None:
    with pytest.raises(TypeError):
        RowContext("person", 1, "s")  # type: ignore[arg-type]


@pytest.mark.parametrize("value", [
    "", "Anna Andersson", "å" * 120, "x" * 300, 0, -129, 2**200, dt.date(1994, 2, 28),
    b"\x00\x80", {"a": [1, 2]}, [],
])
def test_open_agrees_with_open_(value: Any) -> None:
    blob = _seal(value)
    assert ROW.open("name", blob, CIPHERS, _no_fetch) == value
    assert open_(KEY, ROW.field("name"), blob) == value


@pytest.mark.parametrize("kid", ["k", "k" * 19, "k" * 20, KID, "k" * 250, "k" * 251, "k" * 300])
@pytest.mark.parametrize("size", [1, 200, 223, 224, 5000])
def test_every_header_and_ciphertext_length_opens(kid: str, size: int) -> None:
    """One-byte, two-byte and longer CBOR lengths: the fast path and both fallbacks."""
    blob = _seal("x" * size, kid=kid)
    assert _split(blob) == _reference(blob)
    assert ROW.open("name", blob, {kid: AESGCM(KEY)}, _no_fetch) == "x" * size


def test_bytearray_and_memoryview_blobs_open() -> None:
    blob = _seal("Anna")
    assert ROW.open("name", bytearray(blob), CIPHERS, _no_fetch) == "Anna"
    assert ROW.open("name", memoryview(blob), CIPHERS, _no_fetch) == "Anna"


def _mutations(blob: bytes) -> st.SearchStrategy[bytes]:
    flip = st.tuples(st.integers(0, len(blob) - 1), st.integers(1, 255)).map(
        lambda t: blob[: t[0]] + bytes([blob[t[0]] ^ t[1]]) + blob[t[0] + 1 :])
    cut = st.integers(0, len(blob) - 1).map(lambda n: blob[:n])
    extend = st.binary(min_size=1, max_size=4).map(lambda extra: blob + extra)
    insert = st.tuples(st.integers(0, len(blob)), st.binary(min_size=1, max_size=3)).map(
        lambda t: blob[: t[0]] + t[1] + blob[t[0] :])
    return flip | cut | extend | insert


_SHORT = _seal("Anna Andersson")
_LONG = _seal("x" * 400, kid="k" * 260)


@given(_mutations(_SHORT) | _mutations(_LONG) | st.binary(max_size=80))
@example(b"")
@example(_SHORT[:3] + b"\x17" + _SHORT[4:])  # non-canonical one-byte protected length
@example(_SHORT[:-33] + b"\x18" + _SHORT[-24:])  # ciphertext length below the minimum
def test_fast_split_accepts_exactly_what_the_reference_parser_accepts(blob: bytes) -> None:
    assert _outcome(_split, blob) == _outcome(_reference, blob)


@given(_mutations(_SHORT))
def test_any_changed_envelope_fails_with_the_typed_error(blob: bytes) -> None:
    # A fetch that hands out the right key for any kid: only the envelope's checks remain.
    with pytest.raises(DecryptionError) as err:
        ROW.open("name", blob, {}, lambda kid, subject: AESGCM(KEY))
    assert (err.value.table, err.value.column, err.value.row_id) == (
        "person", "name", ROW.row_id)
    assert err.value.__cause__ is None and err.value.__suppress_context__


def test_every_single_bit_flip_fails_after_the_header_was_cached() -> None:
    assert ROW.open("name", _SHORT, CIPHERS, _no_fetch) == "Anna Andersson"  # caches header
    for i in range(len(_SHORT)):
        for bit in (0x01, 0x80):
            tampered = bytearray(_SHORT)
            tampered[i] ^= bit
            with pytest.raises(DecryptionError):
                ROW.open("name", bytes(tampered), {}, lambda kid, subject: AESGCM(KEY))


def _rebuild(protected: bytes, blob: bytes) -> bytes:
    _, unprotected, ciphertext = cbor2.loads(blob).value
    return cbor2.dumps(cbor2.CBORTag(16, [protected, unprotected, ciphertext]))


@pytest.mark.parametrize("protected", [
    cbor2.dumps({1: 1, 4: KID.encode()}),  # other algorithm
    cbor2.dumps({1: 3, 4: KID.encode(), 99: 0}),  # extra header
    cbor2.dumps({4: KID.encode(), 1: 3}),  # same header, other order
    cbor2.dumps({1: 3, 4: b"dk-" + b"0" * 32}),  # other kid, same length
])
def test_tampered_protected_header_fails(protected: bytes) -> None:
    blob = _rebuild(protected, _SHORT)
    with pytest.raises(DecryptionError) as err:
        ROW.open("name", blob, {}, lambda kid, subject: AESGCM(KEY))
    assert (err.value.table, err.value.column, err.value.row_id) == (
        "person", "name", ROW.row_id)


@pytest.mark.parametrize("moved", [
    RowContext("person", "7f1c2a9e-0000-4000-8000-000000000003", ROW.subject_id),
    RowContext("person", ROW.row_id, "7f1c2a9e-0000-4000-8000-000000000003"),
    RowContext("relative", ROW.row_id, ROW.subject_id),
])
def test_envelope_moved_to_another_row_subject_or_table_fails(moved: RowContext) -> None:
    with pytest.raises(DecryptionError) as err:
        moved.open("name", _SHORT, CIPHERS, _no_fetch)
    assert err.value.table == moved.table and err.value.row_id == moved.row_id


def test_envelope_moved_to_another_column_fails() -> None:
    with pytest.raises(DecryptionError) as err:
        ROW.open("alias", _SHORT, CIPHERS, _no_fetch)
    assert err.value.column == "alias"


def test_wrong_key_fails() -> None:
    with pytest.raises(DecryptionError):
        ROW.open("name", _SHORT, {KID: AESGCM(bytes(32))}, _no_fetch)


def test_fetch_is_asked_only_on_a_miss_and_with_kid_and_subject() -> None:
    asked: list[tuple[str, str]] = []

    def fetch(kid: str, subject_id: str) -> AESGCM:
        asked.append((kid, subject_id))
        return AESGCM(KEY)

    assert ROW.open("name", _SHORT, {}, fetch) == "Anna Andersson"
    assert asked == [(KID, ROW.subject_id)]
    assert ROW.open("name", _SHORT, CIPHERS, fetch) == "Anna Andersson"
    assert len(asked) == 1


def test_errors_from_fetch_propagate_unchanged() -> None:
    def fetch(kid: str, subject_id: str) -> AESGCM:
        raise KeyDestroyed("erased")

    with pytest.raises(KeyDestroyed):
        ROW.open("name", _SHORT, {}, fetch)


def test_open_with_and_row_context_agree() -> None:
    blob = _seal(1994, column="birth_year")
    assert open_with(lambda kid: KEY, ROW.field("birth_year"), blob) == 1994
    assert ROW.open("birth_year", blob, CIPHERS, _no_fetch) == 1994


def test_cipher_refuses_a_key_of_the_wrong_length() -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        cipher(os.urandom(16))
    assert isinstance(cipher(KEY), AESGCM)
