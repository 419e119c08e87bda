"""The encrypted backup file format (docs/backup-format.md): X25519, chunked AES-GCM, signed."""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
import secrets
import struct
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Final

from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

MAGIC: Final = b"AVHOPP-BACKUP/1\n"
FORMAT: Final = "avhopp-backup/1"
KEY_FORMAT: Final = "avhopp-backup-key/1"
CHUNK_SIZE: Final = 1 << 20
_MAX_HEADER: Final = 1 << 16
_MAX_RECORD: Final = CHUNK_SIZE + 16
_HKDF_INFO: Final = b"avhopp-backup/1 content key"
_SIG_LEN: Final = 64


class BackupError(Exception):
    """A backup file is damaged, tampered with, truncated, or for another key."""


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


def _unb64(value: object, what: str) -> bytes:
    if not isinstance(value, str):
        raise BackupError(f"{what} is missing")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise BackupError(f"{what} is not valid base64") from None


def _raw_public(key: X25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


# --- backup keys ------------------------------------------------------------------------------


@dataclass(frozen=True)
class BackupKey:
    """The private half, kept offline; only restore needs it."""

    private: X25519PrivateKey

    @property
    def public(self) -> X25519PublicKey:
        return self.private.public_key()

    def public_text(self) -> str:
        return _b64(_raw_public(self.public))


def generate_backup_key() -> BackupKey:
    return BackupKey(X25519PrivateKey.generate())


def write_backup_key(path: Path, key: BackupKey) -> None:
    """Create the private key file with mode 0600; never overwrite."""
    raw = key.private.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw,
                                    serialization.NoEncryption())
    body = json.dumps({"format": KEY_FORMAT, "private": _b64(raw),
                       "public": key.public_text()}, indent=2).encode() + b"\n"
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise BackupError(f"refusing to overwrite {path}") from None
    with os.fdopen(fd, "wb") as fh:
        os.fchmod(fh.fileno(), 0o600)
        fh.write(body)


def read_backup_key(path: Path) -> BackupKey:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise BackupError(f"cannot read backup key {path}: {exc}") from None
    if not isinstance(data, dict) or data.get("format") != KEY_FORMAT:
        raise BackupError(f"{path} is not an avhopp backup key")
    raw = _unb64(data.get("private"), "private key")
    if len(raw) != 32:
        raise BackupError("private key must be 32 bytes")
    return BackupKey(X25519PrivateKey.from_private_bytes(raw))


def parse_public_key(text: str) -> X25519PublicKey:
    """The public key as printed by `avhopp backup keygen` (base64 of 32 bytes)."""
    raw = _unb64(text.strip(), "public key")
    if len(raw) != 32:
        raise BackupError("public key must be 32 bytes")
    return X25519PublicKey.from_public_bytes(raw)


# --- writing ------------------------------------------------------------------------------------


def _content_key(shared: bytes, ephemeral: bytes, recipient: bytes) -> AESGCM:
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=ephemeral + recipient,
               info=_HKDF_INFO).derive(shared)
    return AESGCM(key)


def _nonce(index: int) -> bytes:
    # A fresh content key per file (fresh ephemeral key), so a counter nonce never repeats.
    return b"\x00\x00\x00\x00" + struct.pack(">Q", index)


def _aad(header_hash: bytes, index: int, final: bool) -> bytes:
    return header_hash + struct.pack(">QB", index, 1 if final else 0)


class BackupWriter:
    """Writes one backup: header, then encrypted chunks as plaintext is fed, then a signature."""

    def __init__(self, out: IO[bytes], *, recipient: X25519PublicKey, signer: Ed25519PrivateKey,
                 header: Mapping[str, Any]) -> None:
        ephemeral = X25519PrivateKey.generate()
        eph_raw = _raw_public(ephemeral.public_key())
        rec_raw = _raw_public(recipient)
        self._aead = _content_key(ephemeral.exchange(recipient), eph_raw, rec_raw)
        body = json.dumps({**header, "format": FORMAT, "ephemeral": _b64(eph_raw),
                           "recipient": _b64(rec_raw), "chunk_size": CHUNK_SIZE,
                           "salt": _b64(secrets.token_bytes(16))},
                          sort_keys=True).encode()
        if len(body) > _MAX_HEADER:
            raise BackupError("header too large")
        prefix = MAGIC + struct.pack(">I", len(body)) + body
        self._header_hash = hashlib.sha256(prefix).digest()
        self._digest = hashlib.sha256(prefix)
        self._out = out
        self._signer = signer
        self._buffer = bytearray()
        self._index = 0
        self.bytes_written = len(prefix)
        out.write(prefix)

    def _emit(self, chunk: bytes, *, final: bool) -> None:
        sealed = self._aead.encrypt(_nonce(self._index), chunk,
                                    _aad(self._header_hash, self._index, final))
        record = struct.pack(">I", len(sealed)) + sealed
        self._digest.update(record)
        self._out.write(record)
        self.bytes_written += len(record)
        self._index += 1

    def write(self, data: bytes) -> None:
        self._buffer += data
        while len(self._buffer) > CHUNK_SIZE:
            self._emit(bytes(self._buffer[:CHUNK_SIZE]), final=False)
            del self._buffer[:CHUNK_SIZE]

    def close(self) -> None:
        self._emit(bytes(self._buffer), final=True)
        self._buffer.clear()
        signature = self._signer.sign(self._digest.digest())
        self._out.write(signature)
        self.bytes_written += len(signature)


# --- reading ------------------------------------------------------------------------------------


def _read_exact(src: IO[bytes], n: int, what: str) -> bytes:
    data = src.read(n)
    if len(data) != n:
        raise BackupError(f"the backup is truncated ({what})")
    return data


def read_header(src: IO[bytes]) -> tuple[dict[str, Any], bytes]:
    """The plaintext header (not yet authenticated: see open_backup) and its raw prefix."""
    magic = src.read(len(MAGIC))
    if magic != MAGIC:
        raise BackupError("not an avhopp backup file")
    (length,) = struct.unpack(">I", _read_exact(src, 4, "header length"))
    if length > _MAX_HEADER:
        raise BackupError("header too large")
    body = _read_exact(src, length, "header")
    try:
        header = json.loads(body)
    except ValueError:
        raise BackupError("the header is not valid JSON") from None
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise BackupError("unknown backup format")
    return header, magic + struct.pack(">I", length) + body


def open_chunks(path: Path, key: BackupKey, verifier: Ed25519PublicKey,
                      emit: Callable[[bytes], None] | None) -> dict[str, Any]:
    size = path.stat().st_size
    with path.open("rb") as src:
        header, prefix = read_header(src)
        if _unb64(header.get("recipient"), "recipient") != _raw_public(key.public):
            raise BackupError("this backup was written for another backup key")
        eph_raw = _unb64(header.get("ephemeral"), "ephemeral key")
        if len(eph_raw) != 32:
            raise BackupError("ephemeral key must be 32 bytes")
        aead = _content_key(key.private.exchange(X25519PublicKey.from_public_bytes(eph_raw)),
                            eph_raw, _raw_public(key.public))
        header_hash = hashlib.sha256(prefix).digest()
        digest = hashlib.sha256(prefix)
        index = 0
        final_seen = False
        while not final_seen:
            if src.tell() + 4 > size - _SIG_LEN:
                raise BackupError("the backup is truncated (no final chunk)")
            (length,) = struct.unpack(">I", _read_exact(src, 4, "chunk length"))
            if length > _MAX_RECORD or src.tell() + length > size - _SIG_LEN:
                raise BackupError("the backup is truncated or a chunk length was altered")
            sealed = _read_exact(src, length, "chunk")
            digest.update(struct.pack(">I", length) + sealed)
            final_seen = src.tell() == size - _SIG_LEN
            try:
                chunk = aead.decrypt(_nonce(index), sealed, _aad(header_hash, index, final_seen))
            except InvalidTag:
                raise BackupError(f"chunk {index} does not authenticate: the backup was altered "
                                  "or belongs to another key") from None
            if emit is not None:
                emit(chunk)
            index += 1
        signature = _read_exact(src, _SIG_LEN, "signature")
        try:
            verifier.verify(signature, digest.digest())
        except InvalidSignature:
            raise BackupError("the backup's signature does not verify: it was not made by this "
                              "installation or it was altered") from None
    return header


def authenticate(path: Path, key: BackupKey, verifier: Ed25519PublicKey) -> dict[str, Any]:
    """Check every chunk and the signature without keeping any plaintext; return the header."""
    return open_chunks(path, key, verifier, None)


def decrypt_to(path: Path, key: BackupKey, verifier: Ed25519PublicKey,
               emit: Callable[[bytes], None]) -> dict[str, Any]:
    """Authenticate the whole file first, then feed its plaintext to `emit`: nothing is applied
    from a file that turns out to be altered further on."""
    authenticate(path, key, verifier)
    return open_chunks(path, key, verifier, emit)


def public_signing_key(signer: Ed25519PrivateKey) -> Ed25519PublicKey:
    return signer.public_key()
