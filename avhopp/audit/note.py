"""C2SP signed notes and tlog checkpoints (Ed25519): keys, signing, opening and parsing."""

from __future__ import annotations

import base64
import hashlib
import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

__all__ = [
    "ALG_ED25519",
    "Checkpoint",
    "NoteError",
    "Signer",
    "Verifier",
    "format_checkpoint",
    "key_hash",
    "open_note",
    "parse_checkpoint",
    "sign_note",
]

# Algorithm byte of c2sp.org/signed-note; the only one this module speaks.
ALG_ED25519 = 0x01

_SIG_PREFIX = "\u2014 "  # em dash, space
_SKEY_PREFIX = "PRIVATE+KEY+"
_ED25519_SIG_SIZE = 64
_ED25519_KEY_SIZE = 32
_ROOT_SIZE = 32
# Go's sumdb/note uses the same cap so a hostile note cannot make us verify forever.
_MAX_SIGNATURES = 100
_MAX_TREE_SIZE = 2**64 - 1

_HEX8 = re.compile(r"[0-9a-fA-F]{8}")
_DECIMAL = re.compile(r"0|[1-9][0-9]*")


class NoteError(ValueError):
    """A note, checkpoint or key is malformed, unsigned by a known key, or wrongly signed."""


def _raw_public(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def key_hash(name: str, public_key: bytes) -> bytes:
    """Return the 4-byte key hash: SHA-256(name || 0x0A || 0x01 || 32-byte Ed25519 key)[:4]."""
    _check_name(name)
    if len(public_key) != _ED25519_KEY_SIZE:
        raise NoteError("Ed25519 public key must be 32 bytes")
    return hashlib.sha256(
        name.encode("utf-8") + b"\n" + bytes([ALG_ED25519]) + public_key
    ).digest()[:4]


def _is_valid_name(name: str) -> bool:
    return (
        bool(name)
        and "+" not in name
        and not any(ch.isspace() or unicodedata.category(ch) == "Cc" for ch in name)
        and _is_utf8_encodable(name)
    )


def _check_name(name: str) -> None:
    if not _is_valid_name(name):
        raise NoteError("key name must be non-empty without whitespace or '+'")


def _is_utf8_encodable(text: str) -> bool:
    # A str can hold lone surrogates, which are not valid UTF-8 and would not round-trip.
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _check_text(text: str, what: str) -> None:
    """Reject anything but UTF-8 text whose only control character is newline."""
    if not _is_utf8_encodable(text):
        raise NoteError(f"{what} is not valid UTF-8")
    for ch in text:
        # Category Cc is C0, DEL and C1; stricter than Go (C0 only) but we only sign our own text.
        if ch != "\n" and unicodedata.category(ch) == "Cc":
            raise NoteError(f"{what} contains a control character")


def _b64decode(text: str, what: str) -> bytes:
    """Decode standard padded base64, accepting only the canonical spelling."""
    try:
        raw = base64.b64decode(text, validate=True)
    except ValueError as exc:  # binascii.Error and non-ASCII input are both ValueErrors
        raise NoteError(f"{what} is not valid base64") from exc
    # Non-zero padding bits decode silently; insisting on the canonical form keeps one
    # spelling per value, so byte-comparing two checkpoints means comparing their contents.
    if base64.b64encode(raw).decode("ascii") != text:
        raise NoteError(f"{what} is not canonical base64")
    return raw


def _b64encode(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


class Verifier:
    """A named Ed25519 public key that checks note signatures."""

    __slots__ = ("_key", "key_hash", "name", "public_key")

    def __init__(self, name: str, public_key: Ed25519PublicKey) -> None:
        _check_name(name)
        self.name = name
        self._key = public_key
        self.public_key = _raw_public(public_key)
        self.key_hash = key_hash(name, self.public_key)

    @classmethod
    def from_vkey(cls, vkey: str) -> Verifier:
        """Parse ``<name>+<8 hex digit key hash>+<base64(0x01 || public key)>``."""
        parts = vkey.strip().split("+", 2)
        if len(parts) != 3:
            raise NoteError("verifier key must be <name>+<hash>+<key>")
        name, hash_hex, key64 = parts
        _check_name(name)
        if not _HEX8.fullmatch(hash_hex):
            raise NoteError("verifier key hash must be 8 hex digits")
        raw = _b64decode(key64, "verifier key")
        if len(raw) != 1 + _ED25519_KEY_SIZE or raw[0] != ALG_ED25519:
            raise NoteError("verifier key is not an Ed25519 key")
        verifier = cls(name, Ed25519PublicKey.from_public_bytes(raw[1:]))
        if verifier.key_hash != bytes.fromhex(hash_hex):
            raise NoteError("verifier key hash does not match the key")
        return verifier

    @property
    def vkey(self) -> str:
        """The encoded verifier key, safe to publish."""
        key64 = _b64encode(bytes([ALG_ED25519]) + self.public_key)
        return f"{self.name}+{self.key_hash.hex()}+{key64}"

    def verify(self, message: bytes, signature: bytes) -> bool:
        """Return whether ``signature`` is this key's Ed25519 signature of ``message``."""
        if len(signature) != _ED25519_SIG_SIZE:
            return False
        try:
            self._key.verify(signature, message)
        except InvalidSignature:
            return False
        return True

    def __repr__(self) -> str:
        return f"Verifier({self.name!r}, {self.key_hash.hex()})"


class Signer:
    """A named Ed25519 private key that signs notes."""

    __slots__ = ("_key", "key_hash", "name", "public_key")

    def __init__(self, name: str, private_key: Ed25519PrivateKey) -> None:
        _check_name(name)
        self.name = name
        self._key = private_key
        self.public_key = _raw_public(private_key.public_key())
        self.key_hash = key_hash(name, self.public_key)

    @classmethod
    def generate(cls, name: str) -> Signer:
        """Create a signer with a fresh random key."""
        return cls(name, Ed25519PrivateKey.generate())

    @classmethod
    def from_skey(cls, skey: str) -> Signer:
        """Parse ``PRIVATE+KEY+<name>+<8 hex digit key hash>+<base64(0x01 || seed)>``."""
        skey = skey.strip()
        if not skey.startswith(_SKEY_PREFIX):
            raise NoteError("signer key must start with PRIVATE+KEY+")
        parts = skey[len(_SKEY_PREFIX) :].split("+", 2)
        if len(parts) != 3:
            raise NoteError("signer key must be PRIVATE+KEY+<name>+<hash>+<key>")
        name, hash_hex, key64 = parts
        _check_name(name)
        if not _HEX8.fullmatch(hash_hex):
            raise NoteError("signer key hash must be 8 hex digits")
        raw = _b64decode(key64, "signer key")
        if len(raw) != 1 + _ED25519_KEY_SIZE or raw[0] != ALG_ED25519:
            raise NoteError("signer key is not an Ed25519 key")
        signer = cls(name, Ed25519PrivateKey.from_private_bytes(raw[1:]))
        # The hash covers the public key, so this also catches a seed pasted under the wrong name.
        if signer.key_hash != bytes.fromhex(hash_hex):
            raise NoteError("signer key hash does not match the key")
        return signer

    @property
    def skey(self) -> str:
        """The encoded signer key. Secret: store it like a password."""
        seed = self._key.private_bytes(
            serialization.Encoding.Raw,
            serialization.PrivateFormat.Raw,
            serialization.NoEncryption(),
        )
        key64 = _b64encode(bytes([ALG_ED25519]) + seed)
        return f"{_SKEY_PREFIX}{self.name}+{self.key_hash.hex()}+{key64}"

    @property
    def vkey(self) -> str:
        """The encoded verifier key matching this signer."""
        return self.verifier().vkey

    def verifier(self) -> Verifier:
        """Return the verifier for this signer's public key."""
        return Verifier(self.name, self._key.public_key())

    def sign(self, message: bytes) -> bytes:
        """Return the raw 64-byte Ed25519 signature of ``message``."""
        return self._key.sign(message)

    def __repr__(self) -> str:
        # Never show key material, even in a traceback.
        return f"Signer({self.name!r}, {self.key_hash.hex()})"


def _check_body(body: str) -> None:
    if not body.endswith("\n"):
        raise NoteError("note text must end with a newline")
    _check_text(body, "note text")


def sign_note(body: str, *signers: Signer) -> str:
    """Return ``body`` followed by a blank line and one signature line per signer."""
    if not signers:
        raise ValueError("at least one signer is needed")
    _check_body(body)
    message = body.encode("utf-8")
    lines = [body, "\n"]
    for signer in signers:
        blob = signer.key_hash + signer.sign(message)
        lines.append(f"{_SIG_PREFIX}{signer.name} {_b64encode(blob)}\n")
    return "".join(lines)


def _index_verifiers(verifiers: Iterable[Verifier]) -> dict[tuple[str, bytes], Verifier]:
    known: dict[tuple[str, bytes], Verifier] = {}
    for verifier in verifiers:
        other = known.setdefault((verifier.name, verifier.key_hash), verifier)
        if other.public_key != verifier.public_key:
            # Two keys with one name and hash: someone is tampering with the trust list.
            raise NoteError(f"ambiguous verifier key {verifier.name}+{verifier.key_hash.hex()}")
    return known


def _parse_signature_line(line: str) -> tuple[str, bytes, bytes]:
    """Split ``— <name> <base64>`` into name, 4-byte key hash and signature."""
    if not line.startswith(_SIG_PREFIX):
        raise NoteError("note signature line is malformed")
    name, sep, sig64 = line[len(_SIG_PREFIX) :].partition(" ")
    if not sep or not _is_valid_name(name) or not sig64:
        raise NoteError("note signature line is malformed")
    blob = _b64decode(sig64, "note signature")
    if len(blob) < 5:
        raise NoteError("note signature is too short")
    return name, blob[:4], blob[4:]


def open_note(text: str | bytes, verifiers: Iterable[Verifier]) -> str:
    """Check a signed note and return its body (the signed text, final newline included).

    Signatures by keys not in ``verifiers`` are ignored, as the signed-note spec asks, so a
    witness can add cosignatures; but at least one signature must come from a known key, and
    every signature from a known key must be valid.
    """
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise NoteError("note is not valid UTF-8") from exc
    _check_text(text, "note")
    known = _index_verifiers(verifiers)

    # The last blank line separates text from signatures; the text itself may hold blank lines.
    split = text.rfind("\n\n")
    if split < 0:
        raise NoteError("note has no signature block")
    body, sig_block = text[: split + 1], text[split + 2 :]
    if not sig_block.endswith("\n"):
        raise NoteError("note signature block is malformed")
    sig_lines = sig_block[:-1].split("\n")
    if len(sig_lines) > _MAX_SIGNATURES:
        raise NoteError("note has too many signatures")

    message = body.encode("utf-8")
    verified = 0
    for line in sig_lines:
        name, hash_, signature = _parse_signature_line(line)
        signer_key = known.get((name, hash_))
        if signer_key is None:
            continue
        if not signer_key.verify(message, signature):
            raise NoteError(f"invalid signature by {name}+{hash_.hex()}")
        verified += 1
    if not verified:
        raise NoteError("note has no signature from a known key")
    return body


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """A parsed tlog checkpoint: the log's identity, tree size and root hash."""

    origin: str
    size: int
    root: bytes
    extensions: tuple[str, ...] = ()


def _check_line(line: str, what: str) -> None:
    if not line:
        raise NoteError(f"checkpoint {what} is empty")
    if "\n" in line:
        raise NoteError(f"checkpoint {what} contains a newline")
    _check_text(line, f"checkpoint {what}")


def format_checkpoint(origin: str, size: int, root: bytes, extensions: Sequence[str] = ()) -> str:
    """Return the checkpoint body ``<origin>\\n<size>\\n<base64 root>\\n[<extension>\\n...]``."""
    _check_line(origin, "origin")
    if isinstance(size, bool) or not 0 <= size <= _MAX_TREE_SIZE:
        raise NoteError("checkpoint size must be an unsigned 64-bit integer")
    if len(root) != _ROOT_SIZE:
        raise NoteError("checkpoint root must be a 32-byte SHA-256 hash")
    for ext in extensions:
        _check_line(ext, "extension line")
    return "".join(f"{line}\n" for line in (origin, str(size), _b64encode(root), *extensions))


def parse_checkpoint(body: str) -> Checkpoint:
    """Parse a checkpoint body (the text of an opened note); raise ``NoteError`` if malformed."""
    if not body.endswith("\n"):
        raise NoteError("checkpoint must end with a newline")
    _check_text(body, "checkpoint")
    lines = body[:-1].split("\n")
    if len(lines) < 3:
        raise NoteError("checkpoint needs origin, size and root lines")
    origin, size_text, root64, *extensions = lines
    _check_line(origin, "origin")
    # A regex rather than int(): int() also takes '+5', ' 5', '1_0' and non-ASCII digits.
    if not _DECIMAL.fullmatch(size_text):
        raise NoteError("checkpoint size must be decimal without leading zeros")
    size = int(size_text)
    if size > _MAX_TREE_SIZE:
        raise NoteError("checkpoint size exceeds 64 bits")
    root = _b64decode(root64, "checkpoint root")
    if len(root) != _ROOT_SIZE:
        raise NoteError("checkpoint root must be a 32-byte SHA-256 hash")
    for ext in extensions:
        _check_line(ext, "extension line")
    return Checkpoint(origin=origin, size=size, root=root, extensions=tuple(extensions))
