"""The engine's core: the node's single writer, running consensus height by height.

It lives in one thread of its own, so everything it does is plain
synchronous Django and the consensus machine stays pure. The asyncio side
(peer links, the channel layer) talks to it only through `inbox`, a
thread-safe queue, and receives what it must send through the `Network`
callbacks.

One height, in order:
1. a ConsensusMachine is built with the validator set in force after the
   last block, and what this node already signed at that height (the
   signing log) is replayed into it, so a restarted node resumes exactly;
2. it starts once there is something to agree on: pending transactions in
   the pool, or a message from another validator at this height, so an idle
   chain produces no empty blocks;
3. the machine's effects are carried out: sign (logged first) and broadcast,
   schedule timeouts, and on a decision commit the block atomically.

Gossip and catch-up (docs/peers.md) are handled here too, because they
need the same single view of the chain: consensus messages are relayed
once, the messages of the current height are re-sent to a peer that
(re)connects or reports fewer of them, and a node that sees a peer ahead
stops taking part in consensus until block sync has brought it level.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import queue
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from django.db import close_old_connections, connections
from django.utils import timezone

from consortium_protocol.errors import ProtocolError
from consortium_protocol.transactions import SignedTx
from ledger import pool
from ledger.chain import Block, build_block, check_block
from ledger.consensus.machine import Broadcast, ConsensusMachine, Decide, Evidence, ScheduleTimeout, Timeouts
from ledger.consensus.messages import Proposal, Vote, certificate_entries, verify_proposal, verify_vote
from ledger.execution import Execution
from ledger.models import Evidence as EvidenceRow
from ledger.models import NodeState, Transaction
from ledger.node.home import NodeHome
from ledger.node.signlog import SigningLog
from ledger.node.sync import MAX_BLOCKS_PER_RESPONSE, apply_synced_block, stored_blocks
from ledger.node.wire import message_from_wire, message_to_wire
from ledger.services import DatabaseStateReader, LedgerState, already_included, commit_block
from ledger.writes import write_transaction

logger = logging.getLogger(__name__)

IDLE_CHECK_SECONDS = 0.2  # how often an idle engine looks at the pool without a notification (one indexed query)
STATUS_SECONDS = 1.0  # how often the node tells its peers where it is
SYNC_RETRY_SECONDS = 3.0  # how long to wait for blocks before asking again
MAX_FUTURE_MESSAGES = 2000  # messages kept for the next height, so a fast peer is not lost
TX_GOSSIP_BATCH = 500


@dataclass(frozen=True)
class Committed:
    """What the engine tells the rest of the node after each block."""

    height: int
    hash: str
    round: int
    tx_count: int
    time_ms: int
    proposer: str


@dataclass
class Network:
    """How the core reaches peers; the asyncio side provides thread-safe versions."""

    broadcast: Callable[[dict[str, Any]], None] = lambda message: None
    send: Callable[[str, dict[str, Any]], None] = lambda peer, message: None


@dataclass
class SyncState:
    target: int = 0  # the highest committed height a peer reported
    peer: str | None = None
    asked_at: float = 0.0
    asked_from: int = 0

    def behind(self, height: int) -> bool:
        return self.target > height


@dataclass
class HeightLog:
    """Every valid consensus message of the current height, as sent on the wire."""

    height: int
    messages: dict[tuple, dict[str, Any]] = field(default_factory=dict)


class EngineCore:
    def __init__(
        self,
        home: NodeHome,
        state: LedgerState,
        *,
        timeouts: Timeouts,
        max_block_txs: int,
        network: Network | None = None,
        on_commit: Callable[[Committed], None] = lambda committed: None,
        block_interval: float = 0.0,
    ) -> None:
        self.home = home
        self.state = state
        self.timeouts = timeouts
        self.max_block_txs = max_block_txs
        self.network = network or Network()
        self.on_commit = on_commit
        # Like CometBFT's timeout_commit: a pause between heights, so that under
        # load a block gathers many transactions instead of one each.
        self.block_interval = block_interval
        self._next_height_at = 0.0
        self.me = home.node_key.public_key
        self.signing = SigningLog(home.path, home.node_key, home.chain_id)
        self.inbox: queue.Queue[tuple[str, Any]] = queue.Queue()
        self.machine: ConsensusMachine | None = None
        self.sync = SyncState()
        self._timers: list[tuple[float, int, str, int, int]] = []
        self._sequence = itertools.count()
        self._prepared: dict[str, Execution] = {}
        self._log = HeightLog(0)
        self._future: list[dict[str, Any]] = []
        self._started = False
        self._stopping = False
        self._last_status = 0.0
        self._gossiped_id = 0
        self.peer_links: list[dict[str, Any]] = []  # replaced wholesale by the asyncio side every second
        self._from_peers: deque[str] = deque(maxlen=20000)
        self._from_peers_set: set[str] = set()

    # ---- called from other threads -------------------------------------

    def wake(self) -> None:
        self.inbox.put(("wake", None))

    def deliver(self, peer: str, message: dict[str, Any]) -> None:
        self.inbox.put(("peer", (peer, message)))

    def peer_up(self, peer: str) -> None:
        self.inbox.put(("peer_up", peer))

    def note_from_peers(self, tx_ids: list[str]) -> None:
        """Transactions admitted from peers' gossip: pending work, and not ours to gossip again."""
        self.inbox.put(("from_peers", tx_ids))

    def stop(self) -> None:
        self.inbox.put(("stop", None))

    # ---- the engine thread -------------------------------------------------

    def run(self) -> None:
        try:
            while not self._stopping:
                self._run_height()
        finally:
            self.signing.close()
            connections.close_all()

    @property
    def height(self) -> int:
        return self.state.tip.height + 1

    def _run_height(self) -> None:
        height = self.height
        validators = self.state.membership.validators()
        self._prepared, self._timers, self._started = {}, [], False
        self._log = HeightLog(height)
        self.machine = ConsensusMachine(
            chain_id=self.home.chain_id,
            height=height,
            validators=validators,
            me=self.me,
            is_valid=self._is_valid,
            block_id=lambda block: block.hash,
            make_block=self._make_block,
            timeouts=self.timeouts,
        )
        replay = self.signing.begin_height(height) if self.me in validators else []
        for message in replay:
            self._feed(message)
        for wire in list(self.signing.seen) if self.me in validators else []:
            # What others sent us before a crash, so the machine regains its lock.
            self._consensus_from_peer(None, wire, replaying=True)
        future, self._future = self._future, []
        for wire in future:
            self._consensus_from_peer(None, wire)
        while not self._stopping and not self.machine.done and self.height == height:
            self._maybe_start(bool(replay))
            self._periodic()
            kind, payload = self._next_input()
            self._handle(kind, payload)

    def _maybe_start(self, resuming: bool) -> None:
        if self._started or self.sync.behind(self.state.tip.height):
            return  # never vote while catching up
        if not resuming and time.monotonic() < self._next_height_at:
            return
        if resuming or self._log.messages or self._pool_has_work():
            self._started = True
            self._carry_out(self.machine.start())

    def _handle(self, kind: str, payload: Any) -> None:
        if kind == "timeout":
            self._carry_out(self.machine.on_timeout(*payload))
        elif kind == "peer":
            self._from_peer(*payload)
        elif kind == "peer_up":
            self._send_status(payload)
            self._send_height_log(payload)
            self._send_pool(payload)
        elif kind == "from_peers":
            for tx_id in payload:
                self._remember_from_peer(tx_id)
        elif kind == "stop":
            self._stopping = True

    def _pool_has_work(self) -> bool:
        close_old_connections()
        return pool.has_pending()

    def _next_input(self) -> tuple[str, Any]:
        if self._timers and self._timers[0][0] <= time.monotonic():
            _, _, kind, height, round_ = heapq.heappop(self._timers)
            return "timeout", (kind, height, round_)
        until_timer = self._timers[0][0] - time.monotonic() if self._timers else IDLE_CHECK_SECONDS
        if not self._started and self._next_height_at > time.monotonic():
            until_timer = min(until_timer, self._next_height_at - time.monotonic())
        wait = max(0.0, min(until_timer, STATUS_SECONDS))
        try:
            return self.inbox.get(timeout=wait)
        except queue.Empty:
            return "idle", None

    def _periodic(self) -> None:
        now = time.monotonic()
        if now - self._last_status >= STATUS_SECONDS:
            self._last_status = now
            self._send_status(None)
            self._gossip_transactions()
            self._ask_for_blocks()
            self._report()

    def _report(self) -> None:
        """Publish where this node is for web workers (ledger.models.NodeState)."""
        close_old_connections()
        with write_transaction():
            self._write_report()

    def _write_report(self) -> None:
        NodeState.objects.update_or_create(
            pk=1,
            defaults={
                "node_key": self.me,
                "height": self.state.tip.height,
                "round": self.machine.round if self.machine else 0,
                "step": self.machine.step if self.machine and self._started else "idle",
                "syncing": self.sync.behind(self.state.tip.height),
                "sync_target": max(self.sync.target, self.state.tip.height),
                "links": self.peer_links,
                "updated_at": timezone.now(),
            },
        )

    # ---- consensus effects -------------------------------------------------

    def _feed(self, message: Vote | Proposal) -> None:
        if (
            isinstance(message, Proposal)
            and message.valid_round == -1
            and message.block.header.get("proposer") != message.sender
        ):
            # A fresh block names its proposer; a re-proposal (rule 2) carries
            # the block an earlier round's proposer built, so it cannot.
            return
        self._log.messages[_message_key(message)] = message_to_wire(message)
        effects = self.machine.on_vote(message) if isinstance(message, Vote) else self.machine.on_proposal(message)
        self._carry_out(effects)

    def _carry_out(self, effects: list) -> None:
        pending, outgoing = deque(effects), []
        while pending:
            effect = pending.popleft()
            if isinstance(effect, Broadcast):
                signed = self.signing.sign(effect.intent)
                if signed is None:
                    logger.warning("refused to sign %s: it conflicts with the signing log", effect.intent)
                    continue
                wire = message_to_wire(signed)
                self._log.messages[_message_key(signed)] = wire
                outgoing.append({"type": "consensus", "message": wire})
                machine_effects = (
                    self.machine.on_vote(signed) if isinstance(signed, Vote) else self.machine.on_proposal(signed)
                )
                pending.extend(machine_effects)
            elif isinstance(effect, ScheduleTimeout):
                deadline = time.monotonic() + effect.seconds
                heapq.heappush(self._timers, (deadline, next(self._sequence), effect.kind, effect.height, effect.round))
            elif isinstance(effect, Decide):
                self._commit(effect)
            elif isinstance(effect, Evidence):
                self._record_evidence(effect)
        # One fsync for every signature this input produced, before any leaves the node.
        self.signing.flush()
        for message in outgoing:
            self.network.broadcast(message)

    def _record_evidence(self, evidence: Evidence) -> None:
        first, second = evidence.first, evidence.second
        kind = first.type if isinstance(first, Vote) else "proposal"
        logger.warning(
            "equivocation: validator %s signed two %s messages at height %s round %s",
            first.sender[:16],
            kind,
            first.height,
            first.round,
            extra={"event": "equivocation", "height": first.height, "round": first.round},  # JSON log keys
        )
        close_old_connections()
        EvidenceRow.objects.get_or_create(
            height=first.height,
            round=first.round,
            kind=kind,
            validator=first.sender,
            defaults={"first": _evidence_wire(first), "second": _evidence_wire(second)},
        )

    def _make_block(self) -> Block:
        height, round_ = self.machine.height, self.machine.round
        logged = self.signing.signed.get((height, round_, "proposal"))
        if logged is not None:  # resuming after a crash: propose exactly what was signed
            return logged.block
        close_old_connections()
        txs = pool.pending(self.max_block_txs)
        block, run = build_block(
            txs,
            tip=self.state.tip,
            membership=self.state.membership,
            reader=DatabaseStateReader(),
            proposer=self.me,
            time_ms=int(time.time() * 1000),
        )
        self._prepared[block.hash] = run
        return block

    def _is_valid(self, block: Block) -> bool:
        if block.hash in self._prepared:
            return True
        close_old_connections()
        try:
            run = check_block(
                block,
                tip=self.state.tip,
                membership=self.state.membership,
                reader=DatabaseStateReader(),
                already_included=already_included,
            )
        except ProtocolError as invalid:
            logger.warning("block %s at height %s is invalid: %s", block.hash[:16], block.height, invalid.detail)
            return False
        self._prepared[block.hash] = run
        return True

    def _commit(self, decision: Decide) -> None:
        block: Block = decision.block
        if not self._is_valid(block):  # the machine decides only valid blocks; this cannot fail
            raise RuntimeError("a decided block must be valid")
        run = self._prepared[block.hash]
        commit_block(block, run, commit=certificate_entries(decision.certificate), round_=decision.round)
        self.state.advance(block, run)
        logger.info(
            "committed block %s with %s transactions in round %s",
            block.height,
            len(block.txs),
            decision.round,
            extra={"event": "commit", "height": block.height, "round": decision.round},  # JSON log keys
        )
        self._announce(block, decision.round)

    def _announce(self, block: Block, round_: int) -> None:
        self._next_height_at = time.monotonic() + self.block_interval
        self.on_commit(
            Committed(
                block.height, block.hash, round_, len(block.txs), block.header["time_ms"], block.header["proposer"]
            )
        )
        self._send_status(None)

    # ---- messages from peers -------------------------------------------------

    def _from_peer(self, peer: str, message: Any) -> None:
        if not isinstance(message, dict):
            return
        kind = message.get("type")
        try:
            if kind == "consensus":
                self._consensus_from_peer(peer, message.get("message"))
            elif kind == "status":
                self._status_from_peer(peer, message)
            elif kind == "get_blocks":
                self._serve_blocks(peer, message)
            elif kind == "blocks":
                self._blocks_from_peer(peer, message)
        except (ProtocolError, KeyError, TypeError, ValueError) as bad:
            logger.info("dropped a malformed %s message from %s: %s", kind, peer[:12] if peer else "-", bad)

    def _consensus_from_peer(self, peer: str | None, wire: Any, *, replaying: bool = False) -> None:
        if not isinstance(wire, dict) or not isinstance(wire.get("height"), int):
            raise ProtocolError("bad_message", "a consensus message needs a height")
        height = wire["height"]
        if height == self.height + 1:
            if len(self._future) < MAX_FUTURE_MESSAGES:
                self._future.append(wire)
            return
        if height != self.height or _wire_key(wire) in self._log.messages:
            # Stale, too far ahead (status and block sync cover it), or a copy
            # we already hold: dropped before the costly parse of a block.
            return
        message = message_from_wire(wire, chain_id=self.home.chain_id, verified=self._already_verified)
        key = _message_key(message)
        if key in self._log.messages or not self._authentic(message):
            return
        if not replaying and self.me in self.machine.validators:
            self.signing.record_seen(wire)
        self._feed(message)
        # Relay once: a message one correct node received reaches every correct node.
        self.network.broadcast({"type": "consensus", "message": wire})
        self._maybe_start(False)

    def _authentic(self, message: Vote | Proposal) -> bool:
        if message.sender not in self.machine.validators:
            return False
        if isinstance(message, Vote):
            return verify_vote(self.home.chain_id, message)
        return verify_proposal(self.home.chain_id, message)

    def _already_verified(self, txs: list[SignedTx]) -> set[str]:
        close_old_connections()
        return pool.verified_before(txs)

    def _status_from_peer(self, peer: str, message: dict[str, Any]) -> None:
        committed, held = message["height"], message.get("messages", 0)
        if not isinstance(committed, int) or not isinstance(held, int):
            raise ProtocolError("bad_message", "status height and messages are integers")
        if committed > self.sync.target:
            self.sync.target, self.sync.peer = committed, peer
        if committed > self.state.tip.height:
            self._ask_for_blocks()
        elif committed == self.state.tip.height and held < len(self._log.messages):
            self._send_height_log(peer)

    def _serve_blocks(self, peer: str, message: dict[str, Any]) -> None:
        start, count = message["from"], message.get("count", MAX_BLOCKS_PER_RESPONSE)
        if not isinstance(start, int) or not isinstance(count, int) or start < 1:
            raise ProtocolError("bad_message", "get_blocks needs integer from >= 1 and count")
        close_old_connections()
        entries = stored_blocks(start, count)
        if entries:
            self.network.send(peer, {"type": "blocks", "blocks": entries})

    def _blocks_from_peer(self, peer: str, message: dict[str, Any]) -> None:
        entries = message["blocks"]
        if not isinstance(entries, list):
            raise ProtocolError("bad_message", "blocks is a list")
        close_old_connections()
        applied = 0
        for entry in entries:
            if isinstance(entry, dict) and isinstance(entry.get("block"), dict):
                header = entry["block"].get("header", {})
                if isinstance(header, dict) and header.get("height", 0) <= self.state.tip.height:
                    continue  # already have it
            block = apply_synced_block(self.state, entry, verified=self._already_verified)
            applied += 1
            logger.info(
                "block sync: applied block %s of %s from %s",
                block.height,
                self.sync.target,
                peer[:12],
                extra={"event": "sync", "height": block.height, "round": entry["round"]},  # JSON log keys
            )
            self._announce(block, entry["round"])
        if applied:
            self.sync.asked_at = 0.0
            self._ask_for_blocks()

    def _ask_for_blocks(self) -> None:
        tip = self.state.tip.height
        if not self.sync.behind(tip) or self.sync.peer is None:
            return
        now = time.monotonic()
        if self.sync.asked_from == tip + 1 and now - self.sync.asked_at < SYNC_RETRY_SECONDS:
            return
        self.sync.asked_at, self.sync.asked_from = now, tip + 1
        self.network.send(self.sync.peer, {"type": "get_blocks", "from": tip + 1, "count": MAX_BLOCKS_PER_RESPONSE})

    def _remember_from_peer(self, tx_id: str) -> None:
        if len(self._from_peers) == self._from_peers.maxlen:
            self._from_peers_set.discard(self._from_peers[0])
        self._from_peers.append(tx_id)
        self._from_peers_set.add(tx_id)

    # ---- messages to peers ---------------------------------------------------

    def _send_status(self, peer: str | None) -> None:
        status = {
            "type": "status",
            "height": self.state.tip.height,
            "round": self.machine.round if self.machine else 0,
            "messages": len(self._log.messages),
        }
        if peer is None:
            self.network.broadcast(status)
        else:
            self.network.send(peer, status)

    def _send_height_log(self, peer: str) -> None:
        for wire in list(self._log.messages.values()):
            self.network.send(peer, {"type": "consensus", "message": wire})

    def _send_pool(self, peer: str) -> None:
        """A (re)connected peer may have missed our earlier gossip: send it what is still pending."""
        close_old_connections()
        rows = pool.pending(TX_GOSSIP_BATCH * 4)
        for start in range(0, len(rows), TX_GOSSIP_BATCH):
            envelopes = [tx.envelope() for tx in rows[start : start + TX_GOSSIP_BATCH]]
            self.network.send(peer, {"type": "txs", "envelopes": envelopes})

    def _gossip_transactions(self) -> None:
        """Send transactions this node admitted itself to every peer, in batches."""
        close_old_connections()
        rows = (
            Transaction.objects.filter(id__gt=self._gossiped_id, status=Transaction.Status.PENDING)
            .order_by("id")
            .values_list("id", "tx_id", "body", "signature")[:TX_GOSSIP_BATCH]
        )
        from consortium_protocol.canonical import loads_strict

        envelopes = []
        for row_id, tx_id, body, signature in rows:
            self._gossiped_id = row_id
            if tx_id not in self._from_peers_set:
                envelopes.append({"body": loads_strict(body), "signature": signature})
        if envelopes:
            self.network.broadcast({"type": "txs", "envelopes": envelopes})


def _evidence_wire(message: Vote | Proposal) -> dict[str, Any]:
    """A signed message as evidence: a proposal's block is replaced by its hash, which is what was signed."""
    wire = message_to_wire(message)
    wire.pop("block", None)
    return wire


def _wire_key(wire: dict[str, Any]) -> tuple:
    """The _message_key of a message still on the wire (unparsed; it may be malformed)."""
    if wire.get("kind") == "vote":
        return (
            "vote",
            wire.get("type"),
            wire.get("height"),
            wire.get("round"),
            wire.get("sender"),
            wire.get("block_hash"),
        )
    return ("proposal", wire.get("height"), wire.get("round"), wire.get("sender"), wire.get("block_hash"))


def _message_key(message: Vote | Proposal) -> tuple:
    if isinstance(message, Vote):
        return ("vote", message.type, message.height, message.round, message.sender, message.block_hash)
    return ("proposal", message.height, message.round, message.sender, message.block_hash)
