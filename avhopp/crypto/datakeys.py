"""Per-person data keys (DEKs): creation, KEK wrapping with bound AAD, and a TTL cache."""

from __future__ import annotations

import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Final

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from avhopp.crypto.envelope import length_prefixed
from avhopp.crypto.errors import KeyUnwrapError
from avhopp.crypto.keyring import KeyProvider

DEK_AAD_LABEL: Final = "avhopp/dek/v1"
DEK_LEN: Final = 32


def new_data_key() -> bytes:
    """A fresh random 256-bit data key."""
    return secrets.token_bytes(DEK_LEN)


def dek_aad(key_id: str, subject_id: str) -> bytes:
    """AAD for wrapping a DEK: a wrapped key moved to another key id or person fails to unwrap."""
    return length_prefixed(DEK_AAD_LABEL, key_id, subject_id)


def wrap_data_key(
    provider: KeyProvider, *, key_id: str, subject_id: str, key: bytes
) -> tuple[str, bytes]:
    """Wrap key under the provider's active KEK; returns (kek_id, blob) to store beside key_id."""
    if len(key) != DEK_LEN:
        raise ValueError("data key must be 32 bytes")
    return provider.wrap(key, dek_aad(key_id, subject_id))


def unwrap_data_key(
    provider: KeyProvider, *, kek_id: str, blob: bytes, key_id: str, subject_id: str
) -> bytes:
    """Recover a DEK stored by wrap_data_key for the same key_id and subject_id."""
    key = provider.unwrap(kek_id, blob, dek_aad(key_id, subject_id))
    if len(key) != DEK_LEN:
        raise KeyUnwrapError(f"unwrapped data key {key_id!r} has the wrong length")
    return key


class DataKeyCache:
    """Thread-safe in-memory cache of unwrapped DEKs by key id, with TTL and a size bound.

    Each entry can also hold the key's AES-GCM cipher (see get_cipher): building one costs
    about as much as decrypting a small field, and it lives and goes with the key."""

    def __init__(
        self,
        ttl_seconds: float = 300.0,
        *,
        max_entries: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if ttl_seconds <= 0 or max_entries <= 0:
            raise ValueError("ttl_seconds and max_entries must be positive")
        self._ttl = ttl_seconds
        self._max = max_entries
        self._clock = clock
        self._lock = threading.Lock()
        self._entries: OrderedDict[str, tuple[float, bytes, AESGCM | None]] = OrderedDict()

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)

    def _entry(self, key_id: str) -> tuple[float, bytes, AESGCM | None] | None:
        now = self._clock()
        with self._lock:
            entry = self._entries.get(key_id)
            if entry is None:
                return None
            if entry[0] <= now:
                del self._entries[key_id]
                return None
            self._entries.move_to_end(key_id)
            return entry

    def get(self, key_id: str) -> bytes | None:
        """The cached key, or None if absent or expired (expired entries are dropped)."""
        entry = self._entry(key_id)
        return None if entry is None else entry[1]

    def get_cipher(self, key_id: str) -> AESGCM | None:
        """The cached key's AES-GCM cipher, under the same rules as get(); built on first use
        and kept in the key's entry, so it expires and is evicted with the key."""
        entry = self._entry(key_id)
        if entry is None:
            return None
        if entry[2] is None:
            aead = AESGCM(entry[1])
            with self._lock:
                if self._entries.get(key_id) is entry:
                    self._entries[key_id] = (entry[0], entry[1], aead)
            return aead
        return entry[2]

    def put(self, key_id: str, key: bytes) -> None:
        """Cache key until now + TTL; the least recently used entry goes when full."""
        expires = self._clock() + self._ttl
        with self._lock:
            self._entries[key_id] = (expires, bytes(key), None)
            self._entries.move_to_end(key_id)
            while len(self._entries) > self._max:
                self._entries.popitem(last=False)

    def evict(self, key_id: str) -> None:
        """Forget one key (e.g. after it was destroyed or rotated)."""
        with self._lock:
            self._entries.pop(key_id, None)

    def clear(self) -> None:
        """Forget every key."""
        with self._lock:
            self._entries.clear()
