"""Messages for the next height, kept until this node gets there.

A peer that committed a block a moment before us already sends the next
height's proposal and votes; dropping them would cost a round. They are kept
here, but only once parsed and signature-checked (`node.intake`), and
within a budget per signing validator: at most `MAX_PER_SENDER` messages and
`MAX_BYTES_PER_SENDER` estimated bytes each. Relayed copies of one
validator's flood therefore fill only that validator's share, never an
honest link's. When the height begins, the engine feeds them in through the
same checks as a fresh message, inside its error handling; a message dropped
here is not lost for good, because peers re-send their height's messages on
status (docs/peers.md).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from ledger.consensus.messages import ConsensusVote
from node.intake import Message, message_size

MAX_PER_SENDER = 24  # a proposal and two votes for each of a few rounds, with room for duplicates' conflicts
MAX_BYTES_PER_SENDER = 8 * 1024 * 1024


@dataclass
class _Share:
    entries: list[tuple[Message, dict[str, Any]]] = field(default_factory=list)
    bytes: int = 0


class FutureBuffer:
    def __init__(self, *, per_sender: int = MAX_PER_SENDER, bytes_per_sender: int = MAX_BYTES_PER_SENDER) -> None:
        self.per_sender = per_sender
        self.bytes_per_sender = bytes_per_sender
        self.height = 0
        self._shares: dict[str, _Share] = defaultdict(_Share)

    def add(self, height: int, message: Message, wire: dict[str, Any]) -> bool:
        """Keep a checked message for `height`; False when its sender's share is full."""
        if height != self.height:
            self._shares.clear()
            self.height = height
        share = self._shares[message.sender]
        size = message_size(message)
        if len(share.entries) >= self.per_sender or share.bytes + size > self.bytes_per_sender:
            return False
        if any(held.signature == message.signature and held == message for held, _ in share.entries):
            return False  # a relayed copy
        share.entries.append((message, wire))
        share.bytes += size
        return True

    def take(self, height: int) -> list[tuple[Message, dict[str, Any]]]:
        """Everything kept for `height` (proposals first), and forget the rest."""
        held = [entry for share in self._shares.values() for entry in share.entries] if height == self.height else []
        self._shares.clear()
        self.height = height
        return sorted(held, key=lambda entry: (entry[0].round, isinstance(entry[0], ConsensusVote)))

    def __len__(self) -> int:
        return sum(len(share.entries) for share in self._shares.values())

    def bytes(self) -> int:
        return sum(share.bytes for share in self._shares.values())
