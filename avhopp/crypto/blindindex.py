"""Blind indexes: per-(table, column, version) HMAC keys and truncated HMAC-SHA256 tags."""

from __future__ import annotations

import hashlib
import hmac
from typing import Final

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from avhopp.crypto.envelope import length_prefixed

BIDX_INFO_LABEL: Final = "avhopp/bidx/v1"
INDEX_KEY_LEN: Final = 32
MIN_BITS: Final = 8
MAX_BITS: Final = 64


def derive_index_key(index_root: bytes, table: str, column: str, version: int) -> bytes:
    """HKDF-SHA256 (no salt) of the index root, one independent key per (table, column, version)."""
    if len(index_root) != 32:
        raise ValueError("index root must be 32 bytes")
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise ValueError("index version must be a positive int")
    info = length_prefixed(BIDX_INFO_LABEL, table, column, str(version))
    return HKDF(algorithm=hashes.SHA256(), length=INDEX_KEY_LEN, salt=None, info=info).derive(
        index_root
    )


def blind_index(key: bytes, normalised: str, *, bits: int) -> bytes:
    """HMAC-SHA256(key, UTF-8 normalised value) truncated to its first `bits` bits.

    The tag is ceil(bits / 8) bytes long; when bits is not a multiple of 8 the unused low bits
    of the last byte are zero, so equal values always give equal tags.
    """
    if isinstance(bits, bool) or not MIN_BITS <= bits <= 256:
        raise ValueError("bits must be between 8 and 256")
    digest = hmac.new(key, normalised.encode("utf-8"), hashlib.sha256).digest()
    nbytes = (bits + 7) // 8
    tag = bytearray(digest[:nbytes])
    spare = nbytes * 8 - bits
    if spare:
        tag[-1] &= (0xFF << spare) & 0xFF
    return bytes(tag)


def truncation_bits(expected_population: int, min_candidates: int = 4) -> int:
    """Index width so each index value is shared by about min_candidates or more people.

    With N people and 2**b possible index values, a value is shared by N / 2**b people on
    average, so b = floor(log2(N / min_candidates)), kept within [8, 64]. Rounding down only
    adds candidates (more privacy, more decryptions per lookup); the 8-bit floor means tiny
    populations get fewer than min_candidates. Bit granularity (not bytes) keeps lookups cheap:
    100,000 people at 4 candidates gives 14 bits (about 6 candidates), where whole bytes would
    give 8 bits and about 390 candidates to decrypt per lookup.
    """
    if expected_population < 1 or min_candidates < 1:
        raise ValueError("expected_population and min_candidates must be positive")
    ratio = expected_population // min_candidates
    bits = ratio.bit_length() - 1 if ratio else 0  # floor(log2(ratio)) for integers
    return max(MIN_BITS, min(MAX_BITS, bits))
