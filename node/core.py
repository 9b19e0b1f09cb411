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
(re)connects or reports fewer of them, and a node that block sync proves
behind (verified blocks arriving) stops taking part in consensus until it
is level.

Every peer message is checked for shape, bounds and signature before it is
stored, logged, relayed or replayed (`intake`); next-height messages wait in
a budget per validator (`future`), far-round ones in a bound per validator
(`rounds`), and a peer's claimed height is only a hint (`sync.SyncTracker`).
A bad message is dropped; the thread's exit (engine.py) is for the node's
own faults only.
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
from datetime import timedelta
from typing import Any

from django.db import close_old_connections, connections
from django.utils import timezone

from common.writes import write_transaction
from consortium_protocol.errors import ProtocolError
from consortium_protocol.transactions import SignedTx
from ledger import budgets, pool
from ledger.chain import Block, build_block, check_block
from ledger.consensus.machine import Broadcast, ConsensusMachine, Decide, Evidence, ScheduleTimeout, Timeouts
from ledger.consensus.messages import Proposal, Vote, certificate_entries
from ledger.execution import Execution
from ledger.models import Evidence as EvidenceRow
from ledger.models import NodeState
from ledger.services import DatabaseStateReader, LedgerState, already_included, commit_block
from node.future import FutureBuffer
from node.home import NodeHome
from node.inbox import Inbox
from node.intake import SignatureCheck, check_for_height, parse_consensus
from node.resume import resume_point
from node.rounds import FarRounds
from node.signlog import SigningLog
from node.sync import (
    MAX_BLOCKS_PER_RESPONSE,
    SyncTracker,
    apply_synced_block,
    blocks_request,
    stored_blocks,
)
from node.wire import message_to_wire

logger = logging.getLogger(__name__)

IDLE_CHECK_SECONDS = 0.2  # how often an idle engine looks at the pool without a notification (one indexed query)
STATUS_SECONDS = 1.0  # how often the node tells its peers where it is
MAX_STATUS_MESSAGES = 10**6  # a status's "messages" count beyond this is a lie
# A peer at our height whose status shows fewer messages than we hold gets our
# whole height log again only once it has lagged this long: a lower count is
# usually just messages in flight, and under load re-sending every proposal of
# the height each second would swamp the links it is meant to repair.
HEIGHT_LOG_LAG_SECONDS = 3.0
# What a malformed peer message can raise while it is checked; anything else is the node's own fault.
MALFORMED = (ProtocolError, KeyError, TypeError, ValueError, AttributeError, IndexError, OverflowError)
# A peer whose messages fail the checks this often is disconnected (peers.frames.MISBEHAVING). An honest
# node relays only messages that passed the same checks, so its links never get near this; a flood's does.
MISBEHAVIOUR_LIMIT = 20
MISBEHAVIOUR_WINDOW_SECONDS = 60.0
GOSSIP_BATCHES_PER_TICK = 4  # each at most budgets.GOSSIP_BATCH_BYTES and GOSSIP_BATCH_COUNT
MEMBERSHIP_CHANGES = frozenset({"member.revoke", "gov.propose", "gov.vote"})  # what can end a signer's rights
REOFFER_SECONDS = 5.0  # how often pending transactions are offered again to every peer
REOFFER_AGE_SECONDS = 5.0  # only those pooled at least this long ago (the others are fresh gossip)
# How often pending transactions of inactive signers are ended (signer_inactive) besides after each
# membership change: an admission that read the signer as active just before the change committed
# inserts its rows after that block's sweep, and nothing else would ever end them.
DOOMED_SWEEP_SECONDS = 5.0


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

    broadcast: Callable[..., None] = lambda message, exclude=None: None  # exclude: a peer to leave out
    send: Callable[[str, dict[str, Any]], None] = lambda peer, message: None
    disconnect: Callable[[str, str], None] = lambda peer, reason: None  # close a misbehaving peer's link


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
        clock: Callable[[], float] = time.monotonic,
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
        self.clock = clock
        self._next_height_at = 0.0
        self.me = home.node_key.public_key
        self.signing = SigningLog(home.path, home.node_key, home.chain_id)
        self.inbox = Inbox()
        self.machine: ConsensusMachine | None = None
        self.sync = SyncTracker()
        self.signatures = SignatureCheck()
        self.future = FutureBuffer()
        self.far_rounds = FarRounds()
        self._timers: list[tuple[float, int, str, int, int]] = []
        self._sequence = itertools.count()
        self._prepared: dict[str, Execution] = {}
        self._log = HeightLog(0)
        self._started = False
        self._resuming = False
        self._stopping = False
        self._last_status = 0.0
        self._gossiped_id = 0
        self._last_reoffer = self.clock()
        self._last_sweep = self.clock()
        self._reoffered_id = 0  # the re-offer walks the pool from here, then starts over
        self.peer_links: list[dict[str, Any]] = []  # replaced wholesale by the asyncio side every second
        self._misbehaviour: dict[str, deque[float]] = {}  # peer -> when its recent malformed messages came
        self._lagging_since: dict[str, float] = {}  # peer -> when its status first showed it missing messages
        self._from_peers: deque[str] = deque(maxlen=20000)
        self._from_peers_set: set[str] = set()

    # ---- called from other threads -------------------------------------

    def wake(self) -> None:
        self.inbox.put(("wake", None))

    def deliver(self, peer: str, message: dict[str, Any]) -> bool:
        """Queue a peer's message; False when that peer's share of the inbox is full (it is dropped)."""
        return self.inbox.put_from_peer(peer, message)

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
            self._end_doomed_transactions()  # a crash may have come between a commit and this
            while not self._stopping:
                self._run_height()
        finally:
            self.signing.close()
            connections.close_all()

    @property
    def height(self) -> int:
        return self.state.tip.height + 1

    def _run_height(self) -> None:
        height = self.begin_height()
        while not self._stopping and not self.machine.done and self.height == height:
            self.step(*self._next_input())

    def begin_height(self) -> int:
        """Build the machine of the next height, restore what was signed there, replay what was kept."""
        height = self.height
        validators = self.state.membership.validators()
        self._prepared, self._timers, self._started = {}, [], False
        self._log = HeightLog(height)
        self._lagging_since.clear()
        if not validators:
            self._serve_without_validators()
            return height
        self.signatures.clear()
        self.far_rounds.clear()
        self.machine = ConsensusMachine(
            chain_id=self.home.chain_id,
            height=height,
            validators=validators,
            me=self.me,
            is_valid=self._is_valid,
            block_id=lambda block: block.hash,
            make_block=self._make_block,
            timeouts=self.timeouts,
            verifier=self.signatures,
        )
        replay = self.signing.begin_height(height) if self.me in validators else []
        seen = list(self.signing.seen) if self.me in validators else []
        if replay:
            # Lock, valid value and round from our own signatures, before anything new is signed.
            self.machine.resume(**resume_point(replay, seen, chain_id=self.home.chain_id))
        self._resuming = bool(replay)
        for message in replay:
            self.signatures.remember(self.home.chain_id, message)
            self._feed(message)
        for wire in seen:
            # What others sent us before a crash, checked again like any peer message.
            self._guarded(self._consensus_from_peer, None, wire, replaying=True)
        for message, wire in self.future.take(height):
            self._guarded(self._admit, None, message, wire)
        return height

    def step(self, kind: str, payload: Any) -> None:
        """One input of the engine loop (the simulation drives this directly)."""
        self._maybe_start(self._resuming)
        self._periodic()
        self._handle(kind, payload)
        self._release_far_rounds()

    def _guarded(self, handler: Callable[..., None], peer: str | None, *args: Any, **kwargs: Any) -> None:
        try:
            handler(peer, *args, **kwargs)
        except MALFORMED as bad:
            logger.info("dropped a malformed message from %s: %s", peer[:12] if peer else "the log", bad)
            if peer is not None:
                self._count_misbehaviour(peer)

    def _count_misbehaviour(self, peer: str) -> None:
        now = self.clock()
        recent = self._misbehaviour.setdefault(peer, deque(maxlen=MISBEHAVIOUR_LIMIT))
        recent.append(now)
        if len(recent) == MISBEHAVIOUR_LIMIT and now - recent[0] <= MISBEHAVIOUR_WINDOW_SECONDS:
            del self._misbehaviour[peer]
            self.network.disconnect(
                peer, f"{MISBEHAVIOUR_LIMIT} malformed messages within {recent[-1] - recent[0]:.0f} s"
            )

    def _serve_without_validators(self) -> None:
        """No validator is left, so no block can ever be certified again: stay up, serve, never exit.

        PROTOCOL.md section 3 (`no_validator_left`) keeps a chain from getting
        here, but one may predate the rule. Exiting would only crash-loop the
        node under its supervisor, and its committed chain stays readable and
        can still be synced by peers.
        """
        logger.error("the validator set after block %s is empty: no block can commit any more", self.state.tip.height)
        self.machine = None
        while not self._stopping:
            now = time.monotonic()
            if now - self._last_status >= STATUS_SECONDS:
                self._last_status = now
                self._send_status(None)
                self._report()
            kind, payload = self._next_input()
            if kind == "stop":
                self._stopping = True
            elif kind == "peer" and isinstance(payload[1], dict) and payload[1].get("type") == "get_blocks":
                self._from_peer(*payload)

    def _maybe_start(self, resuming: bool) -> None:
        if self._started or self.sync.catching_up(self.state.tip.height, self.clock()):
            return  # never vote while catching up
        if not resuming and self.clock() < self._next_height_at:
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
        now = self.clock()
        if self._timers and self._timers[0][0] <= now:
            _, _, kind, height, round_ = heapq.heappop(self._timers)
            return "timeout", (kind, height, round_)
        until_timer = self._timers[0][0] - now if self._timers else IDLE_CHECK_SECONDS
        if not self._started and self._next_height_at > now:
            until_timer = min(until_timer, self._next_height_at - now)
        wait = max(0.0, min(until_timer, STATUS_SECONDS))
        try:
            return self.inbox.get(timeout=wait)
        except queue.Empty:
            return "idle", None

    def _periodic(self) -> None:
        now = self.clock()
        if now - self._last_status >= STATUS_SECONDS:
            self._last_status = now
            self._send_status(None)
            self._gossip_transactions()
            self._reoffer_pending(now)
            self._ask_for_blocks()
            self._report()
        if now - self._last_sweep >= DOOMED_SWEEP_SECONDS:
            self._last_sweep = now
            self._end_doomed_transactions()

    def _report(self) -> None:
        """Publish where this node is for web workers (ledger.models.NodeState)."""
        close_old_connections()
        with write_transaction():
            self._write_report()

    def _write_report(self) -> None:
        tip, catching_up = self.state.tip.height, self._catching_up()
        NodeState.objects.update_or_create(
            pk=1,
            defaults={
                "node_key": self.me,
                "height": tip,
                "round": self.machine.round if self.machine else 0,
                "step": self.machine.step if self.machine and self._started else "idle",
                "syncing": catching_up,
                "sync_target": self.sync.target(tip) if catching_up else tip,
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
                self.signatures.remember(self.home.chain_id, signed)
                self._log.messages[_message_key(signed)] = wire
                outgoing.append({"type": "consensus", "message": wire})
                machine_effects = (
                    self.machine.on_vote(signed) if isinstance(signed, Vote) else self.machine.on_proposal(signed)
                )
                pending.extend(machine_effects)
            elif isinstance(effect, ScheduleTimeout):
                deadline = self.clock() + effect.seconds
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
        txs = pool.pending(self.max_block_txs, max_bytes=budgets.BLOCK_TX_BYTES)
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
        if any(tx.type in MEMBERSHIP_CHANGES for tx in block.txs):  # it may have revoked a key or suspended an org
            self._end_doomed_transactions()
        self._next_height_at = self.clock() + self.block_interval
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
        if not isinstance(kind, str):
            return
        handler = {
            "consensus": self._consensus_message,
            "status": self._status_from_peer,
            "get_blocks": self._serve_blocks,
            "blocks": self._blocks_from_peer,
        }.get(kind)
        if handler is not None:
            self._guarded(handler, peer, message)

    def _consensus_message(self, peer: str, message: dict[str, Any]) -> None:
        self._consensus_from_peer(peer, message.get("message"))

    def _consensus_from_peer(self, peer: str | None, wire: Any, *, replaying: bool = False) -> None:
        if not isinstance(wire, dict):
            raise ProtocolError("bad_message", "a consensus message is an object")
        height = wire.get("height")
        if height == self.height + 1 and not replaying:
            # Parsed and signature-checked now; kept within its signer's budget (future.py).
            message = parse_consensus(wire, chain_id=self.home.chain_id, verified=self._already_verified)
            if message.sender not in self.machine.validators:
                raise ProtocolError("not_validator", "the sender is not a validator")
            self.signatures.check(self.home.chain_id, message)
            self.future.add(height, message, wire)
            return
        if height != self.height or _wire_key(wire) in self._log.messages:
            # Stale, too far ahead (status and block sync cover it), or a copy
            # we already hold: dropped before the costly parse of a block.
            return
        message = parse_consensus(wire, chain_id=self.home.chain_id, verified=self._already_verified)
        self._admit(peer, message, wire, replaying=replaying)

    def _admit(
        self, peer: str | None, message: Vote | Proposal, wire: dict[str, Any], *, replaying: bool = False
    ) -> None:
        """A parsed message of the current height: checked, then bounded by round, then kept, fed and relayed."""
        if message.height != self.height or _message_key(message) in self._log.messages:
            return
        check_for_height(message, validators=self.machine.validators, proposer=self.machine.proposer)
        self.signatures.check(self.home.chain_id, message)
        if self.far_rounds.is_far(message.round, self.machine.round):
            self.far_rounds.hold(message, wire)  # not logged, not relayed (rounds.py)
            return
        self._accept(message, wire, replaying=replaying, origin=peer)

    def _accept(
        self, message: Vote | Proposal, wire: dict[str, Any], *, replaying: bool = False, origin: str | None = None
    ) -> None:
        if _message_key(message) in self._log.messages:
            return
        if not replaying and self.me in self.machine.validators:
            self.signing.record_seen(wire)
        self._feed(message)
        # Relay once: a message one correct node received reaches every correct node.
        # Not back to the peer it came from, which has it.
        self.network.broadcast({"type": "consensus", "message": wire}, exclude=origin)
        self._maybe_start(False)

    def _release_far_rounds(self) -> None:
        """Feed far-round messages that are now within reach, or that f+1 validators vouch for."""
        if not len(self.far_rounds) or self.machine is None or self.machine.done:
            return
        third = len(self.machine.validators) // 3 + 1
        for message, wire in self.far_rounds.release(self.machine.round, third):
            if self.machine.done or self.height != message.height:
                return
            self._accept(message, wire)

    def _already_verified(self, txs: list[SignedTx]) -> set[str]:
        close_old_connections()
        return pool.verified_before(txs)

    def _catching_up(self) -> bool:
        return self.sync.catching_up(self.state.tip.height, self.clock())

    def _status_from_peer(self, peer: str, message: dict[str, Any]) -> None:
        committed, held = message.get("height"), message.get("messages", 0)
        for value in (committed, held):
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise ProtocolError("bad_message", "status height and messages are non-negative integers")
        if held > MAX_STATUS_MESSAGES:
            raise ProtocolError("bad_message", "status messages is out of range")
        tip = self.state.tip.height
        if committed > tip:
            self.sync.claim(peer, committed, self.clock())  # a hint (sync.py)
            self._ask_for_blocks()
        else:
            self.sync.forget(peer)
            if committed == tip and held < len(self._log.messages):
                self._repair_lagging_peer(peer)
            else:
                self._lagging_since.pop(peer, None)

    def _repair_lagging_peer(self, peer: str) -> None:
        """Send our height log to a peer lacking messages for HEIGHT_LOG_LAG_SECONDS, then wait as long again."""
        now = self.clock()
        since = self._lagging_since.setdefault(peer, now)
        if now - since >= HEIGHT_LOG_LAG_SECONDS:
            self._lagging_since[peer] = now
            self._send_height_log(peer)

    def _serve_blocks(self, peer: str, message: dict[str, Any]) -> None:
        """Blocks for a peer: only when the node runs without Engine (engine.py serves them off this thread)."""
        start, count = blocks_request(message)
        if start > self.state.tip.height:
            return
        close_old_connections()
        entries = stored_blocks(start, count)
        if entries:
            self.network.send(peer, {"type": "blocks", "blocks": entries})

    def _blocks_from_peer(self, peer: str, message: dict[str, Any]) -> None:
        entries = message.get("blocks")
        if not isinstance(entries, list) or len(entries) > MAX_BLOCKS_PER_RESPONSE:
            raise ProtocolError("bad_message", f"blocks is a list of at most {MAX_BLOCKS_PER_RESPONSE}")
        if peer is None or peer != self.sync.peer:
            return  # unsolicited: we asked someone else, or nobody
        close_old_connections()
        applied = 0
        try:
            for entry in entries:
                if isinstance(entry, dict) and isinstance(entry.get("block"), dict):
                    header = entry["block"].get("header")
                    height = header.get("height") if isinstance(header, dict) else None
                    if isinstance(height, int) and height <= self.state.tip.height:
                        continue  # already have it
                block = apply_synced_block(self.state, entry, verified=self._already_verified)
                applied += 1
                self.sync.delivered(peer, self.clock())
                logger.info(
                    "block sync: applied block %s of %s from %s",
                    block.height,
                    self.sync.target(block.height),
                    peer[:12],
                    extra={"event": "sync", "height": block.height, "round": entry["round"]},  # JSON log keys
                )
                self._announce(block, entry["round"])
        except MALFORMED:
            self.sync.failed(peer, self.clock())  # a reply that does not verify: ask someone else
            raise
        finally:
            if applied:
                self._ask_for_blocks()

    def _ask_for_blocks(self) -> None:
        request = self.sync.next_request(self.state.tip.height, self.clock())
        if request is not None:
            peer, start = request
            self.network.send(peer, {"type": "get_blocks", "from": start, "count": MAX_BLOCKS_PER_RESPONSE})

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
        """A (re)connected peer may have missed our earlier gossip: send it the oldest of what is pending."""
        close_old_connections()
        for batch in self._gossip_batches(pool.offers(**self._tick_budget())):
            self.network.send(peer, batch)

    def _gossip_transactions(self) -> None:
        """Send transactions this node admitted itself to every peer, in batches packed by bytes."""
        close_old_connections()
        fresh = pool.offers(after=self._gossiped_id, **self._tick_budget())
        if fresh:
            self._gossiped_id = fresh[-1].row_id
        ours = [offer for offer in fresh if offer.tx_id not in self._from_peers_set]
        for batch in self._gossip_batches(ours):
            self.network.broadcast(batch)

    def _reoffer_pending(self, now: float) -> None:
        """Offer pending transactions again until a block includes them (every 202 ends).

        A batch lost to a full link, a peer that was down, or a validator
        that restarted would otherwise leave them pending for good. Every
        REOFFER_SECONDS, one gossip batch of transactions pooled more than
        REOFFER_AGE_SECONDS ago goes to every peer, walking the whole pool
        and starting over; a peer that knows them pays a tx id lookup each.
        """
        if now - self._last_reoffer < REOFFER_SECONDS:
            return
        self._last_reoffer = now
        close_old_connections()
        old = timezone.now() - timedelta(seconds=REOFFER_AGE_SECONDS)
        budget = {"max_bytes": budgets.GOSSIP_BATCH_BYTES, "max_count": budgets.GOSSIP_BATCH_COUNT}
        offers = pool.offers(after=self._reoffered_id, received_before=old, **budget)
        if not offers and self._reoffered_id:
            self._reoffered_id = 0  # the end of the pool: start over next time
            return
        if offers:
            self._reoffered_id = offers[-1].row_id
        for batch in self._gossip_batches(offers):
            self.network.broadcast(batch)

    @staticmethod
    def _tick_budget() -> dict[str, int]:
        return {
            "max_bytes": budgets.GOSSIP_BATCH_BYTES * GOSSIP_BATCHES_PER_TICK,
            "max_count": budgets.GOSSIP_BATCH_COUNT * GOSSIP_BATCHES_PER_TICK,
        }

    @staticmethod
    def _gossip_batches(offers: list[pool.Offer]) -> list[dict[str, Any]]:
        packed = budgets.batches(
            offers,
            lambda offer: offer.size + 1,
            max_bytes=budgets.GOSSIP_BATCH_BYTES,
            max_count=budgets.GOSSIP_BATCH_COUNT,
        )
        return [{"type": "txs", "envelopes": [offer.envelope for offer in batch]} for batch in packed]

    def _end_doomed_transactions(self) -> None:
        """Reject what can never commit: pending transactions of revoked keys and inactive organisations."""
        close_old_connections()
        ended = pool.reject_inactive_signers()
        if ended:
            logger.info("rejected %s pending transactions whose signer can never sign again (signer_inactive)", ended)


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
