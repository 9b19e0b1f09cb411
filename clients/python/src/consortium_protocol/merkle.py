"""RFC 6962 (Certificate Transparency) Merkle trees over 32-byte transaction ids."""

from __future__ import annotations

import hashlib

_EMPTY_ROOT = hashlib.sha256(b"").digest()


def leaf_hash(leaf: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + leaf).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def _largest_power_of_two_below(n: int) -> int:
    return 1 << ((n - 1).bit_length() - 1)


def _subtree_root(leaf_hashes: list[bytes]) -> bytes:
    # Pairing level by level and carrying an odd last node up unchanged builds
    # exactly the RFC 6962 tree (split at the largest power of two below n).
    level = leaf_hashes
    while len(level) > 1:
        paired = [node_hash(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            paired.append(level[-1])
        level = paired
    return level[0]


def merkle_root(leaves: list[bytes]) -> bytes:
    if not leaves:
        return _EMPTY_ROOT
    return _subtree_root([leaf_hash(leaf) for leaf in leaves])


def merkle_root_hex(tx_ids: list[str]) -> str:
    return merkle_root([bytes.fromhex(tx_id) for tx_id in tx_ids]).hex()


def audit_path(leaves: list[bytes], index: int) -> list[bytes]:
    """The RFC 6962 PATH(index, leaves), nearest sibling first."""
    if not 0 <= index < len(leaves):
        raise IndexError("leaf index out of range")
    return _path(index, [leaf_hash(leaf) for leaf in leaves])


def _path(index: int, hashes: list[bytes]) -> list[bytes]:
    if len(hashes) == 1:
        return []
    split = _largest_power_of_two_below(len(hashes))
    if index < split:
        return [*_path(index, hashes[:split]), _subtree_root(hashes[split:])]
    return [*_path(index - split, hashes[split:]), _subtree_root(hashes[:split])]


def verify_inclusion(leaf: bytes, index: int, tree_size: int, path: list[bytes], root: bytes) -> bool:
    """RFC 9162 section 2.1.3.2: check that `leaf` sits at `index` of the tree with `root`."""
    if not 0 <= index < tree_size:
        return False
    fn, sn = index, tree_size - 1
    result = leaf_hash(leaf)
    for sibling in path:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            result = node_hash(sibling, result)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            result = node_hash(result, sibling)
        fn >>= 1
        sn >>= 1
    return sn == 0 and result == root
