"""An in-memory Merkle tree that keeps every perfect subtree, for fast roots and proofs.

`merkle.TreeBuilder` keeps O(log n) hashes and can only give the root of everything appended
so far. Verification and proof generation need the root of any prefix and any subtree, so this
keeps the hash of every aligned perfect subtree, level by level (2n hashes, 64 bytes per leaf:
64 MB for a million entries). Then the root of any prefix and every node of an RFC 9162
consistency or inclusion proof costs O(log n) lookups instead of rehashing the leaves.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

from avhopp.audit.merkle import EMPTY_ROOT, HASH_SIZE

__all__ = ["MerkleLevels"]

_NODE_PREFIX = b"\x01"


def _split(n: int) -> int:
    """The largest power of two strictly smaller than ``n`` (``n >= 2``)."""
    return 1 << ((n - 1).bit_length() - 1)


class MerkleLevels:
    """Append-only store of all aligned perfect-subtree hashes (level 0 = the leaf hashes)."""

    __slots__ = ("_levels", "_size", "_stack")

    def __init__(self) -> None:
        self._levels: list[bytearray] = [bytearray()]
        self._stack: list[bytes] = []
        self._size = 0

    @property
    def size(self) -> int:
        return self._size

    def extend(self, leaves: Iterable[bytes]) -> None:
        """Append leaf hashes (32 bytes each); the fast path for a whole log."""
        # Locals and an inlined body: this runs a million times in `audit verify`.
        levels = self._levels
        level0 = levels[0]
        stack = self._stack
        push = stack.append
        pop = stack.pop
        sha = hashlib.sha256
        prefix = _NODE_PREFIX
        size = self._size
        try:
            for leaf in leaves:
                if len(leaf) != HASH_SIZE:
                    raise ValueError("leaf hash must be 32 bytes")
                level0 += leaf
                h = leaf
                n = size
                height = 0
                # Same carry as merkle.TreeBuilder; each merged node is also kept on its level.
                while n & 1:
                    h = sha(prefix + pop() + h).digest()
                    n >>= 1
                    height += 1
                    if height == len(levels):
                        levels.append(bytearray())
                    levels[height] += h
                push(h)
                size += 1
        finally:
            self._size = size

    def append(self, leaf: bytes) -> None:
        """Append one leaf hash."""
        self.extend((leaf,))

    def leaf(self, index: int) -> bytes:
        if not 0 <= index < self._size:
            raise IndexError(index)
        return bytes(self._levels[0][index * HASH_SIZE : (index + 1) * HASH_SIZE])

    def subtree_root(self, lo: int, hi: int) -> bytes:
        """MTH(D[lo:hi]) for ``0 <= lo < hi <= size``."""
        if not 0 <= lo < hi <= self._size:
            raise ValueError(f"subtree [{lo}, {hi}) outside tree of size {self._size}")
        n = hi - lo
        if n & (n - 1) == 0 and lo % n == 0:
            height = n.bit_length() - 1
            i = (lo >> height) * HASH_SIZE
            return bytes(self._levels[height][i : i + HASH_SIZE])
        k = _split(n)
        return hashlib.sha256(
            _NODE_PREFIX + self.subtree_root(lo, lo + k) + self.subtree_root(lo + k, hi)
        ).digest()

    def root(self, size: int | None = None) -> bytes:
        """The root of the tree of the first ``size`` leaves (default: all)."""
        size = self._size if size is None else size
        if not 0 <= size <= self._size:
            raise ValueError(f"size {size} outside 0..{self._size}")
        return EMPTY_ROOT if size == 0 else self.subtree_root(0, size)

    def consistency_proof(self, old_size: int, new_size: int | None = None) -> list[bytes]:
        """RFC 9162 §2.1.4.1 proof that the tree of ``old_size`` is a prefix of ``new_size``."""
        new_size = self._size if new_size is None else new_size
        if not 0 <= old_size <= new_size <= self._size:
            raise ValueError(f"sizes {old_size}..{new_size} outside 0..{self._size}")
        if old_size in (0, new_size):
            return []
        return self._subproof(old_size, 0, new_size, complete=True)

    def _subproof(self, m: int, lo: int, hi: int, *, complete: bool) -> list[bytes]:
        n = hi - lo
        if m == n:
            return [] if complete else [self.subtree_root(lo, hi)]
        k = _split(n)
        if m <= k:
            return [*self._subproof(m, lo, lo + k, complete=complete),
                    self.subtree_root(lo + k, hi)]
        return [*self._subproof(m - k, lo + k, hi, complete=False), self.subtree_root(lo, lo + k)]

    def inclusion_proof(self, index: int, size: int | None = None) -> list[bytes]:
        """RFC 9162 §2.1.3.1 audit path of leaf ``index`` in the tree of ``size`` leaves."""
        size = self._size if size is None else size
        if not 0 <= index < size <= self._size:
            raise ValueError(f"leaf {index} outside tree of size {size}")
        return self._path(index, 0, size)

    def _path(self, m: int, lo: int, hi: int) -> list[bytes]:
        n = hi - lo
        if n == 1:
            return []
        k = _split(n)
        if m < k:
            return [*self._path(m, lo, lo + k), self.subtree_root(lo + k, hi)]
        return [*self._path(m - k, lo + k, hi), self.subtree_root(lo, lo + k)]
