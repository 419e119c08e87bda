"""Tests for data-key wrapping and the data-key cache."""

from __future__ import annotations

import threading

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from avhopp.crypto import (
    DataKeyCache,
    KeyUnwrapError,
    LocalKeyRing,
    add_kek,
    generate_key_file,
    new_data_key,
    unwrap_data_key,
    wrap_data_key,
)
from avhopp.crypto.datakeys import dek_aad


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def ring() -> LocalKeyRing:
    return LocalKeyRing(generate_key_file())


def test_new_data_keys_are_random_32_bytes() -> None:
    keys = {new_data_key() for _ in range(50)}
    assert len(keys) == 50 and all(len(k) == 32 for k in keys)


def test_wrapped_data_key_unwraps_for_the_same_key_and_subject(ring: LocalKeyRing) -> None:
    dek = new_data_key()
    kek_id, blob = wrap_data_key(ring, key_id="dek-1", subject_id="p-1", key=dek)
    assert kek_id == ring.active_kek_id
    assert unwrap_data_key(ring, kek_id=kek_id, blob=blob, key_id="dek-1", subject_id="p-1") == dek


@pytest.mark.parametrize(
    ("key_id", "subject_id"), [("dek-2", "p-1"), ("dek-1", "p-2"), ("dek-1p-", "1")]
)
def test_wrapped_data_key_moved_to_other_key_id_or_person_fails(
    ring: LocalKeyRing, key_id: str, subject_id: str
) -> None:
    kek_id, blob = wrap_data_key(ring, key_id="dek-1", subject_id="p-1", key=new_data_key())
    with pytest.raises(KeyUnwrapError):
        unwrap_data_key(ring, kek_id=kek_id, blob=blob, key_id=key_id, subject_id=subject_id)


def test_dek_aad_is_length_prefixed_label_key_id_subject() -> None:
    assert dek_aad("k", "s") == b"\x00\x00\x00\x0davhopp/dek/v1\x00\x00\x00\x01k\x00\x00\x00\x01s"


def test_wrap_refuses_keys_that_are_not_32_bytes(ring: LocalKeyRing) -> None:
    with pytest.raises(ValueError):
        wrap_data_key(ring, key_id="dek-1", subject_id="p-1", key=bytes(16))


def test_unwrap_refuses_a_wrapped_value_of_the_wrong_length(ring: LocalKeyRing) -> None:
    kek_id, blob = ring.wrap(bytes(16), dek_aad("dek-1", "p-1"))
    with pytest.raises(KeyUnwrapError):
        unwrap_data_key(ring, kek_id=kek_id, blob=blob, key_id="dek-1", subject_id="p-1")


def test_deks_wrapped_before_kek_rotation_still_unwrap() -> None:
    data = generate_key_file()
    dek = new_data_key()
    kek_id, blob = wrap_data_key(LocalKeyRing(data), key_id="dek-1", subject_id="p-1", key=dek)
    rotated = LocalKeyRing(add_kek(data))
    assert (
        unwrap_data_key(rotated, kek_id=kek_id, blob=blob, key_id="dek-1", subject_id="p-1") == dek
    )
    new_kek, new_blob = wrap_data_key(rotated, key_id="dek-1", subject_id="p-1", key=dek)
    assert new_kek != kek_id
    assert (
        unwrap_data_key(rotated, kek_id=new_kek, blob=new_blob, key_id="dek-1", subject_id="p-1")
        == dek
    )


def test_cache_returns_key_until_ttl_expires() -> None:
    clock = FakeClock()
    cache = DataKeyCache(60, clock=clock)
    cache.put("dek-1", b"k" * 32)
    clock.now += 59.9
    assert cache.get("dek-1") == b"k" * 32
    clock.now += 0.1
    assert cache.get("dek-1") is None
    assert len(cache) == 0


def test_cache_ttl_counts_from_the_last_put() -> None:
    clock = FakeClock()
    cache = DataKeyCache(10, clock=clock)
    cache.put("dek-1", b"a" * 32)
    clock.now += 8
    cache.put("dek-1", b"a" * 32)
    clock.now += 8
    assert cache.get("dek-1") is not None


def test_cache_evict_and_clear() -> None:
    cache = DataKeyCache(60, clock=FakeClock())
    cache.put("dek-1", b"a" * 32)
    cache.put("dek-2", b"b" * 32)
    cache.evict("dek-1")
    cache.evict("dek-absent")
    assert cache.get("dek-1") is None and cache.get("dek-2") == b"b" * 32
    cache.clear()
    assert cache.get("dek-2") is None and len(cache) == 0


def test_cache_drops_least_recently_used_when_full() -> None:
    cache = DataKeyCache(60, max_entries=2, clock=FakeClock())
    cache.put("a", b"1")
    cache.put("b", b"2")
    assert cache.get("a") == b"1"  # "b" is now the least recently used
    cache.put("c", b"3")
    assert cache.get("b") is None and cache.get("a") == b"1" and cache.get("c") == b"3"


def test_cache_rejects_nonpositive_settings() -> None:
    with pytest.raises(ValueError):
        DataKeyCache(0)
    with pytest.raises(ValueError):
        DataKeyCache(10, max_entries=0)


def test_cache_is_safe_under_concurrent_use() -> None:
    cache = DataKeyCache(60, max_entries=50)
    errors: list[BaseException] = []

    def work(n: int) -> None:
        try:
            for i in range(2000):
                key_id = f"dek-{(n * 7 + i) % 80}"
                cache.put(key_id, key_id.encode())
                got = cache.get(key_id)
                assert got is None or got == key_id.encode()
                if i % 13 == 0:
                    cache.evict(key_id)
        except BaseException as exc:  # collected, asserted in the main thread
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and len(cache) <= 50


def test_the_cached_cipher_is_the_keys_and_goes_with_it() -> None:
    clock = FakeClock()
    cache = DataKeyCache(60, clock=clock)
    key = new_data_key()
    cache.put("dk-1", key)
    aead = cache.get_cipher("dk-1")
    assert aead is not None and aead is cache.get_cipher("dk-1")  # built once, then reused
    iv = bytes(12)
    assert AESGCM(key).decrypt(iv, aead.encrypt(iv, b"x", b"aad"), b"aad") == b"x"
    cache.evict("dk-1")
    assert cache.get_cipher("dk-1") is None
    cache.put("dk-2", key)
    assert cache.get_cipher("dk-2") is not None
    clock.now += 61
    assert cache.get_cipher("dk-2") is None and cache.get("dk-2") is None
