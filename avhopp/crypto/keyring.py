"""Key-encryption keys: the KeyProvider protocol and the local key-file ring."""

from __future__ import annotations

import base64
import binascii
import copy
import datetime as dt
import json
import os
import secrets
import stat
from collections.abc import Mapping
from typing import Any, Final, Protocol

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from avhopp.crypto.errors import KeyDestroyed, KeyFileError, KeyNotFound, KeyUnwrapError

KEY_FILE_FORMAT: Final = "avhopp-keys/v1"
WRAP_NONCE_LEN: Final = 12
_SECRET_LEN: Final = 32
_MAX_KEY_FILE: Final = 1 << 20


class KeyProvider(Protocol):
    """Wraps and unwraps data keys with a key-encryption key kept outside the database."""

    @property
    def active_kek_id(self) -> str:
        """Id of the KEK that wrap() uses."""
        ...

    def wrap(self, plaintext_key: bytes, aad: bytes) -> tuple[str, bytes]:
        """Encrypt plaintext_key under the active KEK; return (kek_id, blob)."""
        ...

    def unwrap(self, kek_id: str, blob: bytes, aad: bytes) -> bytes:
        """Decrypt a blob made by wrap() with the same aad."""
        ...


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


def _secret(value: object, what: str) -> bytes:
    """Decode a base64 32-byte secret; errors name the entry, never its value."""
    if not isinstance(value, str):
        raise KeyFileError(f"{what} must be a base64 string")
    try:
        raw = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise KeyFileError(f"{what} is not valid base64") from None
    if len(raw) != _SECRET_LEN:
        raise KeyFileError(f"{what} must decode to 32 bytes")
    return raw


def _new_kek_id(existing: Mapping[str, Any]) -> str:
    while True:
        # Date for humans reading the file; random suffix so two rotations a day never collide.
        kek_id = f"kek-{dt.datetime.now(dt.UTC).date().isoformat()}-{secrets.token_hex(2)}"
        if kek_id not in existing:
            return kek_id


def validate_key_file(data: object) -> dict[str, Any]:
    """Check a key-file dict; return a deep copy or raise KeyFileError."""
    if not isinstance(data, dict):
        raise KeyFileError("key file must be a JSON object")
    if data.get("format") != KEY_FILE_FORMAT:
        raise KeyFileError(f"key file format must be {KEY_FILE_FORMAT!r}")
    keks = data.get("keks")
    if not isinstance(keks, dict) or not keks:
        raise KeyFileError("keks must be a non-empty object")
    for kek_id, value in keks.items():
        if (
            not isinstance(kek_id, str)
            or not kek_id
            or not kek_id.isascii()
            or not kek_id.isprintable()
        ):
            raise KeyFileError("KEK ids must be non-empty printable ASCII")
        _secret(value, f"KEK {kek_id!r}")
    if data.get("active_kek") not in keks:
        raise KeyFileError("active_kek must name an entry of keks")
    retired = data.get("retired_keks", [])
    if not isinstance(retired, list) or not all(isinstance(r, str) for r in retired):
        raise KeyFileError("retired_keks must be a list of KEK ids")
    if set(retired) & set(keks):
        raise KeyFileError("a retired KEK must not still have key material")
    _secret(data.get("index_root"), "index_root")
    _secret(data.get("audit_signing_key"), "audit_signing_key")
    return copy.deepcopy(data)


def generate_key_file() -> dict[str, Any]:
    """A fresh key file: one KEK, an index root and an audit signing seed, all independent."""
    kek_id = _new_kek_id({})
    return {
        "format": KEY_FILE_FORMAT,
        "active_kek": kek_id,
        "keks": {kek_id: _b64(secrets.token_bytes(_SECRET_LEN))},
        "retired_keks": [],
        "index_root": _b64(secrets.token_bytes(_SECRET_LEN)),
        "audit_signing_key": _b64(secrets.token_bytes(_SECRET_LEN)),
    }


def add_kek(data: Mapping[str, Any]) -> dict[str, Any]:
    """Copy of data with a new active KEK; older KEKs stay for unwrapping until re-wrapped."""
    new = validate_key_file(dict(data))
    kek_id = _new_kek_id({**new["keks"], **dict.fromkeys(new.get("retired_keks", []))})
    new["keks"][kek_id] = _b64(secrets.token_bytes(_SECRET_LEN))
    new["active_kek"] = kek_id
    return new


def retire_kek(data: Mapping[str, Any], kek_id: str) -> dict[str, Any]:
    """Copy of data with kek_id's material removed; blobs it wrapped become unreadable for good."""
    new = validate_key_file(dict(data))
    if kek_id == new["active_kek"]:
        raise KeyFileError("cannot retire the active KEK; add a new one first")
    if kek_id not in new["keks"]:
        raise KeyNotFound(f"KEK {kek_id!r} is not in the key file")
    del new["keks"][kek_id]
    new["retired_keks"] = [*new.get("retired_keks", []), kek_id]
    return new


def load_key_file(path: str | os.PathLike[str], *, require_private_mode: bool) -> dict[str, Any]:
    """Read and validate a key file; with require_private_mode refuse group/other access."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        raise KeyFileError(f"cannot open key file {os.fspath(path)!r}: {exc.strerror}") from None
    with os.fdopen(fd, "rb") as fh:
        # fstat on the open descriptor: the checked file is the file we read.
        st = os.fstat(fh.fileno())
        if not stat.S_ISREG(st.st_mode):
            raise KeyFileError("key file is not a regular file")
        if require_private_mode and st.st_mode & 0o077:
            raise KeyFileError(
                f"key file {os.fspath(path)!r} has mode {stat.S_IMODE(st.st_mode):04o}; "
                "it must not be readable by group or others (chmod 0400)"
            )
        raw = fh.read(_MAX_KEY_FILE + 1)
    if len(raw) > _MAX_KEY_FILE:
        raise KeyFileError("key file is too large")
    try:
        data = json.loads(raw.decode("utf-8"))
    except ValueError:
        raise KeyFileError("key file is not valid UTF-8 JSON") from None
    return validate_key_file(data)


def write_key_file(path: str | os.PathLike[str], data: Mapping[str, Any]) -> None:
    """Create a new key file with mode 0600; never overwrite an existing file."""
    body = (
        json.dumps(validate_key_file(dict(data)), indent=2, sort_keys=True).encode("utf-8") + b"\n"
    )
    try:
        fd = os.open(
            path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), 0o600
        )
    except FileExistsError:
        raise KeyFileError(f"refusing to overwrite existing key file {os.fspath(path)!r}") from None
    except OSError as exc:
        raise KeyFileError(f"cannot create key file {os.fspath(path)!r}: {exc.strerror}") from None
    with os.fdopen(fd, "wb") as fh:
        os.fchmod(fh.fileno(), 0o600)  # the mode argument is subject to umask; make it exact
        fh.write(body)
        fh.flush()
        os.fsync(fh.fileno())


class LocalKeyRing:
    """KeyProvider over the KEKs of a key-file dict, plus the file's other secrets."""

    def __init__(self, data: Mapping[str, Any]) -> None:
        valid = validate_key_file(dict(data))
        self._active: str = valid["active_kek"]
        self._keks = {kid: AESGCM(_secret(v, "KEK")) for kid, v in valid["keks"].items()}
        self._retired = frozenset(valid.get("retired_keks", []))
        self._index_root = _secret(valid["index_root"], "index_root")
        self._audit_seed = _secret(valid["audit_signing_key"], "audit_signing_key")

    def __repr__(self) -> str:
        return f"<LocalKeyRing active={self._active!r} keks={sorted(self._keks)!r}>"

    @property
    def active_kek_id(self) -> str:
        return self._active

    @property
    def kek_ids(self) -> frozenset[str]:
        """Ids of the KEKs whose material is present."""
        return frozenset(self._keks)

    @property
    def index_root(self) -> bytes:
        """Root secret for blind-index keys (see blindindex.derive_index_key)."""
        return self._index_root

    def audit_signing_key(self) -> Ed25519PrivateKey:
        """Ed25519 key that signs audit checkpoints."""
        return Ed25519PrivateKey.from_private_bytes(self._audit_seed)

    def wrap(self, plaintext_key: bytes, aad: bytes) -> tuple[str, bytes]:
        nonce = secrets.token_bytes(WRAP_NONCE_LEN)
        return self._active, nonce + self._keks[self._active].encrypt(nonce, plaintext_key, aad)

    def unwrap(self, kek_id: str, blob: bytes, aad: bytes) -> bytes:
        aead = self._keks.get(kek_id)
        if aead is None:
            if kek_id in self._retired:
                raise KeyDestroyed(f"KEK {kek_id!r} has been retired")
            raise KeyNotFound(f"KEK {kek_id!r} is not in the key ring")
        blob = bytes(blob)
        try:
            return aead.decrypt(blob[:WRAP_NONCE_LEN], blob[WRAP_NONCE_LEN:], aad)
        except (InvalidTag, ValueError):
            raise KeyUnwrapError(
                f"wrapped key does not authenticate under KEK {kek_id!r}"
            ) from None


def keyring_from_env_value(b64json: str) -> LocalKeyRing:
    """Key ring from base64-encoded key-file JSON (development and tests only)."""
    try:
        data = json.loads(base64.b64decode(b64json, validate=True).decode("utf-8"))
    except (binascii.Error, ValueError):
        raise KeyFileError("key value is not base64-encoded key-file JSON") from None
    return LocalKeyRing(data)


def encode_env_value(data: Mapping[str, Any]) -> str:
    """Inverse of keyring_from_env_value, for setting up development and test environments."""
    return _b64(json.dumps(validate_key_file(dict(data)), sort_keys=True).encode("utf-8"))
