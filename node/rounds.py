"""The bound on rounds: messages far ahead of this node's round wait here, a bounded few per validator.

The machine keeps state for every round it hears of, and rule 8 scans them
all; a validator free to sign any round up to 2^53 could make every honest
node store (and relay) state for millions of rounds. So a message for a round
beyond `current + ROUNDS_AHEAD` is not fed to the machine, logged or
relayed. It is held here instead, and only within a bound per signing
validator: for each validator, its messages (at most one of each kind) of
the highest far round it signed. Honest validators ahead of us all keep
their latest round here, so once f+1 distinct validators are held at one
round, the engine feeds those messages in and rule 8 moves the machine there,
as the paper would. One Byzantine validator alone (at most f) can never
trigger that, and replacing its round each time costs it its own share only.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from ledger.consensus.messages import ConsensusVote
from node.intake import Message

ROUNDS_AHEAD = 3  # K: rounds current+1 .. current+K are fed to the machine at once


def _kind(message: Message) -> str:
    return message.type if isinstance(message, ConsensusVote) else "proposal"


class FarRounds:
    def __init__(self, ahead: int = ROUNDS_AHEAD) -> None:
        self.ahead = ahead
        # sender -> (its highest far round, {kind: (message, wire)})
        self._held: dict[str, tuple[int, dict[str, tuple[Message, dict[str, Any]]]]] = {}

    def is_far(self, round_: int, current: int) -> bool:
        return round_ > current + self.ahead

    def hold(self, message: Message, wire: dict[str, Any]) -> bool:
        """Keep a checked far-round message; False if its sender already holds a higher round or this kind."""
        held = self._held.get(message.sender)
        if held is None or message.round > held[0]:
            self._held[message.sender] = (message.round, {_kind(message): (message, wire)})
            return True
        if message.round < held[0] or _kind(message) in held[1]:
            return False
        held[1][_kind(message)] = (message, wire)
        return True

    def release(self, current: int, third: int) -> list[tuple[Message, dict[str, Any]]]:
        """What may now be fed: rounds within reach of `current`, or a round f+1 validators are in."""
        if not self._held:
            return []
        senders_per_round = Counter(round_ for round_, _ in self._held.values())
        vouched = [round_ for round_, senders in senders_per_round.items() if senders >= third]
        reach = max([current + self.ahead, *vouched])
        released: list[tuple[Message, dict[str, Any]]] = []
        for sender, (round_, kinds) in list(self._held.items()):
            if round_ <= reach:
                released.extend(kinds.values())
                del self._held[sender]
        return sorted(released, key=lambda entry: (entry[0].round, isinstance(entry[0], ConsensusVote)))

    def clear(self) -> None:
        self._held.clear()

    def __len__(self) -> int:
        return sum(len(kinds) for _, kinds in self._held.values())
