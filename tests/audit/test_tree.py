"""MerkleLevels (all subtree hashes) agrees with the reference RFC 6962 functions in merkle.py."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from avhopp.audit import merkle
from avhopp.audit.tree import MerkleLevels


def leaves(n: int) -> list[bytes]:
    return [hashlib.sha256(i.to_bytes(4, "big")).digest() for i in range(n)]


@pytest.mark.parametrize("n", [0, 1, 2, 3, 4, 5, 7, 8, 9, 16, 17, 31, 33, 100])
def test_roots_of_every_prefix_match_the_reference(n: int) -> None:
    hashes = leaves(n)
    tree = MerkleLevels()
    tree.extend(hashes)
    for size in range(n + 1):
        assert tree.root(size) == merkle.root_from_leaf_hashes(hashes[:size])


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 70).flatmap(lambda n: st.tuples(st.just(n), st.integers(0, n),
                                                       st.integers(0, n))))
def test_consistency_and_inclusion_proofs_match_the_reference(case: tuple[int, int, int]) -> None:
    n, a, b = case
    old, new = min(a, b), max(a, b)
    hashes = leaves(n)
    tree = MerkleLevels()
    tree.extend(hashes)
    proof = tree.consistency_proof(old, new)
    assert proof == merkle.consistency_proof(hashes[:new], old)
    assert merkle.verify_consistency(old, new, tree.root(old), tree.root(new), proof)
    if new:
        index = old % new
        path = tree.inclusion_proof(index, new)
        assert path == merkle.inclusion_proof(hashes[:new], index)
        assert merkle.verify_inclusion(hashes[index], index, new, path, tree.root(new))


def test_append_and_extend_agree_and_leaves_are_kept() -> None:
    hashes = leaves(13)
    one, many = MerkleLevels(), MerkleLevels()
    for leaf in hashes:
        one.append(leaf)
    many.extend(hashes)
    assert one.root() == many.root()
    assert [many.leaf(i) for i in range(13)] == hashes


def test_a_leaf_of_the_wrong_size_is_refused() -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        MerkleLevels().append(b"short")


def test_sizes_outside_the_tree_are_refused() -> None:
    tree = MerkleLevels()
    tree.extend(leaves(3))
    with pytest.raises(ValueError):
        tree.root(4)
    with pytest.raises(ValueError):
        tree.consistency_proof(2, 5)


@pytest.mark.parametrize("n", [0, 1, 6, 8, 13])
def test_a_tree_builder_resumes_from_its_frontier(n: int) -> None:
    hashes = leaves(n + 5)
    first = merkle.TreeBuilder()
    first.extend(hashes[:n])
    resumed = merkle.TreeBuilder.from_frontier(n, first.frontier())
    resumed.extend(hashes[n:])
    assert resumed.root() == merkle.root_from_leaf_hashes(hashes)


def test_a_frontier_of_the_wrong_length_is_refused() -> None:
    with pytest.raises(ValueError):
        merkle.TreeBuilder.from_frontier(3, bytes(32))
