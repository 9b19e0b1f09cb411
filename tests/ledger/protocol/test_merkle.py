"""RFC 6962 Merkle trees: roots against a reference, and inclusion proofs that bind leaf, index and tree."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from consortium_protocol.merkle import audit_path, merkle_root, merkle_root_hex, verify_inclusion

MAX_SIZE = 300


def _leaves(n: int) -> list[bytes]:
    """n distinct 32-byte ids, like transaction ids."""
    return [hashlib.sha256(i.to_bytes(4, "big")).digest() for i in range(n)]


LEAVES = _leaves(MAX_SIZE + 1)


def _h(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def reference_root(leaves: list[bytes]) -> bytes:
    """MTH(D[n]) exactly as RFC 6962 section 2.1 writes it."""
    if not leaves:
        return _h(b"")
    if len(leaves) == 1:
        return _h(b"\x00" + leaves[0])
    k = 1
    while k * 2 < len(leaves):
        k *= 2
    return _h(b"\x01" + reference_root(leaves[:k]) + reference_root(leaves[k:]))


def reference_path(index: int, leaves: list[bytes]) -> list[bytes]:
    """PATH(m, D[n]) exactly as RFC 6962 section 2.1.1 writes it."""
    if len(leaves) == 1:
        return []
    k = 1
    while k * 2 < len(leaves):
        k *= 2
    if index < k:
        return [*reference_path(index, leaves[:k]), reference_root(leaves[k:])]
    return [*reference_path(index - k, leaves[k:]), reference_root(leaves[:k])]


sizes = st.integers(min_value=1, max_value=MAX_SIZE)


@st.composite
def tree_and_index(draw: st.DrawFn) -> tuple[int, int]:
    size = draw(sizes)
    return size, draw(st.integers(min_value=0, max_value=size - 1))


def test_empty_tree_root_is_hash_of_empty_string() -> None:
    assert merkle_root([]) == hashlib.sha256(b"").digest()
    assert merkle_root_hex([]) == hashlib.sha256(b"").hexdigest()


def test_single_leaf_root_is_its_leaf_hash_and_proof_is_empty() -> None:
    leaf = LEAVES[0]
    assert merkle_root([leaf]) == _h(b"\x00" + leaf)
    assert audit_path([leaf], 0) == []
    assert verify_inclusion(leaf, 0, 1, [], merkle_root([leaf]))


@pytest.mark.parametrize("size", range(0, 70))
def test_root_matches_rfc6962_reference_for_every_small_size(size: int) -> None:
    assert merkle_root(LEAVES[:size]) == reference_root(LEAVES[:size])


@given(size=st.integers(min_value=0, max_value=MAX_SIZE))
def test_root_matches_rfc6962_reference_for_any_size(size: int) -> None:
    assert merkle_root(LEAVES[:size]) == reference_root(LEAVES[:size])


@given(leaves=st.lists(st.binary(min_size=32, max_size=32), max_size=40))
def test_root_matches_reference_for_arbitrary_leaf_bytes(leaves: list[bytes]) -> None:
    assert merkle_root(leaves) == reference_root(leaves)


def test_hex_root_reads_ids_as_raw_bytes() -> None:
    ids = [leaf.hex() for leaf in LEAVES[:5]]
    assert merkle_root_hex(ids) == reference_root(LEAVES[:5]).hex()


@pytest.mark.parametrize("size", range(1, 40))
def test_every_proof_of_every_small_tree_verifies_and_matches_reference(size: int) -> None:
    leaves = LEAVES[:size]
    root = merkle_root(leaves)
    for index in range(size):
        path = audit_path(leaves, index)
        assert path == reference_path(index, leaves)
        assert verify_inclusion(leaves[index], index, size, path, root)


@given(tree_and_index())
def test_proof_verifies_for_any_size_and_index(case: tuple[int, int]) -> None:
    size, index = case
    leaves = LEAVES[:size]
    path = audit_path(leaves, index)
    assert path == reference_path(index, leaves)
    assert verify_inclusion(leaves[index], index, size, path, merkle_root(leaves))


@given(tree_and_index(), st.data())
def test_proof_fails_for_any_other_leaf(case: tuple[int, int], data: st.DataObject) -> None:
    size, index = case
    leaves = LEAVES[:size]
    other = data.draw(st.binary(min_size=32, max_size=32).filter(lambda b: b != leaves[index]))
    assert not verify_inclusion(other, index, size, audit_path(leaves, index), merkle_root(leaves))


@given(tree_and_index(), st.data())
def test_proof_fails_for_any_other_index(case: tuple[int, int], data: st.DataObject) -> None:
    size, index = case
    leaves = LEAVES[:size]
    other = data.draw(st.integers(min_value=-2, max_value=size + 2).filter(lambda i: i != index))
    assert not verify_inclusion(leaves[index], other, size, audit_path(leaves, index), merkle_root(leaves))


@given(tree_and_index(), st.data())
def test_proof_fails_against_the_root_of_any_other_tree_size(case: tuple[int, int], data: st.DataObject) -> None:
    # The root is what binds the tree size (RFC 6962 signs it in the tree
    # head), so the other size is checked against the other tree's root. With
    # the same root, a size whose proof has the same shape would still pass.
    size, index = case
    other = data.draw(st.integers(min_value=index + 1, max_value=MAX_SIZE + 1).filter(lambda n: n != size))
    path = audit_path(LEAVES[:size], index)
    assert not verify_inclusion(LEAVES[index], index, other, path, merkle_root(LEAVES[:other]))


@given(tree_and_index(), st.data())
def test_proof_fails_for_a_claimed_size_that_changes_its_shape(case: tuple[int, int], data: st.DataObject) -> None:
    # Against the true root, a wrong claimed size passes exactly when its proof
    # has the same shape (length and sibling sides): the size is bound by the
    # root, not by the path (see the test above).
    size, index = case
    other = data.draw(st.integers(min_value=0, max_value=MAX_SIZE + 1).filter(lambda n: n != size))
    path = audit_path(LEAVES[:size], index)
    same_shape = index < other and len(reference_path(index, LEAVES[:other])) == len(path)
    same_shape = same_shape and _directions(index, size) == _directions(index, other)
    assert verify_inclusion(LEAVES[index], index, other, path, merkle_root(LEAVES[:size])) is same_shape


def _directions(index: int, size: int) -> list[bool]:
    """For each path step, whether the sibling sits on the left."""
    sides: list[bool] = []
    while size > 1:
        k = 1
        while k * 2 < size:
            k *= 2
        sides.append(index >= k)
        index, size = (index - k, size - k) if index >= k else (index, k)
    return sides[::-1]


@given(tree_and_index(), st.data())
def test_proof_fails_when_any_path_byte_is_flipped(case: tuple[int, int], data: st.DataObject) -> None:
    size, index = case
    leaves = LEAVES[:size]
    path = audit_path(leaves, index)
    if not path:
        return
    step = data.draw(st.integers(min_value=0, max_value=len(path) - 1))
    byte = data.draw(st.integers(min_value=0, max_value=31))
    bit = data.draw(st.integers(min_value=0, max_value=7))
    mutated = bytearray(path[step])
    mutated[byte] ^= 1 << bit
    bad = [*path[:step], bytes(mutated), *path[step + 1 :]]
    assert not verify_inclusion(leaves[index], index, size, bad, merkle_root(leaves))


@given(tree_and_index(), st.data())
def test_proof_fails_when_truncated(case: tuple[int, int], data: st.DataObject) -> None:
    size, index = case
    leaves = LEAVES[:size]
    path = audit_path(leaves, index)
    if not path:
        return
    keep = data.draw(st.integers(min_value=0, max_value=len(path) - 1))
    assert not verify_inclusion(leaves[index], index, size, path[:keep], merkle_root(leaves))
    assert not verify_inclusion(leaves[index], index, size, path[1:], merkle_root(leaves))


@given(tree_and_index(), st.lists(st.binary(min_size=32, max_size=32), min_size=1, max_size=3))
def test_proof_fails_when_extended(case: tuple[int, int], extra: list[bytes]) -> None:
    size, index = case
    leaves = LEAVES[:size]
    path = audit_path(leaves, index)
    root = merkle_root(leaves)
    assert not verify_inclusion(leaves[index], index, size, path + extra, root)
    assert not verify_inclusion(leaves[index], index, size, extra + path, root)


@given(tree_and_index())
def test_proof_fails_when_two_siblings_are_swapped(case: tuple[int, int]) -> None:
    size, index = case
    leaves = LEAVES[:size]
    path = audit_path(leaves, index)
    if len(path) < 2:
        return
    swapped = [path[1], path[0], *path[2:]]
    assert not verify_inclusion(leaves[index], index, size, swapped, merkle_root(leaves))


@settings(max_examples=50)
@given(tree_and_index())
def test_proof_fails_against_any_other_root(case: tuple[int, int]) -> None:
    size, index = case
    leaves = LEAVES[:size]
    other_leaves = [*leaves[:-1], hashlib.sha256(b"changed").digest()]
    if other_leaves == leaves:
        return
    assert not verify_inclusion(leaves[index], index, size, audit_path(leaves, index), merkle_root(other_leaves))


@pytest.mark.parametrize(("size", "index"), [(0, 0), (1, 1), (5, -1), (5, 5)])
def test_audit_path_refuses_an_index_outside_the_tree(size: int, index: int) -> None:
    with pytest.raises(IndexError):
        audit_path(LEAVES[:size], index)


def test_empty_tree_proves_nothing() -> None:
    assert not verify_inclusion(LEAVES[0], 0, 0, [], merkle_root([]))
