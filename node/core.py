"""The engine's core: the node's single writer, running consensus height by height.

It lives in one thread of its own, so everything it does is plain
synchronous Django and the consensus machine stays pure. The asyncio side
(node/host.py: peer links, the channel layer) talks to it only through
`inbox`, a thread-safe queue of typed inputs (node/inbox.py), and receives
what it must send through the `Network` callbacks.

`EngineCore` is the loop that takes one input at a time and hands it to the
collaborator it concerns, all sharing one view of the chain:
- `HeightDriver` (node/height.py): the machine of the current height, its
  timers and effects, and the signing log;
- `ConsensusRelay` (node/relay.py): peers' consensus messages checked,
  bounded, fed and relayed once, and the height log re-sent to peers that
  lack it;
- `BlockSync` (node/catchup.py): catching up on blocks peers hold; a node
  that block sync proves behind stops voting until it is level;
- `TxGossip` (node/gossip.py): the pool offered to peers;
- `Misbehaviour` (node/misbehaviour.py): a bad message is dropped and
  counted against its link. The thread's exit (node/host.py) is for the
  node's own faults only.
Once a second the core tells peers where it is and writes its NodeState
report (ledger/reports.py) for web workers.
"""

from __future__ import annotations

import logging
import queue
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeGuard

from django.db import connections

from consortium_protocol.errors import ProtocolError
from ledger.chain import ChainBlock
from ledger.consensus.machine import ConsensusMachine, Timeouts
from ledger.models import PeerLink
from ledger.reports import report_node_state
from ledger.services import LedgerState
from node.catchup import BlockSync
from node.dbwork import fresh_connection
from node.gossip import TxGossip
from node.height import HeightDriver
from node.home import NodeHome
from node.inbox import FromPeers, Idle, Inbox, Input, PeerMessage, PeerUp, Stop, Timeout, Wake
from node.lagging import PeerHeights
from node.misbehaviour import Misbehaviour
from node.network import Network
from node.relay import ConsensusRelay
from node.signlog import SigningLog
from node.sync import SyncTracker

logger = logging.getLogger(__name__)

IDLE_CHECK_SECONDS = 0.2  # how often an idle engine looks at the pool without a notification (one indexed query)
STATUS_SECONDS = 1.0  # how often the node tells its peers where it is
MAX_STATUS_MESSAGES = 10**6  # a status's "messages" count beyond this is a lie


@dataclass(frozen=True)
class Committed:
    """What the engine tells the rest of the node after each block."""

    height: int
    hash: str
    round: int
    tx_count: int
    time_ms: int
    proposer: str


class EngineCore:
    """The engine thread's loop over its inbox, and what it reports once a second."""

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
        self.network = network or Network()
        self.on_commit = on_commit
        # Like CometBFT's timeout_commit: a pause between heights, so that under
        # load a block gathers many transactions instead of one each.
        self.block_interval = block_interval
        self.clock = clock
        self.me = home.node_key.public_key
        self.inbox = Inbox()
        self.sync = SyncTracker()
        self.peer_heights = PeerHeights()  # what each peer's status claims it committed (node/lagging.py)
        self.guard = Misbehaviour(clock=clock, network=self.network)
        self.catchup = BlockSync(state, tracker=self.sync, network=self.network, clock=clock, on_applied=self._announce)
        self.driver = HeightDriver(
            home,
            state,
            timeouts=timeouts,
            max_block_txs=max_block_txs,
            network=self.network,
            clock=clock,
            catching_up=self.catchup.catching_up,
            on_decided=self._announce,
            proposer_lags=lambda key: self.peer_heights.lags(key, self.state.tip.height),
        )
        self.relay = ConsensusRelay(self.driver, network=self.network, clock=clock, guard=self.guard)
        self.gossip = TxGossip(network=self.network, clock=clock)
        self._stopping = False
        self._last_status = 0.0
        self.peer_links: list[PeerLink] = []  # replaced wholesale by the asyncio side every second

    @property
    def machine(self) -> ConsensusMachine | None:
        """The current height's machine (None while no validator is left)."""
        return self.driver.machine

    @property
    def signing(self) -> SigningLog:
        return self.driver.signing

    @property
    def height(self) -> int:
        return self.state.tip.height + 1

    # ---- called from other threads -------------------------------------

    def wake(self) -> None:
        self.inbox.put(Wake())

    def deliver(self, peer: str, message: dict[str, Any]) -> bool:
        """Queue a peer's message; False when that peer's share of the inbox is full (it is dropped)."""
        return self.inbox.put_from_peer(peer, message)

    def peer_up(self, peer: str) -> None:
        self.inbox.put(PeerUp(peer))

    def note_from_peers(self, tx_ids: list[str]) -> None:
        """Transactions admitted from peers' gossip: pending work, and not ours to gossip again."""
        self.inbox.put(FromPeers(tx_ids))

    def stop(self) -> None:
        self.inbox.put(Stop())

    # ---- the engine thread -------------------------------------------------

    def run(self) -> None:
        try:
            self.gossip.end_doomed_transactions()  # a crash may have come between a commit and this
            while not self._stopping:
                self._run_height()
        finally:
            self.signing.close()
            connections.close_all()

    def _run_height(self) -> None:
        height = self.begin_height()
        while not self._stopping and not self.driver.live.done and self.height == height:
            self.step(self._next_input())

    def begin_height(self) -> int:
        """Build the machine of the next height, restore what was signed there, replay what was kept."""
        height = self.height
        validators = self.state.membership.validators()
        self.driver.reset(height)
        self.relay.new_height()
        if not validators:
            self._serve_without_validators()
            return height
        seen = self.driver.begin(height, validators)
        self.relay.replay(height, seen)
        return height

    def step(self, item: Input) -> None:
        """One input of the engine loop (the simulation drives this directly)."""
        self.driver.maybe_start(self.driver.resuming)
        self._periodic()
        self._handle(item)
        self.relay.release_far_rounds()
        self.relay.ask_again_if_overdue()

    def _handle(self, item: Input) -> None:
        match item:
            case Timeout():
                self.driver.on_timeout(item)
            case PeerMessage(peer=peer, message=message):
                self._from_peer(peer, message)
            case PeerUp(peer=peer):
                self._send_status(peer)
                self.relay.send_height_log(peer)
                self.gossip.send_pool(peer)
            case FromPeers(tx_ids=tx_ids):
                self.gossip.remember_from_peers(tx_ids)
            case Stop():
                self._stopping = True
            case Wake():
                self.gossip.note_admitted()  # a web worker admitted transactions into the pool
                self.gossip.gossip_fresh_if_due(self.clock())
            case Idle():
                pass  # the start check and the periodic work before this are all it asks for

    def _next_input(self) -> Input:
        now = self.clock()
        timers = self.driver.timers
        due = timers.pop_due(now)
        if due is not None:
            return due
        deadline = timers.next_deadline()
        until_timer = deadline - now if deadline is not None else IDLE_CHECK_SECONDS
        if not self.driver.started and self.driver.next_height_at > now:
            until_timer = min(until_timer, self.driver.next_height_at - now)
        fresh_in = self.gossip.fresh_due_in(now)
        if fresh_in is not None:
            until_timer = min(until_timer, fresh_in)
        wait = max(0.0, min(until_timer, STATUS_SECONDS))
        try:
            return self.inbox.get(timeout=wait)
        except queue.Empty:
            return Idle()

    def _periodic(self) -> None:
        now = self.clock()
        if now - self._last_status >= STATUS_SECONDS:
            self._last_status = now
            self._send_status(None)
            self.gossip.gossip_fresh()
            self.gossip.reoffer_pending(now)
            self.catchup.ask_for_blocks()
            self.report()
        self.gossip.gossip_fresh_if_due(now)
        self.gossip.sweep_if_due(now)

    def _serve_without_validators(self) -> None:
        """No validator is left, so no block can ever be certified again: stay up, serve, never exit.

        PROTOCOL.md section 3 (`no_validator_left`) keeps a chain from getting
        here, but one may predate the rule. Exiting would only crash-loop the
        node under its supervisor, and its committed chain stays readable and
        can still be synced by peers.
        """
        logger.error("the validator set after block %s is empty: no block can commit any more", self.state.tip.height)
        self.driver.machine = None
        while not self._stopping:
            now = time.monotonic()
            if now - self._last_status >= STATUS_SECONDS:
                self._last_status = now
                self._send_status(None)
                self.report()
            item = self._next_input()
            if isinstance(item, Stop):
                self._stopping = True
            elif (
                isinstance(item, PeerMessage)
                and isinstance(item.message, dict)
                and item.message.get("type") == "get_blocks"
            ):
                self._from_peer(item.peer, item.message)

    @fresh_connection
    def report(self) -> None:
        """Publish where this node is for web workers (ledger.models.NodeState)."""
        tip, catching_up = self.state.tip.height, self.catchup.catching_up()
        machine = self.driver.machine
        report_node_state(
            node_key=self.me,
            height=tip,
            round_=machine.round if machine else 0,
            step=machine.step if machine and self.driver.started else "idle",
            syncing=catching_up,
            sync_target=self.sync.target(tip) if catching_up else tip,
            links=self.peer_links,
        )

    def _announce(self, block: ChainBlock, round_: int) -> None:
        """A block was committed, by consensus or by block sync."""
        self.gossip.after_commit(block)
        self.driver.next_height_at = self.clock() + self.block_interval
        self.on_commit(
            Committed(
                block.height, block.hash, round_, len(block.txs), block.header["time_ms"], block.header["proposer"]
            )
        )
        self._send_status(None)

    # ---- peers' messages, and our status ---------------------------------------

    def _from_peer(self, peer: str, message: Any) -> None:
        if not isinstance(message, dict):
            return
        kind = message.get("type")
        if not isinstance(kind, str):
            return
        handler = {
            "consensus": self.relay.consensus_message,
            "status": self._status_from_peer,
            "get_blocks": self.catchup.serve,
            "blocks": self.catchup.blocks_from_peer,
            "get_proposal_txs": self.relay.serve_bodies,
            "proposal_txs": self.relay.bodies_from_peer,
        }.get(kind)
        if handler is not None:
            self.guard.guarded(handler, peer, message)

    def _status_from_peer(self, peer: str, message: dict[str, Any]) -> None:
        committed, held = message.get("height"), message.get("messages", 0)
        if not (_is_count(committed) and _is_count(held)):
            raise ProtocolError("bad_message", "status height and messages are non-negative integers")
        if held > MAX_STATUS_MESSAGES:
            raise ProtocolError("bad_message", "status messages is out of range")
        self.peer_heights.claim(peer, committed)
        tip = self.state.tip.height
        if committed > tip:
            self.catchup.peer_ahead(peer, committed)
        else:
            self.sync.forget(peer)
            self.relay.peer_status(peer, level=committed == tip, held=held)

    def _send_status(self, peer: str | None) -> None:
        machine = self.driver.machine
        status = {
            "type": "status",
            "height": self.state.tip.height,
            "round": machine.round if machine else 0,
            "messages": len(self.driver.log.messages),
        }
        if peer is None:
            self.network.broadcast(status)
        else:
            self.network.send(peer, status)


def _is_count(value: object) -> TypeGuard[int]:
    """A non-negative JSON integer (a bool is not one)."""
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0
