"""RFC 6962 / RFC 9162 Merkle tree hashing, proofs and the canonical audit entry encoding."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence

__all__ = [
    "EMPTY_ROOT",
    "HASH_SIZE",
    "CompactRange",
    "TreeBuilder",
    "consistency_proof",
    "decode_entry",
    "encode_entry",
    "inclusion_proof",
    "leaf_hash",
    "node_hash",
    "root_from_leaf_hashes",
    "verify_consistency",
    "verify_inclusion",
]

HASH_SIZE = 32

# Domain separation prefixes from RFC 6962 §2.1: a leaf can never be mistaken for an inner node.
_LEAF_PREFIX = b"\x00"
_NODE_PREFIX = b"\x01"

_sha256 = hashlib.sha256

EMPTY_ROOT: bytes = _sha256(b"").digest()


def leaf_hash(data: bytes) -> bytes:
    """Return SHA-256(0x00 || data), the hash of one leaf."""
    return _sha256(_LEAF_PREFIX + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """Return SHA-256(0x01 || left || right), the hash of an inner node."""
    return _sha256(_NODE_PREFIX + left + right).digest()


def _split(n: int) -> int:
    """Return the largest power of two strictly smaller than ``n`` (``n >= 2``)."""
    return 1 << ((n - 1).bit_length() - 1)


def _mth(hashes: Sequence[bytes], lo: int, hi: int) -> bytes:
    """Return MTH of ``hashes[lo:hi]`` without copying slices (``hi > lo``)."""
    n = hi - lo
    if n == 1:
        return hashes[lo]
    k = _split(n)
    return node_hash(_mth(hashes, lo, lo + k), _mth(hashes, lo + k, hi))


def root_from_leaf_hashes(hashes: Sequence[bytes]) -> bytes:
    """Return the Merkle tree hash (RFC 6962 §2.1 MTH) of a list of leaf hashes.

    This is the direct recursive definition; use :class:`TreeBuilder` for long streams.
    """
    if not hashes:
        return EMPTY_ROOT
    return _mth(hashes, 0, len(hashes))


class TreeBuilder:
    """Streaming Merkle tree hasher that keeps only the roots of perfect subtrees (a compact range).

    The stack holds one hash per set bit of ``size``, largest subtree first, so memory is
    O(log n) and each append costs amortised O(1) hashes.
    """

    __slots__ = ("_size", "_stack")

    def __init__(self) -> None:
        self._size = 0
        self._stack: list[bytes] = []

    @property
    def size(self) -> int:
        """Number of leaves appended so far."""
        return self._size

    def append(self, leaf: bytes) -> None:
        """Append one leaf *hash* (not leaf data)."""
        if len(leaf) != HASH_SIZE:
            raise ValueError("leaf hash must be 32 bytes")
        self._append_unchecked(leaf)

    def _append_unchecked(self, leaf: bytes) -> None:
        stack = self._stack
        h = leaf
        n = self._size
        # Every trailing one bit of the old size is a perfect subtree of the same height as the
        # one being carried, so they merge exactly like binary addition.
        while n & 1:
            h = _sha256(_NODE_PREFIX + stack.pop() + h).digest()
            n >>= 1
        stack.append(h)
        self._size += 1

    def extend(self, leaves: Iterable[bytes]) -> None:
        """Append many leaf hashes; this is the fast path for verifying a whole log."""
        # Local names and an inlined loop body: this runs a million times in `audit verify`.
        stack = self._stack
        push = stack.append
        pop = stack.pop
        sha = _sha256
        prefix = _NODE_PREFIX
        size = self._size
        try:
            for leaf in leaves:
                if len(leaf) != HASH_SIZE:
                    raise ValueError("leaf hash must be 32 bytes")
                h = leaf
                n = size
                while n & 1:
                    h = sha(prefix + pop() + h).digest()
                    n >>= 1
                push(h)
                size += 1
        finally:
            # Keep size in step with the stack even if the iterable raised halfway.
            self._size = size

    def root(self) -> bytes:
        """Return the Merkle tree hash of all leaves appended so far."""
        stack = self._stack
        if not stack:
            return EMPTY_ROOT
        # Folding right to left reproduces MTH's largest-power-of-two split: the leftmost
        # subtree is exactly the largest power of two below the size, and so on recursively.
        h = stack[-1]
        for left in reversed(stack[:-1]):
            h = _sha256(_NODE_PREFIX + left + h).digest()
        return h

    def copy(self) -> TreeBuilder:
        """Return an independent builder in the same state."""
        other = TreeBuilder()
        other._size = self._size
        other._stack = list(self._stack)
        return other

    def frontier(self) -> bytes:
        """Return the compact range as bytes: the perfect-subtree roots, largest first."""
        return b"".join(self._stack)

    @classmethod
    def from_frontier(cls, size: int, frontier: bytes) -> TreeBuilder:
        """Resume a builder of ``size`` leaves from its :meth:`frontier` bytes."""
        if size < 0 or len(frontier) != HASH_SIZE * size.bit_count():
            raise ValueError("frontier does not match the tree size")
        other = cls()
        other._size = size
        other._stack = [frontier[i : i + HASH_SIZE] for i in range(0, len(frontier), HASH_SIZE)]
        return other


# The RFC 9162 / transparency-dev name for the same structure.
CompactRange = TreeBuilder


def _all_hash_sized(*values: bytes) -> bool:
    return all(len(v) == HASH_SIZE for v in values)


def _path(hashes: Sequence[bytes], m: int, lo: int, hi: int) -> list[bytes]:
    """RFC 6962 §2.1.1 PATH(m, D[lo:hi]) with ``m`` relative to ``lo``."""
    n = hi - lo
    if n == 1:
        return []
    k = _split(n)
    if m < k:
        return [*_path(hashes, m, lo, lo + k), _mth(hashes, lo + k, hi)]
    return [*_path(hashes, m - k, lo + k, hi), _mth(hashes, lo, lo + k)]


def inclusion_proof(hashes: Sequence[bytes], index: int) -> list[bytes]:
    """Return the audit path for leaf ``index`` in the tree of all ``hashes``, leaf end first."""
    if not 0 <= index < len(hashes):
        raise IndexError(f"leaf index {index} outside tree of size {len(hashes)}")
    return _path(hashes, index, 0, len(hashes))


def verify_inclusion(
    leaf: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes
) -> bool:
    """Return whether ``proof`` shows leaf hash ``leaf`` at ``index`` in the tree ``(size, root)``.

    RFC 9162 §2.1.3.2.
    """
    if not (0 <= index < size and _all_hash_sized(leaf, root, *proof)):
        return False
    fn = index
    sn = size - 1
    r = leaf
    for p in proof:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            # Skip levels where this node is the right edge with no sibling.
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    return sn == 0 and r == root


def _subproof(hashes: Sequence[bytes], m: int, lo: int, hi: int, complete: bool) -> list[bytes]:
    """RFC 6962 §2.1.2 SUBPROOF(m, D[lo:hi], b) with ``m`` relative to ``lo``."""
    n = hi - lo
    if m == n:
        return [] if complete else [_mth(hashes, lo, hi)]
    k = _split(n)
    if m <= k:
        return [*_subproof(hashes, m, lo, lo + k, complete), _mth(hashes, lo + k, hi)]
    return [*_subproof(hashes, m - k, lo + k, hi, False), _mth(hashes, lo, lo + k)]


def consistency_proof(hashes: Sequence[bytes], old_size: int) -> list[bytes]:
    """Return the proof that the tree of the first ``old_size`` hashes is a prefix of all of them.

    Empty when ``old_size`` is 0 or equals the full size (nothing to prove).
    """
    if not 0 <= old_size <= len(hashes):
        raise ValueError(f"old size {old_size} outside 0..{len(hashes)}")
    if old_size in (0, len(hashes)):
        return []
    return _subproof(hashes, old_size, 0, len(hashes), True)


def verify_consistency(
    old_size: int, new_size: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]
) -> bool:
    """Return whether ``proof`` shows the tree ``(old_size, old_root)`` is a prefix of the new one.

    RFC 9162 §2.1.4.2, plus the conventional edge cases: equal sizes need equal roots and an
    empty proof; an empty old tree must have the empty root and an empty proof.
    """
    if not (0 <= old_size <= new_size and _all_hash_sized(old_root, new_root, *proof)):
        return False
    if old_size == new_size:
        return not proof and old_root == new_root
    if old_size == 0:
        return not proof and old_root == EMPTY_ROOT
    return bool(proof) and _check_consistency_path(
        old_size, new_size, old_root, new_root, list(proof)
    )


def _check_consistency_path(
    old_size: int, new_size: int, old_root: bytes, new_root: bytes, path: list[bytes]
) -> bool:
    """Steps 2-7 of RFC 9162 §2.1.4.2, for ``0 < old_size < new_size`` and a non-empty path."""
    # A power-of-two old tree is a complete subtree, so the proof omits its root.
    if old_size & (old_size - 1) == 0:
        path.insert(0, old_root)
    fn = old_size - 1
    sn = new_size - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    return fr == old_root and sr == new_root and sn == 0


# Field type tags for encode_entry; never renumber, stored entries depend on them.
_T_NONE = 0
_T_BYTES = 1
_T_STR = 2
_T_INT = 3
_MAX_FIELD = 0xFFFFFFFF

EntryField = bytes | str | int | None


def encode_entry(fields: Sequence[EntryField]) -> bytes:
    """Encode audit entry fields canonically, so distinct field lists never share a leaf.

    Each field becomes ``type (1 byte) || length (4 bytes, big-endian) || value``:

    ========  ====  =======================================================
    Python    type  value bytes
    ========  ====  =======================================================
    ``None``  0     empty (length 0)
    bytes     1     the bytes as given
    str       2     UTF-8 (lone surrogates are rejected)
    int       3     decimal ASCII, ``-`` for negatives, no leading zeros
    ========  ====  =======================================================

    The fields are concatenated in order with no count or separator; the length prefixes make
    the encoding injective. ``bool`` (and any other type) is rejected rather than silently
    encoded as an int, so a schema change cannot alias ``True`` with ``1``. Values longer than
    2**32 - 1 bytes are rejected.
    """
    out = bytearray()
    for value in fields:
        tag: int
        raw: bytes
        if value is None:
            tag, raw = _T_NONE, b""
        elif isinstance(value, bytes):
            tag, raw = _T_BYTES, value
        elif isinstance(value, str):
            tag, raw = _T_STR, value.encode("utf-8")
        elif isinstance(value, int) and not isinstance(value, bool):
            tag, raw = _T_INT, str(value).encode("ascii")
        else:
            raise TypeError(f"unsupported audit entry field type {type(value).__name__}")
        if len(raw) > _MAX_FIELD:
            raise ValueError("audit entry field too long")
        out.append(tag)
        out += len(raw).to_bytes(4, "big")
        out += raw
    return bytes(out)


def decode_entry(data: bytes) -> list[EntryField]:
    """Invert :func:`encode_entry`; raises ``ValueError`` on anything it would not produce."""
    fields: list[EntryField] = []
    pos = 0
    end = len(data)
    while pos < end:
        if end - pos < 5:
            raise ValueError("truncated field header")
        tag = data[pos]
        length = int.from_bytes(data[pos + 1 : pos + 5], "big")
        pos += 5
        if end - pos < length:
            raise ValueError("truncated field value")
        raw = data[pos : pos + length]
        pos += length
        if tag == _T_NONE:
            if length:
                raise ValueError("None field with a value")
            fields.append(None)
        elif tag == _T_BYTES:
            fields.append(bytes(raw))
        elif tag == _T_STR:
            fields.append(raw.decode("utf-8"))
        elif tag == _T_INT:
            fields.append(_parse_canonical_int(raw))
        else:
            raise ValueError(f"unknown field type {tag}")
    return fields


def _parse_canonical_int(raw: bytes) -> int:
    """Parse decimal ASCII exactly as ``str(int)`` writes it (no '+', spaces, '_' or '-0')."""
    text = raw.decode("ascii")
    digits = text[1:] if text.startswith("-") else text
    if not digits or not all("0" <= ch <= "9" for ch in digits):
        raise ValueError("malformed int field")
    value = int(text)
    if str(value) != text:
        raise ValueError("non-canonical int field")
    return value
