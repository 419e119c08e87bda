#!/usr/bin/env python3
"""Decrypt one person's fields from an avhopp SQLite database with only the key file.

Independent of the avhopp package: it needs the Python standard library, `cryptography` and
`cbor2`, and follows docs/crypto-format.md. Use it to prove that the data can be read without the
application (for an audit, a register extract, or a migration away from avhopp).

    python tools/decrypt_record.py --db instance/avhopp.sqlite --keys instance/keys.json PERSON_ID

Prints one line per encrypted field: `column: value`, or `column: <erased>` when the person's
data key has been destroyed. Exit code 1 if a field fails to decrypt.
"""

from __future__ import annotations

import argparse
import base64
import datetime as dt
import json
import sqlite3
import struct
import sys
import uuid

import cbor2
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

TYPE_TAGS = {1: "text", 2: "int", 3: "date", 4: "bytes", 5: "json"}


def lp(*parts: str) -> bytes:
    """Length-prefixed encoding: 4-byte big-endian length, then the UTF-8 bytes, per part."""
    out = b""
    for part in parts:
        raw = part.encode("utf-8")
        out += struct.pack(">I", len(raw)) + raw
    return out


def unwrap_dek(keys: dict, kek_id: str, wrapped: bytes, key_id: str, subject_id: str) -> bytes:
    kek = base64.b64decode(keys["keks"][kek_id])
    aad = lp("avhopp/dek/v1", key_id, subject_id)
    return AESGCM(kek).decrypt(wrapped[:12], wrapped[12:], aad)


def decode(body: bytes) -> object:
    tag, value = body[0], body[1:]
    if tag == 1:
        return value.decode("utf-8")
    if tag == 2:
        return int.from_bytes(value, "big", signed=True)
    if tag == 3:
        return dt.date.fromisoformat(value.decode("ascii"))
    if tag == 4:
        return value
    if tag == 5:
        return json.loads(value.decode("utf-8"))
    raise ValueError(f"unknown type tag {tag}")


def open_field(dek: bytes, envelope: bytes, *, table: str, column: str, row_id: str,
               subject_id: str) -> object:
    message = cbor2.loads(envelope)
    if getattr(message, "tag", None) != 16:
        raise ValueError("not a COSE_Encrypt0 message")
    protected, unprotected, ciphertext = message.value
    if cbor2.loads(protected).get(1) != 3:
        raise ValueError("algorithm is not A256GCM")
    external = lp("avhopp/field/v1", table, column, row_id, subject_id)
    enc_structure = cbor2.dumps(["Encrypt0", protected, external])
    padded = AESGCM(dek).decrypt(unprotected[5], ciphertext, enc_structure)
    stripped = padded.rstrip(b"\x00")
    if not stripped.endswith(b"\x80"):
        raise ValueError("bad padding")
    return decode(stripped[:-1])


def kid_of(envelope: bytes) -> str:
    protected = cbor2.loads(envelope).value[0]
    return cbor2.loads(protected)[4].decode("utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", required=True, help="path to the SQLite database")
    parser.add_argument("--keys", required=True, help="path to the key file (keys.json)")
    parser.add_argument("--table", default="person")
    parser.add_argument("row_id", help="the row's UUID")
    args = parser.parse_args(argv)

    with open(args.keys, encoding="utf-8") as fh:
        keys = json.load(fh)
    row_id = str(uuid.UUID(args.row_id))
    conn = sqlite3.connect(f"file:{args.db}?mode=ro", uri=True)
    conn.row_factory = sqlite3.Row
    # SQLAlchemy stores UUIDs on SQLite as 32 hex digits.
    if not args.table.isidentifier():
        print(f"not a table name: {args.table!r}", file=sys.stderr)
        return 2
    # The table name is the operator's own argument, checked to be a plain identifier above.
    query = f"SELECT * FROM {args.table} WHERE id = ?"  # noqa: S608  # nosec B608
    row = conn.execute(query, (uuid.UUID(row_id).hex,)).fetchone()
    if row is None:
        print(f"no row {row_id} in {args.table}", file=sys.stderr)
        return 1
    columns = row.keys()  # sqlite3.Row: `in row` would search the values, not the names
    subject_id = row_id if "person_id" not in columns else str(uuid.UUID(row["person_id"]))
    failures = 0
    for column in columns:
        if not column.endswith("_enc") or row[column] is None:
            continue
        name = column[: -len("_enc")]
        envelope = bytes(row[column])
        kid = kid_of(envelope)
        key_row = conn.execute(
            "SELECT kek_id, wrapped FROM data_key WHERE id = ?", (kid,)
        ).fetchone()
        if key_row is None or key_row["wrapped"] is None:
            print(f"{name}: <erased>")
            continue
        try:
            dek = unwrap_dek(keys, key_row["kek_id"], bytes(key_row["wrapped"]), kid, subject_id)
            value = open_field(dek, envelope, table=args.table, column=name, row_id=row_id,
                               subject_id=subject_id)
        except Exception as exc:  # report and continue with the other fields
            print(f"{name}: <cannot decrypt: {type(exc).__name__}>")
            failures += 1
            continue
        print(f"{name}: {value}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
