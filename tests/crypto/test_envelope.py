"""Tests for the COSE_Encrypt0 field envelope."""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
from typing import Any

import cbor2
import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from hypothesis import example, given
from hypothesis import strategies as st

from avhopp.crypto import DecryptionError, FieldContext, open_, read_kid, seal
from avhopp.crypto.envelope import bucket_size, length_prefixed, pad, unpad

KEY = bytes(range(32))
KID = "dek-0001"
CTX = FieldContext("person", "first_name", "row-1", "subject-1")

json_values: st.SearchStrategy[Any] = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=12,
)


def _forge(plaintext: bytes, *, ctx: FieldContext = CTX, key: bytes = KEY, kid: str = KID) -> bytes:
    """An authentic envelope around arbitrary plaintext, built without envelope.seal."""
    protected = cbor2.dumps({1: 3, 4: kid.encode()})
    iv = os.urandom(12)
    aad = cbor2.dumps(["Encrypt0", protected, ctx.external_aad])
    ct = AESGCM(key).encrypt(iv, plaintext, aad)
    return cbor2.dumps(cbor2.CBORTag(16, [protected, {5: iv}, ct]))


@given(st.text())
@example("")
@example("a\x00b")
@example("\u202eRTL override \u05e9\u05dc\u05d5\u05dd")
@example("👩‍👩‍👧 Ödmjuk åäö")
@example("x" * 5000)
def test_text_round_trips(value: str) -> None:
    assert open_(KEY, CTX, seal(KEY, KID, CTX, value)) == value


@given(st.integers())
@example(0)
@example(-1)
@example(127)
@example(128)
@example(-128)
@example(-129)
@example(2**200)
@example(-(2**200))
def test_int_round_trips_including_big_and_negative(value: int) -> None:
    result = open_(KEY, CTX, seal(KEY, KID, CTX, value))
    assert result == value and type(result) is int


@given(st.dates())
@example(dt.date(1, 1, 1))
@example(dt.date(2000, 2, 29))
def test_date_round_trips(value: dt.date) -> None:
    assert open_(KEY, CTX, seal(KEY, KID, CTX, value)) == value


@given(st.binary(max_size=3000))
def test_bytes_round_trip(value: bytes) -> None:
    assert open_(KEY, CTX, seal(KEY, KID, CTX, value)) == value


@given(st.lists(json_values) | st.dictionaries(st.text(), json_values))
def test_json_round_trips(value: Any) -> None:
    assert open_(KEY, CTX, seal(KEY, KID, CTX, value)) == value


def test_bytearray_and_memoryview_values_come_back_as_bytes() -> None:
    from_bytearray = seal(KEY, KID, CTX, bytearray(b"ab"))  # type: ignore[arg-type]
    from_memoryview = seal(KEY, KID, CTX, memoryview(b"cd"))  # type: ignore[arg-type]
    assert open_(KEY, CTX, from_bytearray) == b"ab"
    assert open_(KEY, CTX, from_memoryview) == b"cd"


def test_json_is_canonical_so_key_order_does_not_change_the_plaintext() -> None:
    iv = bytes(12)
    assert seal(KEY, KID, CTX, {"b": 1, "a": [2]}, iv=iv) == seal(
        KEY, KID, CTX, {"a": [2], "b": 1}, iv=iv
    )


@pytest.mark.parametrize(
    "value",
    [None, True, 1.5, dt.datetime(2024, 1, 1, tzinfo=dt.UTC), ("a",), {1, 2}, {"x": float("nan")}],
)
def test_values_without_a_type_tag_are_refused_when_sealing(value: object) -> None:
    with pytest.raises((TypeError, ValueError)):
        seal(KEY, KID, CTX, value)  # type: ignore[arg-type]


def test_none_is_not_encrypted() -> None:
    with pytest.raises(TypeError, match="NULL"):
        seal(KEY, KID, CTX, None)  # type: ignore[arg-type]


def test_seal_refuses_bad_key_and_iv_lengths() -> None:
    with pytest.raises(ValueError):
        seal(KEY[:16], KID, CTX, "x")
    with pytest.raises(ValueError):
        seal(KEY, KID, CTX, "x", iv=bytes(8))


def test_each_seal_uses_a_fresh_iv() -> None:
    assert seal(KEY, KID, CTX, "same") != seal(KEY, KID, CTX, "same")


def test_envelope_is_tagged_cose_encrypt0_with_a256gcm_and_kid() -> None:
    decoded = cbor2.loads(seal(KEY, KID, CTX, "x"))
    assert isinstance(decoded, cbor2.CBORTag) and decoded.tag == 16
    protected, unprotected, ciphertext = decoded.value
    assert cbor2.loads(protected) == {1: 3, 4: KID.encode()}
    assert set(unprotected) == {5} and len(unprotected[5]) == 12
    assert isinstance(ciphertext, bytes)


def test_read_kid_returns_the_data_key_id() -> None:
    assert read_kid(seal(KEY, "dek-åäö-7", CTX, "x")) == "dek-åäö-7"


def test_read_kid_of_garbage_raises_decryption_error_naming_the_field() -> None:
    with pytest.raises(DecryptionError, match=r"person\.first_name of row row-1"):
        read_kid(b"garbage", CTX)
    with pytest.raises(DecryptionError):
        read_kid(b"")


def test_memoryview_blob_from_a_db_driver_opens() -> None:
    assert open_(KEY, CTX, memoryview(seal(KEY, KID, CTX, "x"))) == "x"


@pytest.mark.parametrize(
    "moved",
    [
        dataclasses.replace(CTX, row_id="row-2"),
        dataclasses.replace(CTX, column="last_name"),
        dataclasses.replace(CTX, subject_id="subject-2"),
        dataclasses.replace(CTX, table="contact"),
        # Length prefixes keep component boundaries: shifting characters between parts must fail.
        FieldContext("person", "first_namerow-1", "", "subject-1"),
    ],
    ids=["other-row", "other-column", "other-person", "other-table", "shifted-boundary"],
)
def test_ciphertext_moved_to_another_place_fails(moved: FieldContext) -> None:
    blob = seal(KEY, KID, CTX, "Anna")
    with pytest.raises(DecryptionError) as info:
        open_(KEY, moved, blob)
    assert (info.value.table, info.value.column, info.value.row_id) == (
        moved.table,
        moved.column,
        moved.row_id,
    )


def test_wrong_key_fails() -> None:
    with pytest.raises(DecryptionError):
        open_(bytes(32), CTX, seal(KEY, KID, CTX, "Anna"))


def test_error_message_reveals_no_data_or_key() -> None:
    blob = seal(KEY, KID, CTX, "Hemlig Person")
    with pytest.raises(DecryptionError) as info:
        open_(bytes(32), CTX, blob)
    text = str(info.value) + repr(info.value)
    assert "Hemlig" not in text and KEY.hex() not in text and blob.hex() not in text
    assert info.value.__cause__ is None and info.value.__suppress_context__


def test_flipping_any_single_bit_of_the_envelope_fails() -> None:
    blob = seal(KEY, KID, CTX, "Anna Andersson")
    for i in range(len(blob)):
        for bit in (0x01, 0x80):
            tampered = bytearray(blob)
            tampered[i] ^= bit
            with pytest.raises(DecryptionError):
                open_(KEY, CTX, bytes(tampered))


def _parts(blob: bytes) -> tuple[bytes, bytes, bytes]:
    protected, unprotected, ct = cbor2.loads(blob).value
    return protected, unprotected[5], ct


def _rebuild(protected: bytes, iv: bytes, ct: bytes, tag: int = 16) -> bytes:
    return cbor2.dumps(cbor2.CBORTag(tag, [protected, {5: iv}, ct]))


def test_replacing_the_kid_in_the_protected_header_fails() -> None:
    _, iv, ct = _parts(seal(KEY, KID, CTX, "x"))
    with pytest.raises(DecryptionError):
        open_(KEY, CTX, _rebuild(cbor2.dumps({1: 3, 4: b"dek-0002"}), iv, ct))


def test_other_algorithm_in_protected_header_fails() -> None:
    _, iv, ct = _parts(seal(KEY, KID, CTX, "x"))
    with pytest.raises(DecryptionError):
        open_(KEY, CTX, _rebuild(cbor2.dumps({1: 1, 4: KID.encode()}), iv, ct))


def test_extra_protected_header_fails() -> None:
    _, iv, ct = _parts(seal(KEY, KID, CTX, "x"))
    with pytest.raises(DecryptionError):
        open_(KEY, CTX, _rebuild(cbor2.dumps({1: 3, 4: KID.encode(), 99: 0}), iv, ct))


def test_other_iv_fails() -> None:
    protected, _, ct = _parts(seal(KEY, KID, CTX, "x"))
    with pytest.raises(DecryptionError):
        open_(KEY, CTX, _rebuild(protected, bytes(12), ct))


@pytest.mark.parametrize("iv_len", [0, 8, 11, 13, 16])
def test_iv_of_wrong_length_fails(iv_len: int) -> None:
    protected, _, ct = _parts(seal(KEY, KID, CTX, "x"))
    with pytest.raises(DecryptionError):
        open_(KEY, CTX, _rebuild(protected, bytes(iv_len), ct))


def test_changed_ciphertext_or_tag_fails() -> None:
    protected, iv, ct = _parts(seal(KEY, KID, CTX, "x"))
    for changed in (
        bytes([ct[0] ^ 1]) + ct[1:],
        ct[:-1] + bytes([ct[-1] ^ 1]),
        ct[:-16],
        ct + b"\x00",
    ):
        with pytest.raises(DecryptionError):
            open_(KEY, CTX, _rebuild(protected, iv, changed))


def test_wrong_cbor_tag_or_untagged_fails() -> None:
    protected, iv, ct = _parts(seal(KEY, KID, CTX, "x"))
    with pytest.raises(DecryptionError):
        open_(KEY, CTX, _rebuild(protected, iv, ct, tag=96))
    with pytest.raises(DecryptionError):
        open_(KEY, CTX, cbor2.dumps([protected, {5: iv}, ct]))


@pytest.mark.parametrize(
    "blob", [b"", b"\xd0", b"\xd0\x83", b"not cbor at all", cbor2.dumps("text"), b"\xff" * 64]
)
def test_malformed_cbor_fails(blob: bytes) -> None:
    with pytest.raises(DecryptionError):
        open_(KEY, CTX, blob)


def test_truncated_or_extended_envelope_fails() -> None:
    blob = seal(KEY, KID, CTX, "x")
    for changed in (blob[:-1], blob + b"\x00", blob[: len(blob) // 2]):
        with pytest.raises(DecryptionError):
            open_(KEY, CTX, changed)


def test_expected_kid_mismatch_fails() -> None:
    blob = seal(KEY, KID, CTX, "x")
    assert open_(KEY, CTX, blob, kid=KID) == "x"
    with pytest.raises(DecryptionError):
        open_(KEY, CTX, blob, kid="dek-other")


@pytest.mark.parametrize(
    "plaintext",
    [
        pad(b"\x06abc"),  # unknown type tag
        pad(b"\x00"),  # 0x00 (None) is never encrypted
        pad(b""),  # no type tag at all
        b"\x01abc" + bytes(12),  # no 0x80 marker
        b"\x01abc\x81" + bytes(11),  # wrong marker
        b"\x01abc\x80" + bytes(27),  # padded past the bucket it belongs to
        b"\x01abc\x80" + bytes(10),  # not a bucket length
        pad(b"\x02\x00\x01"),  # non-minimal int
        pad(b"\x02"),  # empty int
        pad(b"\x03" + b"2024-1-01"),  # non-canonical date
        pad(b"\x03" + b"20240101"),  # compact ISO form is not ours
        pad(b"\x03" + b"2024-02-30"),  # impossible date
        pad(b"\x01\xff\xfe"),  # invalid UTF-8
        pad(b"\x05" + b'"scalar"'),  # JSON must be object or array
        pad(b"\x05" + b"{bad json"),
    ],
)
def test_authentic_but_malformed_plaintext_fails(plaintext: bytes) -> None:
    with pytest.raises(DecryptionError):
        open_(KEY, CTX, _forge(plaintext))


def test_forged_envelope_with_valid_plaintext_opens() -> None:
    # Guards the test above: _forge itself produces envelopes open_ accepts.
    assert open_(KEY, CTX, _forge(pad(b"\x01abc"))) == "abc"


def test_padding_hides_length_within_a_bucket() -> None:
    sizes = {len(seal(KEY, KID, CTX, "x" * n)) for n in range(0, 15)}
    assert len(sizes) == 1
    assert len(seal(KEY, KID, CTX, "x" * 15)) > sizes.pop()


@pytest.mark.parametrize(
    ("payload_len", "bucket"),
    [
        (0, 16),
        (15, 16),
        (16, 32),
        (31, 32),
        (32, 64),
        (511, 512),
        (1023, 1024),
        (1024, 2048),
        (2047, 2048),
        (2048, 3072),
    ],
)
def test_bucket_sizes(payload_len: int, bucket: int) -> None:
    assert bucket_size(payload_len) == bucket
    assert len(pad(bytes(payload_len))) == bucket


@given(st.binary(max_size=2100))
def test_pad_then_unpad_is_identity(payload: bytes) -> None:
    assert unpad(pad(payload)) == payload


def test_length_prefixed_encoding() -> None:
    assert length_prefixed("ab", b"\x00") == b"\x00\x00\x00\x02ab\x00\x00\x00\x01\x00"
    assert length_prefixed("ab", "c") != length_prefixed("a", "bc")
    assert length_prefixed("å") == b"\x00\x00\x00\x02\xc3\xa5"


def test_field_context_requires_strings() -> None:
    with pytest.raises(TypeError):
        FieldContext("person", "first_name", 1, "s")  # type: ignore[arg-type]


def test_field_context_repr_and_equality_ignore_derived_aad() -> None:
    assert FieldContext("t", "c", "r", "s") == FieldContext("t", "c", "r", "s")
    assert "external_aad" not in repr(CTX)


def test_for_row_builds_the_same_context_as_the_constructor() -> None:
    from avhopp.crypto.envelope import FieldContext as Ctx

    fast = Ctx.for_row("person", "name", "row-1", "subject-ö")
    slow = Ctx("person", "name", "row-1", "subject-ö")
    assert fast == slow and fast.external_aad == slow.external_aad
