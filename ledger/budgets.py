"""Byte budgets: the largest block, sync reply and transaction batch a node builds or accepts.

Peers exchange canonical JSON (docs/peers.md), and a peer link refuses a
message over its maximum size, so everything a node must be able to send is
sized here, in the bytes of its canonical encoding:

- a block (`{"header", "txs"}`) is at most `MAX_BLOCK_BYTES`; a larger one is
  invalid (`block_too_large`) wherever it is checked, and a proposer packs
  its pool by bytes as well as by count so that it never builds one;
- a sync reply packs whole blocks up to `SYNC_REPLY_BYTES`, and always at
  least one, so the largest valid block can always be synced;
- a gossip batch of transactions packs envelopes up to `GOSSIP_BATCH_BYTES`;
- a compact proposal names at most `MAX_BLOCK_TX_IDS` transactions (the most
  a block within `MAX_BLOCK_BYTES` can hold), and an answer to a request for
  some of their bodies packs envelopes up to `BLOCK_TX_BYTES`, so the bodies
  of any valid block fit one answer.

The sizes are computed from the parts' lengths (a stored body is already
canonical), not by encoding the whole message again; the tests check each
formula against the real encoding.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any, TypeVar

from consortium_protocol.blocks import BlockHeader
from consortium_protocol.canonical import canonical

MIB = 1024 * 1024
MAX_BLOCK_BYTES = 4 * MIB
HEADER_RESERVE = 1024  # a header is under 700 bytes: five hex hashes, a 64-character chain id, three integers
SYNC_REPLY_BYTES = 4 * MIB  # the blocks of one sync reply, beyond its first
GOSSIP_BATCH_BYTES = 1 * MIB  # the envelopes of one "txs" message
GOSSIP_BATCH_COUNT = 500  # and at most this many of them

# canonical({"body": b, "signature": s}) is these bytes around b and s.
_ENVELOPE_FRAME = len(b'{"body":') + len(b',"signature":""}')
# canonical({"header": h, "txs": [...]}) is these bytes around h and the list's items.
_BLOCK_FRAME = len(b'{"header":') + len(b',"txs":[]}')
# The largest total of (envelope bytes + one separator) a proposer may pack.
BLOCK_TX_BYTES = MAX_BLOCK_BYTES - _BLOCK_FRAME - HEADER_RESERVE

# The smallest envelope a block can hold: a body holds at least its signer's key (64 hex), and a
# signature is 128 hex. So a block within MAX_BLOCK_BYTES names at most this many transactions.
MIN_ENVELOPE_BYTES = _ENVELOPE_FRAME + len(b'{"signer":""}') + 64 + 128
MAX_BLOCK_TX_IDS = BLOCK_TX_BYTES // (MIN_ENVELOPE_BYTES + 1)

T = TypeVar("T")


def envelope_bytes(body_bytes: int, signature: str) -> int:
    """The canonical size of an envelope whose canonical body is `body_bytes` long."""
    return _ENVELOPE_FRAME + body_bytes + len(signature)


def list_bytes(item_sizes: Iterable[int]) -> int:
    """The canonical size of a JSON array of items of these sizes."""
    total, count = 0, 0
    for size in item_sizes:
        total, count = total + size, count + 1
    return 2 + total + max(0, count - 1)


def block_bytes(header: BlockHeader, envelope_sizes: Iterable[int]) -> int:
    """len(canonical({"header": header, "txs": envelopes})) from the envelopes' sizes."""
    return _BLOCK_FRAME - 2 + len(canonical(header)) + list_bytes(envelope_sizes)


def sync_entry_bytes(block_size: int, commit: list[dict[str, Any]], round_: int) -> int:
    """len(canonical({"block": b, "commit": c, "round": r})) for a block of `block_size` bytes."""
    return len(b'{"block":,"commit":,"round":}') + block_size + len(canonical(commit)) + len(canonical(round_))


def batches(items: Iterable[T], size_of: Callable[[T], int], *, max_bytes: int, max_count: int) -> Iterator[list[T]]:
    """Split `items`, in order, into lists of at most `max_count` items whose sizes sum to at most `max_bytes`.

    Nothing is dropped or reordered: an item larger than `max_bytes` on its
    own travels alone, and the caller decides whether it may.
    """
    batch: list[T] = []
    used = 0
    for item in items:
        size = size_of(item)
        if batch and (used + size > max_bytes or len(batch) >= max_count):
            yield batch
            batch, used = [], 0
        batch.append(item)
        used += size
    if batch:
        yield batch
