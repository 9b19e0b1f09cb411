"""Consensus messages between validators: checked, bounded, made whole, fed to the height, relayed once, repaired.

Every peer message is checked for shape, bounds and signature before it is
stored, logged, relayed or replayed (`intake`); next-height messages wait in
a budget per validator (`future`), far-round ones in a bound per validator
(`rounds`). A proposal names its transactions by id, and goes on to the
height only once its block is whole (`assembly`: filled in from bodies this
node holds, the rest asked of peers). Consensus messages are relayed once,
in that compact form and only once whole, and the messages of the current
height are re-sent to a peer that (re)connects or reports fewer of them
(docs/peers.md). A bad message raises, and the caller
(`misbehaviour.Misbehaviour.guarded`) drops it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from consortium_protocol.errors import ProtocolError
from consortium_protocol.votes import third
from ledger.consensus.messages import ConsensusProposal, ConsensusVote
from node.assembly import ProposalAssembly
from node.future import FutureBuffer
from node.height import HeightDriver, message_key, wire_key
from node.intake import already_verified, check_for_height, names_its_builder, parse_consensus
from node.misbehaviour import Misbehaviour
from node.network import Network
from node.rounds import FarRounds
from node.wire import CompactBlock, message_from_log, message_to_wire

# A peer at our height whose status shows fewer messages than we hold gets our
# whole height log again only once it has lagged this long: a lower count is
# usually just messages in flight, and under load re-sending every proposal of
# the height each second would swamp the links it is meant to repair.
HEIGHT_LOG_LAG_SECONDS = 3.0


class ConsensusRelay:
    """Peers' consensus messages into the height driver, and the height's messages out to peers."""

    def __init__(
        self, driver: HeightDriver, *, network: Network, clock: Callable[[], float], guard: Misbehaviour
    ) -> None:
        self.driver = driver
        self.network = network
        self.clock = clock
        self.guard = guard
        self.future = FutureBuffer()
        self.far_rounds = FarRounds()
        self.assembly = ProposalAssembly(chain_id=driver.chain_id, me=driver.me, network=network, clock=clock)
        self._lagging_since: dict[str, float] = {}  # peer -> when its status first showed it missing messages

    @property
    def height(self) -> int:
        return self.driver.state.tip.height + 1

    def new_height(self) -> None:
        self._lagging_since.clear()
        self.assembly.reset(self.height)

    def replay(self, height: int, seen: list[dict[str, Any]]) -> None:
        """After the driver began `height`: what others sent before a crash, then what waited for this height."""
        self.far_rounds.clear()
        for signed in self.driver.signing.signed.values():
            if isinstance(signed, ConsensusProposal) and signed.height == height and signed.block is not None:
                self.assembly.keep(signed.block)  # what we proposed before a crash: its bodies are ours to serve
        for wire in seen:
            self.guard.guarded(self.from_log, None, wire)
        for message, wire in self.future.take(height):
            self.guard.guarded(self.admit, None, message, wire)

    def from_log(self, peer: None, logged: Any) -> None:
        """What others sent us before a crash, as the signing log keeps it (whole blocks), checked again."""
        if not isinstance(logged, dict) or logged.get("height") != self.height:
            return
        message = message_from_log(logged, chain_id=self.driver.chain_id, verified=already_verified)
        self.admit(peer, message, message_to_wire(message), replaying=True)

    # ---- in ------------------------------------------------------------------

    def consensus_message(self, peer: str, message: dict[str, Any]) -> None:
        self.from_peer(peer, message.get("message"))

    def from_peer(self, peer: str | None, wire: Any) -> None:
        if not isinstance(wire, dict):
            raise ProtocolError("bad_message", "a consensus message is an object")
        chain_id, machine = self.driver.chain_id, self.driver.live
        height = wire.get("height")
        if height == self.height + 1:
            # Parsed and signature-checked now; kept within its signer's budget (future.py).
            message = parse_consensus(wire)
            if message.sender not in machine.validators:
                raise ProtocolError("not_validator", "the sender is not a validator")
            self.driver.signatures.check(chain_id, message)
            self.future.add(height, message, wire)
            return
        key = wire_key(wire)
        if height != self.height or key in self.driver.log.messages or self.assembly.waiting_for(key):
            # Stale, too far ahead (status and block sync cover it), or a copy
            # we already hold or wait to fill in: dropped before it is parsed.
            return
        self.admit(peer, parse_consensus(wire), wire)

    def admit(
        self,
        peer: str | None,
        message: ConsensusVote | ConsensusProposal,
        wire: dict[str, Any],
        *,
        replaying: bool = False,
    ) -> None:
        """A parsed message of the current height: checked, then bounded by round, then kept, fed and relayed."""
        machine = self.driver.live
        if message.height != self.height or message_key(message) in self.driver.log.messages:
            return
        check_for_height(message, validators=machine.validators, proposer=machine.proposer)
        self.driver.signatures.check(self.driver.chain_id, message)
        if self.far_rounds.is_far(message.round, machine.round):
            self.far_rounds.hold(message, wire)  # not logged, not relayed (rounds.py)
            return
        self._accept(message, wire, replaying=replaying, origin=peer)

    def _accept(
        self,
        message: ConsensusVote | ConsensusProposal,
        wire: dict[str, Any],
        *,
        replaying: bool = False,
        origin: str | None = None,
    ) -> None:
        if message_key(message) in self.driver.log.messages or not names_its_builder(message):
            return
        if isinstance(message, ConsensusProposal) and isinstance(message.block, CompactBlock):
            validators = self.driver.live.validators
            whole = self.assembly.complete(message, wire, origin=origin, validators=validators)
            if whole is None:
                return  # waiting for bodies (assembly.py): fed once they come
            message = whole
        self._feed(message, wire, replaying=replaying, origin=origin)

    def _feed(
        self, message: ConsensusVote | ConsensusProposal, wire: dict[str, Any], *, replaying: bool, origin: str | None
    ) -> None:
        """A checked message, a proposal with its whole block: logged, fed, relayed."""
        driver = self.driver
        if message.height != self.height or message_key(message) in driver.log.messages:
            return
        if isinstance(message, ConsensusProposal):
            self.assembly.keep(message.block)
        if not replaying and driver.me in driver.live.validators:
            driver.signing.record_seen(message)
        driver.feed(message)
        # Relay once: a message one correct node received reaches every correct node.
        # Not back to the peer it came from, which has it. A proposal is relayed
        # only once this node holds its whole block, so it can answer for every body.
        self.network.broadcast({"type": "consensus", "message": wire}, exclude=origin)
        driver.maybe_start(False)

    # ---- transaction bodies of compact proposals ---------------------------------

    def bodies_from_peer(self, peer: str, message: dict[str, Any]) -> None:
        """A peer's proposal_txs: the proposals it made whole go on to the height."""
        for filled in self.assembly.bodies_from_peer(peer, message):
            self._feed(filled.proposal, filled.wire, replaying=False, origin=filled.origin)

    def serve_bodies(self, peer: str, message: dict[str, Any]) -> None:
        """A peer's get_proposal_txs, answered with the bodies this node holds."""
        self.assembly.serve(peer, message)

    def ask_again_if_overdue(self) -> None:
        self.assembly.ask_again_if_overdue()

    def release_far_rounds(self) -> None:
        """Feed far-round messages that are now within reach, or that f+1 validators vouch for."""
        machine = self.driver.machine
        if not len(self.far_rounds) or machine is None or machine.done:
            return
        for message, wire in self.far_rounds.release(machine.round, third(len(machine.validators))):
            if self.driver.live.done or self.height != message.height:
                return
            self._accept(message, wire)

    # ---- out -----------------------------------------------------------------

    def peer_status(self, peer: str, *, level: bool, held: int) -> None:
        """A peer not ahead of us said how many messages of its height it holds."""
        if level and held < len(self.driver.log.messages):
            self._repair_lagging_peer(peer)
        else:
            self._lagging_since.pop(peer, None)

    def _repair_lagging_peer(self, peer: str) -> None:
        """Send our height log to a peer lacking messages for HEIGHT_LOG_LAG_SECONDS, then wait as long again."""
        now = self.clock()
        since = self._lagging_since.setdefault(peer, now)
        if now - since >= HEIGHT_LOG_LAG_SECONDS:
            self._lagging_since[peer] = now
            self.send_height_log(peer)

    def send_height_log(self, peer: str) -> None:
        for wire in list(self.driver.log.messages.values()):
            self.network.send(peer, {"type": "consensus", "message": wire})
