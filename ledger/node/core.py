"""The engine's core: the node's single writer, running consensus height by height.

It lives in one thread of its own, so everything it does is plain
synchronous Django and the consensus machine stays pure. The asyncio side
(peer links, the channel layer) talks to it only through `inbox`, a
thread-safe queue, and receives what it must send through `broadcast`.

One height, in order:
1. a ConsensusMachine is built with the validator set in force after the
   last block, and what this node already signed at that height (the
   signing log) is replayed into it, so a restarted node resumes exactly;
2. it starts once there is something to agree on: pending transactions in
   the pool, or a message from another validator at this height, so an idle
   chain produces no empty blocks;
3. the machine's effects are carried out: sign (logged first) and broadcast,
   schedule timeouts, and on a decision commit the block atomically.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import queue
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.db import close_old_connections, connections

from ledger import pool
from ledger.chain import Block, build_block, check_block
from ledger.consensus.machine import Broadcast, ConsensusMachine, Decide, Evidence, ScheduleTimeout, Timeouts
from ledger.consensus.messages import Proposal, Vote, certificate_entries
from ledger.execution import Execution
from ledger.node.home import NodeHome
from ledger.node.signlog import SigningLog
from ledger.node.wire import message_to_wire
from ledger.protocol.errors import ProtocolError
from ledger.services import DatabaseStateReader, LedgerState, already_included, commit_block

logger = logging.getLogger(__name__)

IDLE_CHECK_SECONDS = 1.0  # how often an idle engine looks at the pool without a notification


@dataclass(frozen=True)
class Committed:
    """What the engine tells the rest of the node after each block."""

    height: int
    hash: str
    round: int
    tx_count: int
    time_ms: int


class EngineCore:
    def __init__(
        self,
        home: NodeHome,
        state: LedgerState,
        *,
        timeouts: Timeouts,
        max_block_txs: int,
        broadcast: Callable[[dict[str, Any]], None] = lambda wire: None,
        on_commit: Callable[[Committed], None] = lambda committed: None,
    ) -> None:
        self.home = home
        self.state = state
        self.timeouts = timeouts
        self.max_block_txs = max_block_txs
        self.broadcast = broadcast
        self.on_commit = on_commit
        self.me = home.node_key.public_key
        self.signing = SigningLog(home.path, home.node_key, home.chain_id)
        self.inbox: queue.Queue[tuple[str, Any]] = queue.Queue()
        self.machine: ConsensusMachine | None = None
        self._timers: list[tuple[float, int, str, int, int]] = []
        self._sequence = itertools.count()
        self._local: deque[Vote | Proposal] = deque()
        self._prepared: dict[str, Execution] = {}
        self._stopping = False

    # ---- called from other threads -------------------------------------

    def wake(self) -> None:
        self.inbox.put(("wake", None))

    def deliver(self, message: Vote | Proposal) -> None:
        self.inbox.put(("message", message))

    def stop(self) -> None:
        self.inbox.put(("stop", None))

    # ---- the engine thread -------------------------------------------------

    def run(self) -> None:
        try:
            while not self._stopping:
                self._run_height()
        finally:
            connections.close_all()

    def _run_height(self) -> None:
        height = self.state.tip.height + 1
        validators = self.state.membership.validators()
        self._prepared, self._timers = {}, []
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
        started = False
        while not self._stopping and not self.machine.done:
            if not started and (replay or self._pool_has_work()):
                started = True
                self._carry_out(self.machine.start())
            kind, payload = self._next_input(started)
            if kind == "message" and payload.height == height:
                self._feed(payload)
                if not started:
                    started = True
                    self._carry_out(self.machine.start())
            elif kind == "timeout":
                self._carry_out(self.machine.on_timeout(*payload))
            elif kind == "stop":
                self._stopping = True

    def _pool_has_work(self) -> bool:
        close_old_connections()
        return bool(pool.pending(1))

    def _next_input(self, started: bool) -> tuple[str, Any]:
        while True:
            if self._timers and self._timers[0][0] <= time.monotonic():
                _, _, kind, height, round_ = heapq.heappop(self._timers)
                return "timeout", (kind, height, round_)
            wait = self._timers[0][0] - time.monotonic() if self._timers else IDLE_CHECK_SECONDS
            try:
                return self.inbox.get(timeout=max(0.0, wait))
            except queue.Empty:
                if not started and not self._timers:
                    return "idle", None

    # ---- effects -------------------------------------------------------------

    def _feed(self, message: Vote | Proposal) -> None:
        if isinstance(message, Proposal) and message.block.header.get("proposer") != message.sender:
            return  # a block must name the validator that proposed it
        effects = self.machine.on_vote(message) if isinstance(message, Vote) else self.machine.on_proposal(message)
        self._carry_out(effects)

    def _carry_out(self, effects: list) -> None:
        pending = deque(effects)
        while pending:
            effect = pending.popleft()
            if isinstance(effect, Broadcast):
                signed = self.signing.sign(effect.intent)
                if signed is None:
                    logger.warning("refused to sign %s: it conflicts with the signing log", effect.intent)
                    continue
                self.broadcast(message_to_wire(signed))
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
                logger.warning(
                    "equivocation by validator %s at height %s", effect.first.sender[:16], effect.first.height
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
        run = self._prepared.get(block.hash)
        if run is None or not self._is_valid(block):
            raise RuntimeError("a decided block must have been validated")  # the machine checks valid(v)
        run = self._prepared[block.hash]
        commit_block(block, run, commit=certificate_entries(decision.certificate), round_=decision.round)
        self.state.advance(block, run)
        logger.info("committed block %s with %s transactions in round %s", block.height, len(block.txs), decision.round)
        self.on_commit(Committed(block.height, block.hash, decision.round, len(block.txs), block.header["time_ms"]))
