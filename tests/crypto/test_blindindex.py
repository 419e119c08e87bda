"""Tests for blind-index key derivation, tags and truncation."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from avhopp.crypto import blind_index, derive_index_key, truncation_bits

ROOT = bytes(range(32))


def test_blind_index_is_deterministic() -> None:
    key = derive_index_key(ROOT, "person", "personnummer", 1)
    assert key == derive_index_key(ROOT, "person", "personnummer", 1) and len(key) == 32
    assert blind_index(key, "198112189876", bits=16) == blind_index(key, "198112189876", bits=16)


def test_different_values_give_different_tags() -> None:
    key = derive_index_key(ROOT, "person", "email", 1)
    assert blind_index(key, "a@example.se", bits=64) != blind_index(key, "b@example.se", bits=64)


@pytest.mark.parametrize(
    "other",
    [
        ("person", "email", 1),
        ("contact", "phone", 1),
        ("person", "phone", 2),
        ("person", "phon", 1),
        ("personp", "hone", 1),
    ],
)
def test_index_keys_are_separate_per_table_column_and_version(other: tuple[str, str, int]) -> None:
    assert derive_index_key(ROOT, "person", "phone", 1) != derive_index_key(ROOT, *other)


def test_index_keys_depend_on_the_root() -> None:
    assert derive_index_key(ROOT, "person", "phone", 1) != derive_index_key(
        bytes(32), "person", "phone", 1
    )


@pytest.mark.parametrize("bits", [8, 16, 24, 64, 256])
def test_blind_index_is_truncated_to_bits(bits: int) -> None:
    key = derive_index_key(ROOT, "person", "phone", 1)
    full = blind_index(key, "+46701234567", bits=256)
    assert blind_index(key, "+46701234567", bits=bits) == full[: bits // 8]


@pytest.mark.parametrize("bits", [0, 7, 257, 264])
def test_blind_index_refuses_bits_out_of_range(bits: int) -> None:
    with pytest.raises(ValueError):
        blind_index(ROOT, "x", bits=bits)


@pytest.mark.parametrize("version", [0, -1, True])
def test_derive_refuses_bad_versions(version: int) -> None:
    with pytest.raises(ValueError):
        derive_index_key(ROOT, "person", "phone", version)


def test_derive_refuses_short_root() -> None:
    with pytest.raises(ValueError):
        derive_index_key(ROOT[:16], "person", "phone", 1)


@pytest.mark.parametrize(
    ("population", "min_candidates", "bits"),
    [
        (1, 4, 8),
        (100, 4, 8),
        (4 * 2**16, 4, 16),
        (4 * 2**16 - 1, 4, 15),
        (100_000, 4, 14),
        (1_000_000, 4, 17),
        (10_000_000, 4, 21),
        (4 * 2**24, 4, 24),
        (2**40, 1, 40),
        (10**30, 4, 64),
        (1_000_000, 1_000_000, 8),
    ],
)
def test_truncation_bits(population: int, min_candidates: int, bits: int) -> None:
    assert truncation_bits(population, min_candidates) == bits


@given(st.integers(min_value=1, max_value=2**80), st.integers(min_value=1, max_value=1000))
def test_truncation_keeps_at_least_min_candidates_per_value_unless_clamped(
    population: int, minimum: int
) -> None:
    bits = truncation_bits(population, minimum)
    assert 8 <= bits <= 64
    # Integer arithmetic: float division rounds 2**54 - 1 over 2**54 up to 1.0.
    if bits > 8:
        assert population >= minimum * 2**bits
    if bits < 64:
        assert population < minimum * 2 ** (bits + 1)  # one more bit would break the guarantee


def test_truncation_refuses_nonpositive_input() -> None:
    with pytest.raises(ValueError):
        truncation_bits(0)
    with pytest.raises(ValueError):
        truncation_bits(10, 0)


@pytest.mark.parametrize("bits", [9, 12, 14, 23])
def test_blind_index_with_partial_byte_zeroes_the_unused_low_bits(bits: int) -> None:
    key = derive_index_key(ROOT, "person", "phone", 1)
    tag = blind_index(key, "+46701234567", bits=bits)
    assert len(tag) == (bits + 7) // 8
    spare = len(tag) * 8 - bits
    assert tag[-1] & ((1 << spare) - 1) == 0
    full = blind_index(key, "+46701234567", bits=len(tag) * 8)
    assert tag[:-1] == full[:-1]
