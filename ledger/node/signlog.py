"""The validator's signing log: never sign two different messages for one (height, round, kind).

Like CometBFT's `priv_validator_state`, but keeping every message signed at
the current height rather than only the last: before a signature leaves the
node, the signed message is appended to `signing_log.jsonl` in the node's
home and fsynced. After a crash the engine replays the log into a fresh
consensus machine, so the node resumes the height exactly where it was (its
lock included), and signing the same intent again returns the logged
signature instead of a new one. An intent that conflicts with the log is
refused: the machine then simply never counts it.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

from ledger.consensus.messages import Proposal, ProposalIntent, Vote, VoteIntent, sign_intent
from ledger.node.wire import message_from_wire, message_to_wire
from ledger.protocol.errors import ProtocolError
from ledger.protocol.keys import SigningKey

LOG_FILE = "signing_log.jsonl"
logger = logging.getLogger(__name__)

Message = Vote | Proposal


def _slot(message: Message | VoteIntent | ProposalIntent) -> tuple[int, int, str]:
    kind = message.type if isinstance(message, Vote | VoteIntent) else "proposal"
    return message.height, message.round, kind


class SigningLog:
    def __init__(self, home: Path, key: SigningKey, chain_id: str) -> None:
        self.path = home / LOG_FILE
        self.key = key
        self.chain_id = chain_id
        self.height = 0
        self.signed: dict[tuple[int, int, str], Message] = {}
        self._load()

    def _load(self) -> None:
        if not self.path.exists():
            return
        for line in self.path.read_text(encoding="utf-8").splitlines():
            try:
                data = json.loads(line)
                if data.get("kind") == "height":  # the height marker written by begin_height
                    self.height = max(self.height, int(data["height"]))
                    continue
                message = message_from_wire(data, chain_id=self.chain_id, verified=set)
            except (ValueError, TypeError, KeyError, AttributeError, ProtocolError):
                # A torn last line from a crash mid-append: it was never fsynced,
                # so it was never sent either.
                logger.warning("ignoring an unreadable line of the signing log")
                continue
            self.height = max(self.height, message.height)
            self.signed[_slot(message)] = message

    def begin_height(self, height: int) -> list[Message]:
        """Start signing at `height`; returns what was already signed there (to replay)."""
        if height < self.height:
            raise RuntimeError(f"the signing log is at height {self.height}; refusing to go back to {height}")
        if height > self.height:
            self.height = height
            self.signed = {slot: m for slot, m in self.signed.items() if slot[0] >= height}
            self._rewrite()
        return [m for slot, m in sorted(self.signed.items(), key=lambda item: item[0]) if slot[0] == height]

    def sign(self, intent: VoteIntent | ProposalIntent) -> Message | None:
        """The signed message for `intent`, or None if it conflicts with what was signed."""
        slot = _slot(intent)
        if slot[0] < self.height:
            return None
        held = self.signed.get(slot)
        if held is not None:
            return held if _same(held, intent) else None
        message = sign_intent(self.key, self.chain_id, intent)
        self._append(message)
        self.signed[slot] = message
        return message

    def _append(self, message: Message) -> None:
        line = json.dumps(message_to_wire(message), separators=(",", ":")) + "\n"
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            os.write(fd, line.encode("utf-8"))
            os.fsync(fd)
        finally:
            os.close(fd)

    def _rewrite(self) -> None:
        tmp = self.path.with_suffix(".tmp")
        lines = [{"kind": "height", "height": self.height}, *(message_to_wire(m) for m in self.signed.values())]
        text = "".join(json.dumps(line, separators=(",", ":")) + "\n" for line in lines)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.write(fd, text.encode("utf-8"))
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, self.path)
        dir_fd = os.open(self.path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


def _same(held: Message, intent: VoteIntent | ProposalIntent) -> bool:
    if isinstance(intent, VoteIntent):
        return isinstance(held, Vote) and held.block_hash == intent.block_hash
    return isinstance(held, Proposal) and (held.block_hash, held.valid_round) == (intent.block_hash, intent.valid_round)
