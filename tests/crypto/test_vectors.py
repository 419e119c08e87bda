"""Known-answer vectors for the crypto format, checked here and by independent implementations.

Regenerate (only when the format deliberately changes) with:
    .venv/bin/python tests/crypto/test_vectors.py --write
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import sys
from pathlib import Path
from typing import Any

import cbor2
import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

if __name__ == "__main__":  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from avhopp.crypto import (
    FieldContext,
    LocalKeyRing,
    blind_index,
    derive_index_key,
    open_,
    seal,
    unwrap_data_key,
)
from avhopp.crypto.datakeys import dek_aad
from avhopp.crypto.envelope import FieldValue, encode_value, pad

VECTORS_PATH = Path(__file__).with_name("vectors.json")

_KEY = bytes.fromhex("000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f")
_KID = "dek-7d0c4b1e"
_CTX = FieldContext(
    table="person",
    column="first_name",
    row_id="0b6a9c2e-6a2b-4d8f-9f57-0f8f8b8f3c11",
    subject_id="4f3c2b1a-5d6e-4f70-8192-a3b4c5d6e7f8",
)
_VALUES: list[tuple[str, Any]] = [
    ("text", "Anna Andersson"),
    ("text", ""),
    ("text", "Örjan \u202eRTL\u202c 👩‍👧 a\x00b"),
    ("text", "abcdefghijklmno"),  # 15 chars + tag = 16 bytes: first value that needs the 32 bucket
    ("text", "lång " * 220),  # > 1024 bytes: multiple-of-1024 buckets
    ("int", 0),
    ("int", -1),
    ("int", 128),
    ("int", -129),
    ("int", 2**70 + 5),
    ("date", dt.date(1984, 2, 29)),
    ("bytes", bytes(range(40))),
    ("json", {"b": [1, 2, {"c": None}], "a": "ö", "n": -1.5, "t": True}),
    ("json", []),
]


def _typed(kind: str, value: Any) -> Any:
    """A value as it appears in vectors.json (JSON-safe, type explicit)."""
    if kind == "int":
        return str(value)  # decimal string: not every JSON reader keeps big integers exact
    if kind == "date":
        return value.isoformat()
    if kind == "bytes":
        return value.hex()
    return value


def _untyped(kind: str, value: Any) -> FieldValue:
    if kind == "int":
        return int(value)
    if kind == "date":
        return dt.date.fromisoformat(value)
    if kind == "bytes":
        return bytes.fromhex(value)
    return value  # type: ignore[no-any-return]


def generate() -> dict[str, Any]:
    field_vectors = []
    for i, (kind, value) in enumerate(_VALUES):
        iv = bytes([i]) * 12
        field_vectors.append(
            {
                "type": kind,
                "value": _typed(kind, value),
                "iv": iv.hex(),
                "plaintext_padded": pad(encode_value(value)).hex(),
                "envelope": seal(_KEY, _KID, _CTX, value, iv=iv).hex(),
            }
        )

    kek = bytes(range(100, 132))
    dek_nonce = bytes(range(12))
    aad = dek_aad(_KID, _CTX.subject_id)
    dek_blob = dek_nonce + AESGCM(kek).encrypt(dek_nonce, _KEY, aad)

    index_root = bytes(range(200, 232))
    index_vectors = []
    for table, column, version, normalised, bits in [
        ("person", "personnummer", 1, "198112189876", 16),
        ("person", "phone", 1, "+46701234567", 16),
        ("person", "email", 2, "anna@xn--exmple-cua.se", 24),
    ]:
        index_key = derive_index_key(index_root, table, column, version)
        index_vectors.append(
            {
                "table": table,
                "column": column,
                "version": version,
                "normalised": normalised,
                "bits": bits,
                "index_key": index_key.hex(),
                "index": blind_index(index_key, normalised, bits=bits).hex(),
            }
        )

    return {
        "description": "avhopp crypto known-answer vectors; see docs/crypto-format.md",
        "field": {
            "key": _KEY.hex(),
            "kid": _KID,
            "context": {
                "table": _CTX.table,
                "column": _CTX.column,
                "row_id": _CTX.row_id,
                "subject_id": _CTX.subject_id,
            },
            "external_aad": _CTX.external_aad.hex(),
            "vectors": field_vectors,
        },
        "dek_wrap": {
            "kek_id": "kek-2026-11-22-ab12",
            "kek": kek.hex(),
            "key_id": _KID,
            "subject_id": _CTX.subject_id,
            "aad": aad.hex(),
            "dek": _KEY.hex(),
            "blob": dek_blob.hex(),
        },
        "blind_index": {"index_root": index_root.hex(), "vectors": index_vectors},
    }


def _load() -> dict[str, Any]:
    return json.loads(VECTORS_PATH.read_text(encoding="utf-8"))  # type: ignore[no-any-return]


VECTORS = _load() if VECTORS_PATH.exists() else {}
FIELD = VECTORS.get("field", {})
CTX = FieldContext(**FIELD["context"]) if FIELD else _CTX
KEY = bytes.fromhex(FIELD["key"]) if FIELD else _KEY


def test_vectors_file_matches_the_generator() -> None:
    # The generator is deterministic; a difference means the format changed.
    assert json.loads(json.dumps(generate())) == VECTORS


def test_external_aad_matches_vector() -> None:
    assert CTX.external_aad.hex() == FIELD["external_aad"]


@pytest.mark.parametrize("vector", FIELD.get("vectors", []), ids=lambda v: v["type"])
def test_seal_reproduces_vector_and_open_reads_it(vector: dict[str, Any]) -> None:
    value = _untyped(vector["type"], vector["value"])
    envelope = bytes.fromhex(vector["envelope"])
    assert seal(KEY, FIELD["kid"], CTX, value, iv=bytes.fromhex(vector["iv"])) == envelope
    assert open_(KEY, CTX, envelope, kid=FIELD["kid"]) == value


@pytest.mark.parametrize("vector", FIELD.get("vectors", []), ids=lambda v: v["type"])
def test_vector_decrypts_with_only_cbor2_and_aesgcm(vector: dict[str, Any]) -> None:
    tagged = cbor2.loads(bytes.fromhex(vector["envelope"]))
    assert tagged.tag == 16
    protected, unprotected, ciphertext = tagged.value
    assert cbor2.loads(protected) == {1: 3, 4: FIELD["kid"].encode()}
    enc_structure = cbor2.dumps(["Encrypt0", protected, bytes.fromhex(FIELD["external_aad"])])
    plaintext = AESGCM(KEY).decrypt(unprotected[5], ciphertext, enc_structure)
    assert plaintext.hex() == vector["plaintext_padded"]


@pytest.mark.parametrize("vector", FIELD.get("vectors", []), ids=lambda v: v["type"])
def test_vector_decrypts_with_pycose(vector: dict[str, Any]) -> None:
    from pycose.keys.symmetric import SymmetricKey
    from pycose.messages.cosemessage import CoseMessage
    from pycose.messages.enc0message import Enc0Message

    message = CoseMessage.decode(bytes.fromhex(vector["envelope"]))
    assert isinstance(message, Enc0Message)
    message.key = SymmetricKey(k=KEY)
    message.external_aad = bytes.fromhex(FIELD["external_aad"])  # type: ignore[misc]
    assert message.decrypt().hex() == vector["plaintext_padded"]


def test_envelope_made_by_pycose_opens_with_our_code() -> None:
    from pycose.algorithms import A256GCM
    from pycose.headers import IV, KID, Algorithm
    from pycose.keys.symmetric import SymmetricKey
    from pycose.messages.enc0message import Enc0Message

    message = Enc0Message(
        phdr={Algorithm: A256GCM, KID: FIELD["kid"].encode()},
        uhdr={IV: bytes(range(12))},
        payload=pad(encode_value("från pycose")),
        external_aad=CTX.external_aad,
    )
    message.key = SymmetricKey(k=KEY)
    assert open_(KEY, CTX, message.encode()) == "från pycose"


def test_dek_wrap_vector_unwraps() -> None:
    v = VECTORS["dek_wrap"]
    assert dek_aad(v["key_id"], v["subject_id"]).hex() == v["aad"]
    data = {
        "format": "avhopp-keys/v1",
        "active_kek": v["kek_id"],
        "keks": {v["kek_id"]: base64.b64encode(bytes.fromhex(v["kek"])).decode()},
        "index_root": "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
        "audit_signing_key": "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
    }
    dek = unwrap_data_key(
        LocalKeyRing(data),
        kek_id=v["kek_id"],
        blob=bytes.fromhex(v["blob"]),
        key_id=v["key_id"],
        subject_id=v["subject_id"],
    )
    assert dek.hex() == v["dek"]


@pytest.mark.parametrize(
    "vector", VECTORS.get("blind_index", {}).get("vectors", []), ids=lambda v: v["column"]
)
def test_blind_index_vector(vector: dict[str, Any]) -> None:
    root = bytes.fromhex(VECTORS["blind_index"]["index_root"])
    key = derive_index_key(root, vector["table"], vector["column"], vector["version"])
    assert key.hex() == vector["index_key"]
    assert blind_index(key, vector["normalised"], bits=vector["bits"]).hex() == vector["index"]


if __name__ == "__main__":
    if sys.argv[1:] != ["--write"]:
        sys.exit("usage: test_vectors.py --write")
    VECTORS_PATH.write_text(json.dumps(generate(), indent=2) + "\n", encoding="utf-8")
    print(f"wrote {VECTORS_PATH}")
