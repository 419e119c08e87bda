#!/usr/bin/env python3
"""Offline check that two signed audit-log checkpoints are genuine and the newer extends the old."""

# Standalone on purpose: a board member runs this on their own computer with only Python 3.11+
# and the `cryptography` package, so it must not import avhopp, and it re-implements the few
# rules it needs from C2SP signed-note / tlog-checkpoint and RFC 9162 rather than sharing code
# with the server it is meant to check.

from __future__ import annotations

import argparse
import base64
import hashlib
import re
import sys
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

USAGE_EXAMPLE = (
    "exempel / example:\n"
    "  python verify_checkpoint.py 'avhopp.example/audit+1a2b3c4d+AU...' "
    "old.checkpoint new.checkpoint proof.txt"
)

_SIG_PREFIX = "\u2014 "  # em dash, space
_HEX8 = re.compile(r"[0-9a-fA-F]{8}")
_DECIMAL = re.compile(r"0|[1-9][0-9]*")
_EMPTY_ROOT = hashlib.sha256(b"").digest()
_MAX_SIGNATURES = 100


class CheckError(Exception):
    """A check failed; carries the message in Swedish and English."""

    def __init__(self, sv: str, en: str) -> None:
        super().__init__(en)
        self.sv = sv
        self.en = en


@dataclass(frozen=True)
class VerifierKey:
    name: str
    key_hash: bytes
    key: Ed25519PublicKey


@dataclass(frozen=True)
class Checkpoint:
    origin: str
    size: int
    root: bytes


def _b64(text: str) -> bytes | None:
    """Decode canonical standard base64, or return None."""
    try:
        raw = base64.b64decode(text, validate=True)
    except ValueError:
        return None
    return raw if base64.b64encode(raw).decode("ascii") == text else None


def _valid_name(name: str) -> bool:
    return (
        bool(name)
        and "+" not in name
        and not any(ch.isspace() or unicodedata.category(ch) == "Cc" for ch in name)
    )


def parse_vkey(vkey: str) -> VerifierKey:
    """Parse ``<name>+<hex key hash>+<base64(0x01 || Ed25519 public key)>``."""
    bad = CheckError("Verifieringsnyckeln är felaktigt skriven.", "The verifier key is malformed.")
    parts = vkey.strip().split("+", 2)
    if len(parts) != 3:
        raise bad
    name, hash_hex, key64 = parts
    raw = _b64(key64)
    if not _valid_name(name) or not _HEX8.fullmatch(hash_hex) or raw is None:
        raise bad
    if len(raw) != 33 or raw[0] != 0x01:
        raise bad
    computed = hashlib.sha256(name.encode("utf-8") + b"\n" + raw).digest()[:4]
    if computed != bytes.fromhex(hash_hex):
        raise CheckError(
            "Verifieringsnyckelns kontrollsumma stämmer inte med nyckeln.",
            "The verifier key's hash does not match the key.",
        )
    return VerifierKey(name, computed, Ed25519PublicKey.from_public_bytes(raw[1:]))


def read_text(path: Path, sv_what: str, en_what: str) -> str:
    """Read a UTF-8 file, undoing what editors and mail clients commonly do to line endings."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise CheckError(
            f"Kunde inte läsa {sv_what} ({path}): {exc.strerror}.",
            f"Could not read the {en_what} ({path}): {exc.strerror}.",
        ) from exc
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise CheckError(
            f"{sv_what.capitalize()} är inte giltig UTF-8-text.",
            f"The {en_what} is not valid UTF-8 text.",
        ) from exc
    # Our checkpoints hold no CR (a control character, rejected below) and do not start with a
    # byte-order mark, so dropping these only undoes a Windows editor; it cannot forge a pass.
    return text.removeprefix("\ufeff").replace("\r\n", "\n")


def open_checkpoint(text: str, vkey: VerifierKey, sv_what: str, en_what: str) -> Checkpoint:
    """Verify the signed note with ``vkey`` and parse its checkpoint body."""
    malformed = CheckError(
        f"{sv_what.capitalize()} har fel format.", f"The {en_what} is malformed."
    )
    if any(ch != "\n" and unicodedata.category(ch) == "Cc" for ch in text):
        raise malformed
    split = text.rfind("\n\n")
    if split < 0:
        raise malformed
    body, sig_block = text[: split + 1], text[split + 2 :]
    if not sig_block.endswith("\n"):
        raise malformed
    lines = sig_block[:-1].split("\n")
    if len(lines) > _MAX_SIGNATURES:
        raise malformed
    signed = False
    for line in lines:
        name, key_hash, signature = _parse_signature_line(line, malformed)
        # Signatures by other keys (witnesses' cosignatures) are allowed and ignored.
        if name == vkey.name and key_hash == vkey.key_hash:
            _verify_signature(vkey, body, signature, sv_what, en_what)
            signed = True
    if not signed:
        raise CheckError(
            f"{sv_what.capitalize()} är inte signerad med den angivna nyckeln.",
            f"The {en_what} is not signed with the given key.",
        )
    return _parse_body(body, malformed)


def _parse_signature_line(line: str, malformed: CheckError) -> tuple[str, bytes, bytes]:
    if not line.startswith(_SIG_PREFIX):
        raise malformed
    name, sep, sig64 = line[len(_SIG_PREFIX) :].partition(" ")
    blob = _b64(sig64)
    if not sep or not _valid_name(name) or blob is None or len(blob) < 5:
        raise malformed
    return name, blob[:4], blob[4:]


def _verify_signature(
    vkey: VerifierKey, body: str, signature: bytes, sv_what: str, en_what: str
) -> None:
    try:
        if len(signature) != 64:
            raise InvalidSignature
        vkey.key.verify(signature, body.encode("utf-8"))
    except InvalidSignature as exc:
        raise CheckError(
            f"Signaturen på {sv_what} är OGILTIG: filen har ändrats eller är förfalskad.",
            f"The signature on the {en_what} is INVALID: the file was altered or forged.",
        ) from exc


def _parse_body(body: str, malformed: CheckError) -> Checkpoint:
    lines = body[:-1].split("\n")
    if len(lines) < 3 or any(not line for line in lines):
        raise malformed
    origin, size_text, root64 = lines[:3]
    root = _b64(root64)
    if not _DECIMAL.fullmatch(size_text) or int(size_text) >= 2**64:
        raise malformed
    if root is None or len(root) != 32:
        raise malformed
    return Checkpoint(origin, int(size_text), root)


def read_proof(text: str) -> list[bytes]:
    """Parse one base64 SHA-256 hash per line; blank lines are ignored."""
    proof: list[bytes] = []
    for number, raw_line in enumerate(text.split("\n"), start=1):
        line = raw_line.strip()
        if not line:
            continue
        raw = _b64(line)
        if raw is None or len(raw) != 32:
            raise CheckError(
                f"Rad {number} i beviset är inte en giltig hash.",
                f"Line {number} of the proof is not a valid hash.",
            )
        proof.append(raw)
    return proof


def _node(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def verify_consistency(
    old_size: int, new_size: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]
) -> bool:
    """RFC 9162 §2.1.4.2 consistency proof verification."""
    if not 0 <= old_size <= new_size:
        return False
    if old_size == new_size:
        return not proof and old_root == new_root
    if old_size == 0:
        return not proof and old_root == _EMPTY_ROOT
    if not proof:
        return False
    path = list(proof)
    if old_size & (old_size - 1) == 0:
        path.insert(0, old_root)
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr = _node(c, fr)
            sr = _node(c, sr)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            sr = _node(sr, c)
        fn >>= 1
        sn >>= 1
    return fr == old_root and sr == new_root and sn == 0


def check(
    vkey_text: str, old_path: Path, new_path: Path, proof_path: Path, origin: str | None
) -> tuple[Checkpoint, Checkpoint]:
    """Run every check; raise CheckError on the first that fails."""
    vkey = parse_vkey(vkey_text)
    old = open_checkpoint(
        read_text(old_path, "den gamla kontrollpunkten", "old checkpoint"),
        vkey,
        "den gamla kontrollpunkten",
        "old checkpoint",
    )
    new = open_checkpoint(
        read_text(new_path, "den nya kontrollpunkten", "new checkpoint"),
        vkey,
        "den nya kontrollpunkten",
        "new checkpoint",
    )
    proof = read_proof(read_text(proof_path, "beviset", "proof"))
    if old.origin != new.origin:
        raise CheckError(
            f"Kontrollpunkterna kommer från olika loggar ({old.origin!r} och {new.origin!r}).",
            f"The checkpoints come from different logs ({old.origin!r} and {new.origin!r}).",
        )
    if origin is not None and new.origin != origin:
        raise CheckError(
            f"Kontrollpunkterna gäller loggen {new.origin!r}, inte {origin!r}.",
            f"The checkpoints are for log {new.origin!r}, not {origin!r}.",
        )
    if old.size > new.size:
        raise CheckError(
            f"Den gamla kontrollpunkten ({old.size} poster) är större än den nya "
            f"({new.size} poster). Har filerna angivits i fel ordning?",
            f"The old checkpoint ({old.size} entries) is larger than the new one "
            f"({new.size} entries). Were the files given in the wrong order?",
        )
    if not verify_consistency(old.size, new.size, old.root, new.root, proof):
        raise CheckError(
            "Beviset stämmer INTE: den nya loggen innehåller inte den gamla oförändrad. "
            "Poster kan ha ändrats eller tagits bort.",
            "The proof does NOT verify: the new log does not contain the old one unchanged. "
            "Entries may have been altered or removed.",
        )
    return old, new


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        # The contract with board members is exit 0 = verified, 1 = anything else.
        self.print_usage(sys.stderr)
        print(f"FEL / ERROR: {message}", file=sys.stderr)
        sys.exit(1)


def main(argv: Sequence[str] | None = None) -> int:
    parser = _Parser(
        description=(
            "Kontrollera två signerade kontrollpunkter från avhopps granskningslogg och "
            "beviset för att den nya bygger vidare på den gamla. / Verify two signed audit-log "
            "checkpoints and the proof that the newer one extends the older one."
        ),
        epilog=USAGE_EXAMPLE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("vkey", help="verifieringsnyckel / verifier key (<name>+<hash>+<key>)")
    parser.add_argument("old", type=Path, help="gammal kontrollpunkt / old checkpoint file")
    parser.add_argument("new", type=Path, help="ny kontrollpunkt / new checkpoint file")
    parser.add_argument(
        "proof",
        type=Path,
        help="konsistensbevis, en base64-hash per rad / consistency proof, "
        "one base64 hash per line",
    )
    parser.add_argument("--origin", help="förväntad logg / expected log origin")
    args = parser.parse_args(argv)

    try:
        old, new = check(args.vkey, args.old, args.new, args.proof, args.origin)
    except CheckError as error:
        print(f"FEL: {error.sv}")
        print(f"ERROR: {error.en}")
        return 1
    root = base64.b64encode(new.root).decode("ascii")
    print(
        f"OK: Båda kontrollpunkterna är korrekt signerade och loggen {new.origin!r} med "
        f"{new.size} poster innehåller de första {old.size} posterna oförändrade."
    )
    print(
        f"OK: Both checkpoints are correctly signed and log {new.origin!r} with {new.size} "
        f"entries contains the first {old.size} entries unchanged."
    )
    print(f"Rothash / root hash ({new.size}): {root}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
