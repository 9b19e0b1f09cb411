"""The validator's signing log: never sign two different messages for one (height, round, kind).

Like CometBFT's `priv_validator_state`, but keeping every message signed at
the current height rather than only the last: before a signature leaves the
node, the signed message is appended to `signing_log.jsonl` in the node's
home and fsynced (`flush()`, once for all signatures one input produced).
After a crash the engine replays the log into a fresh
consensus machine, so the node resumes the height exactly where it was (its
lock included), and signing the same intent again returns the logged
signature instead of a new one. An intent that conflicts with the log is
refused: the machine then simply never counts it.

The log keeps proposals with their whole block (node/wire.py, "log form"),
although peers exchange them compact: a restarted proposer re-proposes
exactly the block it signed, and a lock's block is found again, without
asking anyone. The bodies are spliced in as the canonical bytes they already
are, never encoded again.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

from consortium_protocol.errors import ProtocolError
from consortium_protocol.keys import SigningKey
from consortium_protocol.transactions import SignedTx
from ledger.consensus.messages import ConsensusProposal, ConsensusVote, ProposalIntent, VoteIntent, sign_intent
from node.wire import log_bytes, message_from_log, message_to_log

LOG_FILE = "signing_log.jsonl"
COMPACT_BYTES = 1024 * 1024  # past this the log is rewritten with the current height only
logger = logging.getLogger(__name__)

Message = ConsensusVote | ConsensusProposal


def _slot(message: Message | VoteIntent | ProposalIntent) -> tuple[int, int, str]:
    kind = message.type if isinstance(message, ConsensusVote | VoteIntent) else "proposal"
    return message.height, message.round, kind


def _all_verified(txs: list[SignedTx]) -> set[str]:
    """The log holds only what this node signed or accepted, after checking it."""
    return {tx.tx_id for tx in txs}


class SigningLog:
    def __init__(self, home: Path, key: SigningKey, chain_id: str) -> None:
        self.path = home / LOG_FILE
        self.key = key
        self.chain_id = chain_id
        self.height = 0
        self.signed: dict[tuple[int, int, str], Message] = {}
        # Other validators' messages accepted at the current height (wire form):
        # with our own signatures they rebuild the machine's lock after a crash.
        self.seen: list[dict] = []
        self._fd: int | None = None
        self._unsynced = False
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
                if data.get("kind") == "seen":
                    self.seen.append(data["message"])
                    continue
                message = message_from_log(data, chain_id=self.chain_id, verified=_all_verified)
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
            # The database is behind what this validator already signed (restored
            # from an older backup): it may follow and sync those heights, but
            # sign() refuses anything below the log's height, so it never
            # signs twice.
            logger.warning(
                "database at height %s is behind the signing log (%s): not signing until then", height - 1, self.height
            )
            return []
        self.seen = [wire for wire in self.seen if isinstance(wire, dict) and wire.get("height") == height]
        if height > self.height:
            self.height = height
            self.signed = {slot: m for slot, m in self.signed.items() if slot[0] >= height}
            if self.path.exists() and self.path.stat().st_size > COMPACT_BYTES:
                self._rewrite()
            else:  # a marker is enough; it becomes durable with the next signature
                self._write({"kind": "height", "height": height})
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
        self._append(log_bytes(message))
        self.signed[slot] = message
        return message

    def record_seen(self, message: Message) -> None:
        """Log another validator's accepted message (a proposal whole); durable with our next signature's fsync.

        That is exactly when it matters: a lock (rule 4) is taken on 2f+1
        prevotes and shown by our precommit, so the prevotes are on disk
        before the precommit leaves the node, and a restart replays both.
        """
        self.seen.append(message_to_log(message))
        self._append(b'{"kind":"seen","message":' + log_bytes(message) + b"}")

    def flush(self) -> None:
        """Make every signature written so far durable; call before any of them leaves the node."""
        if self._unsynced and self._fd is not None:
            os.fsync(self._fd)
            self._unsynced = False

    def _write(self, line: dict) -> None:
        self._append(json.dumps(line, separators=(",", ":")).encode("utf-8"))

    def _append(self, line: bytes) -> None:
        """One line of JSON (without its newline) at the end of the log, durable with the next flush()."""
        if self._fd is None:
            self._fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        os.write(self._fd, line + b"\n")
        self._unsynced = True

    def close(self) -> None:
        self.flush()
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def _rewrite(self) -> None:
        """Compact the log to the current height's messages (atomically, then fsynced)."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        tmp = self.path.with_suffix(".tmp")
        lines = [
            {"kind": "height", "height": self.height},
            *(message_to_log(m) for m in self.signed.values()),
            *({"kind": "seen", "message": wire} for wire in self.seen),
        ]
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
        return isinstance(held, ConsensusVote) and held.block_hash == intent.block_hash
    return isinstance(held, ConsensusProposal) and (held.block_hash, held.valid_round) == (
        intent.block_hash,
        intent.valid_round,
    )
