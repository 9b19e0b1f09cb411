"""One height of consensus: the machine, its timers, its effects and the signing log.

One height, in order:
1. a ConsensusMachine is built with the validator set in force after the
   last block, and what this node already signed at that height (the
   signing log) is replayed into it, so a restarted node resumes exactly;
2. it starts once there is something to agree on: pending transactions in
   the pool, or a message from another validator at this height, so an idle
   chain produces no empty blocks;
3. the machine's effects are carried out: sign (logged first) and broadcast,
   schedule timeouts, and on a decision commit the block atomically.

The machine stays pure; everything here that touches the database runs on
the engine thread (node/core.py), the node's single writer.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from consortium_protocol.errors import ProtocolError
from ledger import budgets, pool
from ledger.chain import ChainBlock, build_block, check_block
from ledger.consensus.machine import PROPOSE, Broadcast, ConsensusMachine, Decide, Evidence, ScheduleTimeout, Timeouts
from ledger.consensus.messages import ConsensusProposal, ConsensusVote, certificate_entries
from ledger.execution import Execution
from ledger.reports import record_evidence
from ledger.services import DatabaseStateReader, LedgerState, already_included, commit_block
from node.dbwork import fresh_connection
from node.home import NodeHome
from node.inbox import Timeout
from node.intake import SignatureCheck, names_its_builder
from node.lagging import propose_timeout
from node.network import Network
from node.resume import resume_point
from node.signlog import SigningLog
from node.timers import Timers
from node.wire import message_to_wire

logger = logging.getLogger(__name__)


@dataclass
class HeightLog:
    """Every valid consensus message of the current height, as sent on the wire (proposals compact)."""

    height: int
    messages: dict[tuple, dict[str, Any]] = field(default_factory=dict)


class HeightDriver:
    """Runs the consensus machine of the current height and carries out what it asks for."""

    def __init__(
        self,
        home: NodeHome,
        state: LedgerState,
        *,
        timeouts: Timeouts,
        max_block_txs: int,
        network: Network,
        clock: Callable[[], float],
        catching_up: Callable[[], bool],
        on_decided: Callable[[ChainBlock, int], None],
        proposer_lags: Callable[[str], bool] = lambda key: False,
    ) -> None:
        self.chain_id = home.chain_id
        self.me = home.node_key.public_key
        self.state = state
        self.timeouts = timeouts
        self.max_block_txs = max_block_txs
        self.network = network
        self.clock = clock
        self.catching_up = catching_up  # never vote while catching up
        self.on_decided = on_decided  # a block was committed: (block, round)
        self.proposer_lags = proposer_lags  # its own status says it is heights behind (node/lagging.py)
        self.signing = SigningLog(home.path, home.node_key, home.chain_id)
        self.signatures = SignatureCheck()
        self.machine: ConsensusMachine | None = None
        self.timers = Timers()
        self.log = HeightLog(0)
        self.started = False
        self.resuming = False
        self.next_height_at = 0.0  # no start before this (the block interval after a commit)
        self._prepared: dict[str, Execution] = {}

    @property
    def live(self) -> ConsensusMachine:
        """The machine of the height begun last (begin() builds it before anything is fed)."""
        if self.machine is None:
            raise RuntimeError("no height has begun")
        return self.machine

    def reset(self, height: int) -> None:
        """Forget the last height: its prepared blocks, timers and messages."""
        self._prepared, self.started = {}, False
        self.timers.clear()
        self.log = HeightLog(height)

    def begin(self, height: int, validators: list[str]) -> list[dict[str, Any]]:
        """Build the machine of `height` and restore what was signed there; return what others had sent.

        What others sent before a crash (the signing log's "seen") is returned
        for the caller to check again like any peer message.
        """
        self.signatures.clear()
        self.machine = ConsensusMachine(
            chain_id=self.chain_id,
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
            self.machine.resume(**resume_point(replay, seen, chain_id=self.chain_id))
        self.resuming = bool(replay)
        for message in replay:
            self.signatures.remember(self.chain_id, message)
            self.feed(message)
        return seen

    def maybe_start(self, resuming: bool) -> None:
        """Start the machine once there is something to agree on (or a signed height to resume)."""
        if self.started or self.catching_up():
            return
        if not resuming and self.clock() < self.next_height_at:
            return
        if resuming or self.log.messages or _pool_has_work():
            self.started = True
            self.carry_out(self.live.start())

    def on_timeout(self, timeout: Timeout) -> None:
        self.carry_out(self.live.on_timeout(timeout.kind, timeout.height, timeout.round))

    def feed(self, message: ConsensusVote | ConsensusProposal) -> None:
        """A checked message of this height: logged, then given to the machine."""
        if not names_its_builder(message):
            return
        self.log.messages[message_key(message)] = message_to_wire(message)
        effects = self.live.on_vote(message) if isinstance(message, ConsensusVote) else self.live.on_proposal(message)
        self.carry_out(effects)

    def carry_out(self, effects: list) -> None:
        pending, outgoing = deque(effects), []
        while pending:
            effect = pending.popleft()
            if isinstance(effect, Broadcast):
                signed = self.signing.sign(effect.intent)
                if signed is None:
                    logger.warning("refused to sign %s: it conflicts with the signing log", effect.intent)
                    continue
                wire = message_to_wire(signed)
                self.signatures.remember(self.chain_id, signed)
                self.log.messages[message_key(signed)] = wire
                outgoing.append({"type": "consensus", "message": wire})
                machine_effects = (
                    self.live.on_vote(signed) if isinstance(signed, ConsensusVote) else self.live.on_proposal(signed)
                )
                pending.extend(machine_effects)
            elif isinstance(effect, ScheduleTimeout):
                seconds = effect.seconds
                if effect.kind == PROPOSE:  # a lagging round-0 proposer is not waited for (node/lagging.py)
                    lags = self.proposer_lags(self.live.proposer(effect.round))
                    seconds = propose_timeout(seconds, round_=effect.round, proposer_lags=lags)
                deadline = self.clock() + seconds
                self.timers.schedule(deadline, Timeout(effect.kind, effect.height, effect.round))
            elif isinstance(effect, Decide):
                self._commit(effect)
            elif isinstance(effect, Evidence):
                self._record_evidence(effect)
        # One fsync for every signature this input produced, before any leaves the node.
        self.signing.flush()
        for message in outgoing:
            self.network.broadcast(message)

    # ---- the machine's callbacks and effects ----------------------------------

    def _make_block(self) -> ChainBlock:
        height, round_ = self.live.height, self.live.round
        logged = self.signing.signed.get((height, round_, "proposal"))
        if isinstance(logged, ConsensusProposal) and logged.block is not None:
            return logged.block  # resuming after a crash: propose exactly what was signed
        return self._build_block()

    @fresh_connection
    def _build_block(self) -> ChainBlock:
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

    def _is_valid(self, block: ChainBlock) -> bool:
        if block.hash in self._prepared:
            return True
        return self._check_block(block)

    @fresh_connection
    def _check_block(self, block: ChainBlock) -> bool:
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
        block: ChainBlock = decision.block
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
        self.on_decided(block, decision.round)

    def _record_evidence(self, evidence: Evidence) -> None:
        first, second = evidence.first, evidence.second
        kind = first.type if isinstance(first, ConsensusVote) else "proposal"
        logger.warning(
            "equivocation: validator %s signed two %s messages at height %s round %s",
            first.sender[:16],
            kind,
            first.height,
            first.round,
            extra={"event": "equivocation", "height": first.height, "round": first.round},  # JSON log keys
        )
        _keep_evidence(
            height=first.height,
            round_=first.round,
            kind=kind,
            validator=first.sender,
            first=_evidence_wire(first),
            second=_evidence_wire(second),
        )


@fresh_connection
def _pool_has_work() -> bool:
    return pool.has_pending()


_keep_evidence = fresh_connection(record_evidence)


def _evidence_wire(message: ConsensusVote | ConsensusProposal) -> dict[str, Any]:
    """A signed message as evidence: a proposal's block is replaced by its hash, which is what was signed."""
    wire = message_to_wire(message)
    wire.pop("block", None)
    return wire


def wire_key(wire: dict[str, Any]) -> tuple:
    """The message_key of a message still on the wire (unparsed; it may be malformed)."""
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


def message_key(message: ConsensusVote | ConsensusProposal) -> tuple:
    """A message's key in the height log: one entry per signed message."""
    if isinstance(message, ConsensusVote):
        return ("vote", message.type, message.height, message.round, message.sender, message.block_hash)
    return ("proposal", message.height, message.round, message.sender, message.block_hash)
