"""A deterministic playground for the consensus machine.

`Driver` puts one machine under a microscope: the test crafts every signed
message from the other validators by hand. `Sim` runs N machines over a
simulated network with a fake clock: one event queue holds message
deliveries and timer expiries, and a link policy chooses per message whether
it is delayed, duplicated or held back.
"""

from __future__ import annotations

import hashlib
import heapq
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from consortium_protocol.canonical import canonical
from consortium_protocol.keys import SigningKey
from consortium_protocol.votes import check_certificate
from ledger.consensus import (
    PRECOMMIT,
    PREVOTE,
    Broadcast,
    ConsensusMachine,
    ConsensusProposal,
    ConsensusVote,
    Decide,
    Effect,
    Evidence,
    ProposalIntent,
    ScheduleTimeout,
    Timeouts,
    VoteIntent,
    certificate_entries,
    sign_intent,
    sign_proposal,
    sign_vote,
)

CHAIN = "consensus-test"
Message = ConsensusProposal | ConsensusVote


@dataclass(frozen=True)
class FakeBlock:
    height: int
    proposer: int
    label: str


def block_id(block: FakeBlock) -> str:
    body = {"height": block.height, "proposer": block.proposer, "label": block.label}
    return hashlib.sha256(canonical(body)).hexdigest()


def make_keys(n: int) -> list[SigningKey]:
    """Fixed seeds, returned sorted by public key so that index i is position i in the proposer order."""
    keys = [SigningKey(hashlib.sha256(f"validator-{i}".encode()).digest()) for i in range(n)]
    return sorted(keys, key=lambda k: k.public_key)


def proposer_index(n: int, height: int, round_: int) -> int:
    return (height + round_) % n


# ---- one machine, hand-fed -----------------------------------------------------


class Driver:
    """One machine whose own intents are signed and fed back at once, as the engine would."""

    def __init__(
        self,
        n: int = 4,
        me: int | None = 0,
        height: int = 1,
        is_valid: Callable[[FakeBlock], bool] | None = None,
        timeouts: Timeouts | None = None,
    ) -> None:
        self.keys = make_keys(n)
        self.me = me
        self.height = height
        self.made: list[FakeBlock] = []
        self.machine = ConsensusMachine(
            chain_id=CHAIN,
            height=height,
            validators=[k.public_key for k in self.keys],
            me=None if me is None else self.keys[me].public_key,
            is_valid=is_valid or (lambda block: True),
            block_id=block_id,
            make_block=self._make_block,
            timeouts=timeouts,
        )
        self.effects: list[Effect] = []

    def _make_block(self) -> FakeBlock:
        block = FakeBlock(self.height, -1 if self.me is None else self.me, f"made-{len(self.made)}")
        self.made.append(block)
        return block

    def start(self) -> list[Effect]:
        return self._loop(self.machine.start())

    def feed(self, *messages: Message) -> list[Effect]:
        out: list[Effect] = []
        for message in messages:
            handler = self.machine.on_vote if isinstance(message, ConsensusVote) else self.machine.on_proposal
            out += self._loop(handler(message))  # type: ignore[arg-type]
        return out

    def timeout(self, kind: str, round_: int) -> list[Effect]:
        return self._loop(self.machine.on_timeout(kind, self.height, round_))

    def _loop(self, effects: list[Effect]) -> list[Effect]:
        """Record effects, signing and feeding back our own broadcasts like the engine."""
        seen: list[Effect] = []
        pending = list(effects)
        while pending:
            effect = pending.pop(0)
            seen.append(effect)
            if isinstance(effect, Broadcast) and self.me is not None:
                signed = sign_intent(self.keys[self.me], CHAIN, effect.intent)
                handler = self.machine.on_vote if isinstance(signed, ConsensusVote) else self.machine.on_proposal
                pending += handler(signed)  # type: ignore[arg-type]
        self.effects += seen
        return seen

    # ---- crafting messages from the other validators -------------------------

    def vote(
        self, who: int, vote_type: str, round_: int, block: FakeBlock | None, height: int | None = None
    ) -> ConsensusVote:
        h = self.height if height is None else height
        intent = VoteIntent(vote_type, h, round_, None if block is None else block_id(block))
        return sign_vote(self.keys[who], CHAIN, intent)

    def votes(self, who: list[int], vote_type: str, round_: int, block: FakeBlock | None) -> list[ConsensusVote]:
        return [self.vote(i, vote_type, round_, block) for i in who]

    def proposal(
        self, round_: int, block: FakeBlock, valid_round: int = -1, signer: int | None = None
    ) -> ConsensusProposal:
        who = proposer_index(len(self.keys), self.height, round_) if signer is None else signer
        intent = ProposalIntent(self.height, round_, block_id(block), valid_round, block)
        return sign_proposal(self.keys[who], CHAIN, intent)

    def block(self, label: str) -> FakeBlock:
        return FakeBlock(self.height, 99, label)


def broadcasts(effects: list[Effect], kind: str | None = None) -> list[VoteIntent | ProposalIntent]:
    """Intents among effects; kind is 'proposal', 'prevote' or 'precommit'."""
    intents = [e.intent for e in effects if isinstance(e, Broadcast)]
    if kind == "proposal":
        return [i for i in intents if isinstance(i, ProposalIntent)]
    if kind is not None:
        return [i for i in intents if isinstance(i, VoteIntent) and i.type == kind]
    return intents


def timers(effects: list[Effect], kind: str | None = None) -> list[ScheduleTimeout]:
    return [e for e in effects if isinstance(e, ScheduleTimeout) and kind in (None, e.kind)]


def decisions(effects: list[Effect]) -> list[Decide]:
    return [e for e in effects if isinstance(e, Decide)]


def evidence(effects: list[Effect]) -> list[Evidence]:
    return [e for e in effects if isinstance(e, Evidence)]


# ---- many machines over a simulated network ----------------------------------------


@dataclass(frozen=True)
class Timer:
    kind: str
    height: int
    round: int


# (src, dst, message, now) -> delivery delays; [] drops, two entries duplicate.
LinkPolicy = Callable[[int, int, Message, float], list[float]]


def steady(delay: float = 0.01) -> LinkPolicy:
    return lambda src, dst, message, now: [delay]


class ChaoticNetwork:
    """Random delays, reorderings and duplicates until GST, then timely delivery.

    A message "dropped" before GST reappears shortly after GST: that is the
    gossip layer re-sending what a peer lacks, which the liveness proof
    assumes (every message a correct node received reaches every correct node).
    """

    def __init__(self, rng: random.Random, *, gst: float, drop: float, dup: float, max_delay: float) -> None:
        self.rng, self.gst, self.drop, self.dup, self.max_delay = rng, gst, drop, dup, max_delay

    def __call__(self, src: int, dst: int, message: Message, now: float) -> list[float]:
        if now >= self.gst:
            return [self.rng.uniform(0.001, 0.05)]
        copies = 2 if self.rng.random() < self.dup else 1
        return [self._one(now) for _ in range(copies)]

    def _one(self, now: float) -> float:
        if self.rng.random() < self.drop:
            return self.gst - now + self.rng.uniform(0.001, 0.05)
        return self.rng.uniform(0.001, self.max_delay)


@dataclass
class SimNode:
    index: int
    key: SigningKey
    machine: ConsensusMachine
    honest: bool = True
    alive: bool = True
    decided: dict[int, Decide] = field(default_factory=dict)
    evidence: list[Evidence] = field(default_factory=list)
    signed: dict[tuple[str, int, int], Message] = field(default_factory=dict)
    future: list[Message] = field(default_factory=list)
    seen: set[Message] = field(default_factory=set)
    blocks_made: int = 0


# A Byzantine behaviour gets the simulator, its node and each intent its own
# (honest) machine produced, and sends whatever it likes.
Behaviour = Callable[["Sim", SimNode, ProposalIntent | VoteIntent], None]


class Sim:
    def __init__(
        self,
        n: int,
        *,
        heights: int = 1,
        network: LinkPolicy | None = None,
        timeouts: Timeouts | None = None,
        byzantine: dict[int, Behaviour] | None = None,
        crashed: tuple[int, ...] = (),
        is_valid: Callable[[int, FakeBlock], bool] | None = None,
        gossip: bool = True,
        seed: int = 0,
    ) -> None:
        self.keys = make_keys(n)
        self.validators = [k.public_key for k in self.keys]
        self.heights = heights
        self.network = network or steady()
        self.timeouts = timeouts or Timeouts()
        self.byzantine = byzantine or {}
        self.is_valid = is_valid or (lambda node, block: True)
        self.gossip = gossip
        self.rng = random.Random(seed)
        self.now = 0.0
        self.events = 0
        self._queue: list[tuple[float, int, int, int, Message | Timer]] = []
        self._seq = 0
        self.nodes = [self._node(i) for i in range(n)]
        for i in crashed:
            self.nodes[i].alive = False

    def _node(self, i: int) -> SimNode:
        node = SimNode(i, self.keys[i], None, honest=i not in self.byzantine)  # type: ignore[arg-type]
        node.machine = self._machine(node, 1)
        return node

    def _machine(self, node: SimNode, height: int) -> ConsensusMachine:
        def make_block() -> FakeBlock:
            node.blocks_made += 1
            return FakeBlock(height, node.index, f"b{node.blocks_made}")

        return ConsensusMachine(
            chain_id=CHAIN,
            height=height,
            validators=self.validators,
            me=node.key.public_key,
            is_valid=lambda block: block.height == height and self.is_valid(node.index, block),
            block_id=block_id,
            make_block=make_block,
            timeouts=self.timeouts,
        )

    # ---- running ------------------------------------------------------------

    def run(self, *, until: float = 120.0, max_events: int = 200_000) -> None:
        for node in self.nodes:
            if node.alive:
                self._apply(node, node.machine.start())
        while self._queue and not self.finished() and self.events < max_events:
            time, _, src, dst, payload = heapq.heappop(self._queue)
            if time > until:
                break
            self.now, self.events = time, self.events + 1
            self._deliver(src, self.nodes[dst], payload)

    def finished(self) -> bool:
        return all(len(n.decided) == self.heights for n in self.nodes if n.honest and n.alive)

    def send(self, src: int, dst: int, message: Message) -> None:
        if src == dst:
            self._push(0.0, src, dst, message)  # our own message never crosses the network
            return
        for delay in self.network(src, dst, message, self.now):
            self._push(delay, src, dst, message)

    def broadcast(self, src: int, message: Message) -> None:
        for dst in range(len(self.nodes)):
            self.send(src, dst, message)

    def _push(self, delay: float, src: int, dst: int, payload: Message | Timer) -> None:
        self._seq += 1
        heapq.heappush(self._queue, (self.now + delay, self._seq, src, dst, payload))

    # ---- a node receiving ------------------------------------------------------

    def _deliver(self, src: int, node: SimNode, payload: Message | Timer) -> None:
        if not node.alive:
            return
        if isinstance(payload, Timer):
            if payload.height == node.machine.height:
                self._apply(node, node.machine.on_timeout(payload.kind, payload.height, payload.round))
            return
        self._relay(node, payload)
        if payload.height > node.machine.height:
            node.future.append(payload)  # the engine buffers the next height the same way
        elif payload.height == node.machine.height:
            self._apply(node, self._feed(node.machine, payload))

    def _relay(self, node: SimNode, message: Message) -> None:
        if message in node.seen:
            return
        node.seen.add(message)
        if self.gossip and node.honest:
            for dst in range(len(self.nodes)):
                if dst != node.index:
                    self.send(node.index, dst, message)

    @staticmethod
    def _feed(machine: ConsensusMachine, message: Message) -> list[Effect]:
        if isinstance(message, ConsensusVote):
            return machine.on_vote(message)
        return machine.on_proposal(message)

    def _apply(self, node: SimNode, effects: list[Effect]) -> None:
        for effect in effects:
            if isinstance(effect, Broadcast):
                behaviour = self.byzantine.get(node.index, honest)
                behaviour(self, node, effect.intent)
            elif isinstance(effect, ScheduleTimeout):
                self._push(effect.seconds, node.index, node.index, Timer(effect.kind, effect.height, effect.round))
            elif isinstance(effect, Evidence):
                node.evidence.append(effect)
            elif isinstance(effect, Decide):
                self._decided(node, effect)

    def _decided(self, node: SimNode, decision: Decide) -> None:
        node.decided[decision.height] = decision
        if decision.height >= self.heights:
            return
        node.machine = self._machine(node, decision.height + 1)
        self._apply(node, node.machine.start())
        buffered, node.future = node.future, []
        for message in buffered:
            if message.height == node.machine.height:
                self._apply(node, self._feed(node.machine, message))
            elif message.height > node.machine.height:
                node.future.append(message)

    # ---- checks ---------------------------------------------------------------

    def honest_nodes(self) -> list[SimNode]:
        return [n for n in self.nodes if n.honest and n.alive]

    def assert_safe(self) -> None:
        """No two honest nodes decide different blocks at one height, and every certificate verifies."""
        for height in range(1, self.heights + 1):
            hashes = {n.decided[height].block_hash for n in self.honest_nodes() if height in n.decided}
            assert len(hashes) <= 1, f"height {height} decided {hashes}"
        for node in self.honest_nodes():
            for decision in node.decided.values():
                check_certificate(
                    certificate_entries(decision.certificate),
                    chain_id=CHAIN,
                    height=decision.height,
                    block_hash=decision.block_hash,
                    validators=self.validators,
                )


def record_signature(node: SimNode, intent: ProposalIntent | VoteIntent, message: Message) -> None:
    """The no-double-sign record: an honest node must never sign two things for one slot."""
    kind = "proposal" if isinstance(intent, ProposalIntent) else intent.type
    slot = (kind, intent.height, intent.round)
    held = node.signed.get(slot)
    assert held is None or held == message, f"node {node.index} double-signs {slot}"
    node.signed[slot] = message


def honest(sim: Sim, node: SimNode, intent: ProposalIntent | VoteIntent) -> None:
    message = sign_intent(node.key, CHAIN, intent)
    record_signature(node, intent, message)
    sim.broadcast(node.index, message)


def split_brain(targets_a: set[int]) -> Behaviour:
    """Sends one version of everything to targets_a and a conflicting one to the rest."""

    def behave(sim: Sim, node: SimNode, intent: ProposalIntent | VoteIntent) -> None:
        real = sign_intent(node.key, CHAIN, intent)
        other = sign_intent(node.key, CHAIN, _conflicting(node, intent))
        sim.send(node.index, node.index, real)
        for dst in range(len(sim.nodes)):
            if dst != node.index:
                sim.send(node.index, dst, real if dst in targets_a else other)

    return behave


def chaos_agent(sim: Sim, node: SimNode, intent: ProposalIntent | VoteIntent) -> None:
    """A random Byzantine validator: equivocates per peer, votes for junk and for future rounds."""
    rng = sim.rng
    real = sign_intent(node.key, CHAIN, intent)
    other = sign_intent(node.key, CHAIN, _conflicting(node, intent))
    sim.send(node.index, node.index, real)
    for dst in range(len(sim.nodes)):
        if dst != node.index and rng.random() < 0.9:
            sim.send(node.index, dst, rng.choice([real, other]))
    if rng.random() < 0.3:
        ahead = VoteIntent(rng.choice([PREVOTE, PRECOMMIT]), intent.height, intent.round + rng.randint(1, 3), None)
        sim.broadcast(node.index, sign_intent(node.key, CHAIN, ahead))


def _conflicting(node: SimNode, intent: ProposalIntent | VoteIntent) -> ProposalIntent | VoteIntent:
    if isinstance(intent, ProposalIntent):
        node.blocks_made += 1
        evil = FakeBlock(intent.height, node.index, f"evil{node.blocks_made}")
        return ProposalIntent(intent.height, intent.round, block_id(evil), -1, evil)
    flipped: Any = None if intent.block_hash is not None else "f" * 64
    return VoteIntent(intent.type, intent.height, intent.round, flipped)
