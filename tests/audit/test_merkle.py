"""Tests for the RFC 6962 Merkle tree and the canonical audit entry encoding."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from avhopp.audit.merkle import (
    EMPTY_ROOT,
    CompactRange,
    TreeBuilder,
    consistency_proof,
    decode_entry,
    encode_entry,
    inclusion_proof,
    leaf_hash,
    node_hash,
    root_from_leaf_hashes,
    verify_consistency,
    verify_inclusion,
)

# The standard RFC 6962 test tree used by the certificate-transparency implementations.
CT_LEAVES = [
    bytes.fromhex(h)
    for h in (
        "",
        "00",
        "10",
        "2021",
        "3031",
        "40414243",
        "5051525354555657",
        "606162636465666768696a6b6c6d6e6f",
    )
]
CT_ROOTS = {
    0: "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    1: "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    2: "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    3: "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    4: "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    5: "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    6: "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    7: "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    8: "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
}
# (index, size, proof) and (old size, new size, proof) from the same test data.
CT_INCLUSION = [
    (0, 1, []),
    (
        0,
        8,
        [
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ],
    ),
    (
        5,
        8,
        [
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
    (2, 3, ["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"]),
    (
        1,
        5,
        [
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        ],
    ),
]
CT_CONSISTENCY = [
    (1, 1, []),
    (
        1,
        8,
        [
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ],
    ),
    (
        6,
        8,
        [
            "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
    (
        2,
        5,
        [
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        ],
    ),
]

MAX_EXHAUSTIVE = 32
# Distinct leaves so that no two subtrees share a hash by accident.
LEAVES = [leaf_hash(b"leaf %d" % i) for i in range(MAX_EXHAUSTIVE)]

# No example database: tests must not write into the work tree, and runs stay reproducible.
fast = settings(database=None, deadline=None)


def _bottom_up_root(data: list[bytes]) -> bytes:
    """Second, independent MTH derivation: hash level by level, promoting an odd last node."""
    if not data:
        return hashlib.sha256(b"").digest()
    level = [hashlib.sha256(b"\x00" + d).digest() for d in data]
    while len(level) > 1:
        pairs = [
            hashlib.sha256(b"\x01" + level[i] + level[i + 1]).digest()
            for i in range(0, len(level) - 1, 2)
        ]
        if len(level) % 2:
            pairs.append(level[-1])
        level = pairs
    return level[0]


def _flip(h: bytes) -> bytes:
    return bytes([h[0] ^ 0x01]) + h[1:]


def _streamed(hashes: list[bytes]) -> TreeBuilder:
    builder = TreeBuilder()
    builder.extend(hashes)
    return builder


# --- hashing ---------------------------------------------------------------------------------


def test_leaf_hash_prefixes_zero_byte() -> None:
    assert leaf_hash(b"abc") == hashlib.sha256(b"\x00abc").digest()


def test_node_hash_prefixes_one_byte() -> None:
    left, right = b"L" * 32, b"R" * 32
    assert node_hash(left, right) == hashlib.sha256(b"\x01" + left + right).digest()


def test_empty_root_is_sha256_of_nothing() -> None:
    assert EMPTY_ROOT.hex() == CT_ROOTS[0]
    assert root_from_leaf_hashes([]) == EMPTY_ROOT
    assert TreeBuilder().root() == EMPTY_ROOT


@pytest.mark.parametrize("size", range(9))
def test_root_matches_rfc6962_reference_vector(size: int) -> None:
    hashes = [leaf_hash(d) for d in CT_LEAVES[:size]]
    assert root_from_leaf_hashes(hashes).hex() == CT_ROOTS[size]


@pytest.mark.parametrize("size", range(9))
def test_reference_vector_agrees_with_independent_bottom_up_derivation(size: int) -> None:
    assert _bottom_up_root(CT_LEAVES[:size]).hex() == CT_ROOTS[size]


@pytest.mark.parametrize("size", range(9))
def test_streaming_root_matches_reference_vector(size: int) -> None:
    hashes = [leaf_hash(d) for d in CT_LEAVES[:size]]
    assert _streamed(hashes).root().hex() == CT_ROOTS[size]


# --- streaming -------------------------------------------------------------------------------


@fast
@given(st.lists(st.binary(max_size=8), max_size=300))
def test_streaming_root_equals_recursive_root(data: list[bytes]) -> None:
    hashes = [leaf_hash(d) for d in data]
    expected = root_from_leaf_hashes(hashes)
    assert _streamed(hashes).root() == expected
    assert expected == _bottom_up_root(data)


@fast
@given(st.integers(min_value=0, max_value=200))
def test_streaming_root_is_correct_at_every_intermediate_size(size: int) -> None:
    hashes = [leaf_hash(b"%d" % i) for i in range(size)]
    builder = TreeBuilder()
    for i, h in enumerate(hashes):
        builder.append(h)
        assert builder.size == i + 1
        assert builder.root() == root_from_leaf_hashes(hashes[: i + 1])


def test_streaming_keeps_one_hash_per_set_bit_of_the_size() -> None:
    builder = TreeBuilder()
    builder.extend(leaf_hash(b"%d" % i) for i in range(1000))
    assert len(builder._stack) == bin(1000).count("1")


def test_streaming_copy_is_independent() -> None:
    builder = _streamed(LEAVES[:5])
    snapshot = builder.copy()
    builder.append(LEAVES[5])
    assert snapshot.size == 5
    assert snapshot.root() == root_from_leaf_hashes(LEAVES[:5])
    assert builder.root() == root_from_leaf_hashes(LEAVES[:6])


def test_streaming_rejects_leaf_hash_of_wrong_length() -> None:
    builder = TreeBuilder()
    with pytest.raises(ValueError, match="32 bytes"):
        builder.append(b"short")
    with pytest.raises(ValueError, match="32 bytes"):
        builder.extend([LEAVES[0], b"short"])
    # The leaf before the bad one was taken; the size must say so.
    assert builder.size == 1
    assert builder.root() == LEAVES[0]


def test_compact_range_is_the_tree_builder() -> None:
    assert CompactRange is TreeBuilder


# --- inclusion proofs ------------------------------------------------------------------------


@pytest.mark.parametrize(("index", "size", "proof"), CT_INCLUSION)
def test_inclusion_proof_matches_reference_vector(index: int, size: int, proof: list[str]) -> None:
    hashes = [leaf_hash(d) for d in CT_LEAVES[:size]]
    assert [p.hex() for p in inclusion_proof(hashes, index)] == proof
    root = bytes.fromhex(CT_ROOTS[size])
    assert verify_inclusion(hashes[index], index, size, [bytes.fromhex(p) for p in proof], root)


def test_inclusion_proofs_verify_for_every_index_and_size_up_to_32() -> None:
    for size in range(1, MAX_EXHAUSTIVE + 1):
        hashes = LEAVES[:size]
        root = root_from_leaf_hashes(hashes)
        for index in range(size):
            proof = inclusion_proof(hashes, index)
            assert verify_inclusion(hashes[index], index, size, proof, root), (index, size)


def test_tampered_inclusion_proofs_fail_for_every_index_and_size_up_to_32() -> None:
    for size in range(1, MAX_EXHAUSTIVE + 1):
        hashes = LEAVES[:size]
        root = root_from_leaf_hashes(hashes)
        for index in range(size):
            leaf = hashes[index]
            proof = inclusion_proof(hashes, index)
            case = (index, size)
            for k in range(len(proof)):
                bad = [*proof[:k], _flip(proof[k]), *proof[k + 1 :]]
                assert not verify_inclusion(leaf, index, size, bad, root), case
            assert not verify_inclusion(_flip(leaf), index, size, proof, root), case
            assert not verify_inclusion(leaf, index, size, proof, _flip(root)), case
            assert not verify_inclusion(leaf, index, size, [*proof, LEAVES[0]], root), case
            if proof:
                assert not verify_inclusion(leaf, index, size, proof[:-1], root), case
            for other in range(size):
                if other != index:
                    assert not verify_inclusion(leaf, other, size, proof, root), (*case, other)


def test_inclusion_verification_rejects_index_outside_tree() -> None:
    root = root_from_leaf_hashes(LEAVES[:4])
    proof = inclusion_proof(LEAVES[:4], 3)
    assert not verify_inclusion(LEAVES[3], 4, 4, proof, root)
    assert not verify_inclusion(LEAVES[3], -1, 4, proof, root)
    assert not verify_inclusion(LEAVES[0], 0, 0, [], EMPTY_ROOT)


def test_inclusion_verification_rejects_hashes_of_wrong_length() -> None:
    root = root_from_leaf_hashes(LEAVES[:2])
    proof = inclusion_proof(LEAVES[:2], 0)
    assert not verify_inclusion(LEAVES[0], 0, 2, [proof[0] + b"x"], root)
    assert not verify_inclusion(LEAVES[0] + b"x", 0, 2, proof, root)


def test_inclusion_proof_rejects_index_outside_tree() -> None:
    with pytest.raises(IndexError):
        inclusion_proof(LEAVES[:3], 3)
    with pytest.raises(IndexError):
        inclusion_proof([], 0)


# --- consistency proofs ----------------------------------------------------------------------


@pytest.mark.parametrize(("old", "new", "proof"), CT_CONSISTENCY)
def test_consistency_proof_matches_reference_vector(old: int, new: int, proof: list[str]) -> None:
    hashes = [leaf_hash(d) for d in CT_LEAVES[:new]]
    assert [p.hex() for p in consistency_proof(hashes, old)] == proof
    assert verify_consistency(
        old,
        new,
        bytes.fromhex(CT_ROOTS[old]),
        bytes.fromhex(CT_ROOTS[new]),
        [bytes.fromhex(p) for p in proof],
    )


def test_consistency_proofs_verify_for_every_pair_of_sizes_up_to_32() -> None:
    for new in range(MAX_EXHAUSTIVE + 1):
        new_root = root_from_leaf_hashes(LEAVES[:new])
        for old in range(new + 1):
            old_root = root_from_leaf_hashes(LEAVES[:old])
            proof = consistency_proof(LEAVES[:new], old)
            assert verify_consistency(old, new, old_root, new_root, proof), (old, new)


def test_tampered_consistency_proofs_fail_for_every_pair_of_sizes_up_to_32() -> None:
    for new in range(1, MAX_EXHAUSTIVE + 1):
        new_root = root_from_leaf_hashes(LEAVES[:new])
        for old in range(new + 1):
            old_root = root_from_leaf_hashes(LEAVES[:old])
            proof = consistency_proof(LEAVES[:new], old)
            case = (old, new)
            for k in range(len(proof)):
                bad = [*proof[:k], _flip(proof[k]), *proof[k + 1 :]]
                assert not verify_consistency(old, new, old_root, new_root, bad), case
            assert not verify_consistency(old, new, _flip(old_root), new_root, proof), case
            if old:  # every tree extends the empty tree, whatever its root
                assert not verify_consistency(old, new, old_root, _flip(new_root), proof), case
            assert not verify_consistency(old, new, old_root, new_root, [*proof, LEAVES[0]]), case
            if proof:
                assert not verify_consistency(old, new, old_root, new_root, proof[:-1]), case


def test_consistency_fails_when_an_old_leaf_was_rewritten() -> None:
    # The attack the audit log must catch: the same sizes, one earlier entry changed.
    for new in range(2, MAX_EXHAUSTIVE + 1):
        for old in range(1, new):
            old_root = root_from_leaf_hashes(LEAVES[:old])
            for victim in range(old):
                forged = list(LEAVES[:new])
                forged[victim] = leaf_hash(b"rewritten")
                proof = consistency_proof(forged, old)
                forged_root = root_from_leaf_hashes(forged)
                case = (old, new, victim)
                assert not verify_consistency(old, new, old_root, forged_root, proof), case


def test_consistency_fails_when_new_tree_is_smaller() -> None:
    root3 = root_from_leaf_hashes(LEAVES[:3])
    root5 = root_from_leaf_hashes(LEAVES[:5])
    assert not verify_consistency(5, 3, root5, root3, consistency_proof(LEAVES[:5], 3))


def test_consistency_between_equal_sizes_needs_equal_roots_and_empty_proof() -> None:
    root = root_from_leaf_hashes(LEAVES[:4])
    assert verify_consistency(4, 4, root, root, [])
    assert not verify_consistency(4, 4, root, _flip(root), [])
    assert not verify_consistency(4, 4, root, root, [LEAVES[0]])


def test_consistency_from_empty_tree_needs_empty_root_and_empty_proof() -> None:
    root = root_from_leaf_hashes(LEAVES[:4])
    assert verify_consistency(0, 4, EMPTY_ROOT, root, [])
    assert not verify_consistency(0, 4, LEAVES[0], root, [])
    assert not verify_consistency(0, 4, EMPTY_ROOT, root, [LEAVES[0]])


def test_consistency_proof_rejects_old_size_outside_tree() -> None:
    with pytest.raises(ValueError, match="old size"):
        consistency_proof(LEAVES[:3], 4)
    with pytest.raises(ValueError, match="old size"):
        consistency_proof(LEAVES[:3], -1)


@fast
@given(st.integers(min_value=1, max_value=300), st.data())
def test_consistency_proofs_verify_for_random_larger_trees(new: int, data: st.DataObject) -> None:
    old = data.draw(st.integers(min_value=0, max_value=new))
    hashes = [leaf_hash(b"%d" % i) for i in range(new)]
    proof = consistency_proof(hashes, old)
    old_root = _streamed(hashes[:old]).root()
    new_root = _streamed(hashes).root()
    assert verify_consistency(old, new, old_root, new_root, proof)


# --- entry encoding --------------------------------------------------------------------------


def test_encode_entry_writes_type_length_and_value_for_each_field() -> None:
    encoded = encode_entry([None, b"\x00\xff", "å", 42, -7])
    assert encoded == (
        b"\x00\x00\x00\x00\x00"
        + b"\x01\x00\x00\x00\x02\x00\xff"
        + b"\x02\x00\x00\x00\x02\xc3\xa5"
        + b"\x03\x00\x00\x00\x0242"
        + b"\x03\x00\x00\x00\x02-7"
    )


def test_encode_entry_of_no_fields_is_empty() -> None:
    assert encode_entry([]) == b""


def test_encode_entry_distinguishes_field_boundaries() -> None:
    assert encode_entry(["ab", "c"]) != encode_entry(["a", "bc"])
    assert encode_entry(["abc"]) != encode_entry(["ab", "c"])


def test_encode_entry_distinguishes_types_with_the_same_text() -> None:
    variants = [encode_entry([v]) for v in (b"1", "1", 1, None, "", b"")]
    assert len(set(variants)) == len(variants)


@pytest.mark.parametrize("value", [True, 1.5, ["x"], bytearray(b"x")])
def test_encode_entry_rejects_unsupported_types(value: object) -> None:
    with pytest.raises(TypeError):
        encode_entry([value])  # type: ignore[list-item]


def test_encode_entry_rejects_lone_surrogates() -> None:
    with pytest.raises(UnicodeEncodeError):
        encode_entry(["\udc80"])


entry_fields = st.lists(
    st.none() | st.binary(max_size=40) | st.text(max_size=40) | st.integers(),
    max_size=12,
)


@fast
@given(entry_fields)
def test_decode_entry_inverts_encode_entry(fields: list[bytes | str | int | None]) -> None:
    assert decode_entry(encode_entry(fields)) == fields


@fast
@given(entry_fields, entry_fields)
def test_encode_entry_is_injective(
    a: list[bytes | str | int | None], b: list[bytes | str | int | None]
) -> None:
    if a != b:
        assert encode_entry(a) != encode_entry(b)


@pytest.mark.parametrize(
    "data",
    [
        b"\x01\x00\x00",  # truncated header
        b"\x01\x00\x00\x00\x05ab",  # truncated value
        b"\x00\x00\x00\x00\x01x",  # None with a value
        b"\x09\x00\x00\x00\x00",  # unknown type
        b"\x03\x00\x00\x00\x02+1",  # int with a sign
        b"\x03\x00\x00\x00\x0201",  # int with a leading zero
        b"\x03\x00\x00\x00\x02-0",  # negative zero
        b"\x03\x00\x00\x00\x00",  # empty int
        b"\x02\x00\x00\x00\x01\xff",  # invalid UTF-8
    ],
)
def test_decode_entry_rejects_non_canonical_input(data: bytes) -> None:
    with pytest.raises(ValueError):
        decode_entry(data)
