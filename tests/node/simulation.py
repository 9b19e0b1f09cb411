"""A deterministic simulation of several real engines with one Byzantine validator.

Each honest validator is a real `EngineCore` over its own SQLite database
(a file per node: the driver thread switches Django's default connection to
the node it is about to step, so one thread runs them all, in an order fixed
by the seed). One event queue on a fake clock holds message deliveries,
engine timers, status ticks, crashes and restarts. The network is
asynchronous until GST (delays up to a second, reordering) and timely after.

The Byzantine validator holds a real key and no engine. It equivocates
(prevotes and precommits both the proposal it sees and nil, to different
halves), sends conflicting proposals to the two halves of the network when it
proposes, lies in status, answers get_blocks with forged, mixed-round or
wrong-height blocks, floods far rounds (up to 2^53-1), and sometimes
withholds everything. Honest nodes are crashed and restarted from their
signing logs and databases at random moments (one at a time).

`Simulation.check()` asserts: no fork; every block has a quorum certificate
of one round, the round stored with it; no honest validator signed two
values for one (height, round, type), across its crashes; and every honest
node progressed after GST.
"""

from __future__ import annotations

import copy
import heapq
import itertools
import json
import random
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from django.core.management import call_command
from django.db import connections
from django.db.utils import load_backend

from consortium_protocol.canonical import MAX_SAFE_INTEGER
from consortium_protocol.keys import SigningKey, write_key_file
from consortium_protocol.transactions import sign_body
from consortium_protocol.votes import check_certificate
from ledger import pool
from ledger.chain import build_block
from ledger.consensus.machine import Timeouts
from ledger.consensus.messages import ProposalIntent, VoteIntent, sign_intent
from ledger.models import Block, CommitSignature
from ledger.services import DatabaseStateReader, open_chain
from node.core import EngineCore
from node.home import load_home
from node.inbox import Idle, Input, PeerMessage, PeerUp, Wake
from node.network import Network
from node.sync import stored_blocks
from node.wire import message_to_wire
from tests.chainkit import Org, make_genesis

CHAIN_ID = "simulated-chain"
TIMEOUTS = Timeouts(0.3, 0.1, 0.2, 0.1, 0.2, 0.1)
GST = 6.0
STATUS_EVERY = 1.0


def sqlite_wrapper(path: Path):
    settings = {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": str(path),
        "ATOMIC_REQUESTS": False,
        "AUTOCOMMIT": True,
        "CONN_MAX_AGE": 0,
        "CONN_HEALTH_CHECKS": False,
        "OPTIONS": {"init_command": "PRAGMA journal_mode=WAL;PRAGMA synchronous=OFF;PRAGMA foreign_keys=ON;"},
        "TIME_ZONE": None,
        "USER": "",
        "PASSWORD": "",
        "HOST": "",
        "PORT": "",
        "TEST": {},
    }
    return load_backend(settings["ENGINE"]).DatabaseWrapper(settings, "default")


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@dataclass
class Node:
    index: int
    key: SigningKey
    home: Path
    db: Any
    core: EngineCore | None = None
    crashes: int = 0


@dataclass(order=True)
class Event:
    at: float
    seq: int
    kind: str = field(compare=False)
    target: int = field(compare=False)
    payload: Any = field(compare=False, default=None)


class Simulation:
    def __init__(self, root: Path, template_db: Path, seed: int, *, byzantine: int = 2, duration: float = 20.0):
        self.rng = random.Random(seed)
        self.clock = Clock()
        self.duration = duration
        orgs = sorted((Org(f"org{i}", node=_key(seed, i)) for i in range(4)), key=lambda o: o.node.public_key)
        self.orgs = orgs
        self.writer = orgs[0].writer
        self.genesis = json.dumps(make_genesis(orgs, CHAIN_ID)).encode()
        self.byzantine = byzantine
        self.byz_key = orgs[byzantine].node
        self.nodes: list[Node] = []
        for index, org in enumerate(orgs):
            if index == byzantine:
                continue
            home = root / f"node{index}"
            home.mkdir(parents=True)
            (home / "genesis.json").write_bytes(self.genesis)
            write_key_file(home / "node_key", org.node)
            shutil.copy(template_db, home / "db.sqlite3")
            self.nodes.append(Node(index, org.node, home, sqlite_wrapper(home / "db.sqlite3")))
        self.queue: list[Event] = []
        self.seq = itertools.count()
        self.signed: dict[tuple[str, int, int, str], str | None] = {}  # (signer, h, r, type) -> value
        self.nonce = 0
        self.height_at_gst: dict[int, int] = {}
        self.withholding = False
        self.byz_seen: set[tuple] = set()

    # ---- plumbing -------------------------------------------------------------

    def on(self, node: Node) -> None:
        connections["default"] = node.db

    def schedule(self, delay: float, kind: str, target: int, payload: Any = None) -> None:
        heapq.heappush(self.queue, Event(self.clock.now + delay, next(self.seq), kind, target, payload))

    def delay(self) -> float:
        if self.clock.now < GST:
            return self.rng.uniform(0.001, 1.0)
        return self.rng.uniform(0.001, 0.02)

    def network_for(self, node: Node) -> Network:
        def broadcast(message: dict, exclude: str | None = None) -> None:
            self.record(node, message)
            for other in self.nodes:
                if other is not node and other.key.public_key != exclude:
                    self.schedule(self.delay(), "deliver", other.index, (node.key.public_key, copy.deepcopy(message)))
            self.schedule(self.delay(), "byz_hears", self.byzantine, message)

        def send(peer: str, message: dict) -> None:
            self.record(node, message)
            target = next((o.index for o in self.nodes if o.key.public_key == peer), self.byzantine)
            kind = "deliver" if target != self.byzantine else "byz_hears"
            payload = (node.key.public_key, copy.deepcopy(message)) if kind == "deliver" else message
            self.schedule(self.delay(), kind, target, payload)

        return Network(broadcast=broadcast, send=send)

    def record(self, node: Node, message: dict) -> None:
        """Every signature an honest node sends, across its crashes: two values for one slot is a double sign."""
        wire = message.get("message") if message.get("type") == "consensus" else None
        if not wire or wire.get("sender") != node.key.public_key:
            return
        kind = wire["type"] if wire["kind"] == "vote" else "proposal"
        slot = (node.key.public_key, wire["height"], wire["round"], kind)
        value = (wire["block_hash"], wire.get("valid_round"))
        held = self.signed.setdefault(slot, value)
        assert held == value, f"honest node {node.index} signed two values for {slot[1:]}"

    def boot(self, node: Node) -> None:
        self.on(node)
        node.core = EngineCore(
            load_home(node.home),
            open_chain(self.genesis),
            timeouts=TIMEOUTS,
            max_block_txs=50,
            network=self.network_for(node),
            clock=self.clock,
        )
        node.core.sync.rng = random.Random(self.rng.random())
        node.core.begin_height()
        self.poll(node)

    def crash(self, node: Node) -> None:
        node.core.signing.close()  # what reached the file was fsynced before it was sent
        node.core = None
        node.crashes += 1
        node.db.close()

    # ---- stepping a node ---------------------------------------------------------

    def step(self, node: Node, item: Input) -> None:
        if node.core is None:
            return
        self.on(node)
        core = node.core
        core.step(item)
        self.poll(node)

    def poll(self, node: Node) -> None:
        """Fire due timers and begin the next height, as the engine's run loop does."""
        core = node.core
        for _ in range(1000):
            if core.machine.done or core.height != core.driver.log.height:
                core.begin_height()
                core.step(Idle())
                continue
            due = core.driver.timers.pop_due(self.clock.now)
            if due is not None:
                core.step(due)
                continue
            break
        deadline = core.driver.timers.next_deadline()
        if deadline is not None:
            self.schedule(max(0.0, deadline - self.clock.now), "poll", node.index)

    # ---- the run -------------------------------------------------------------------

    def run(self) -> None:
        for node in self.nodes:
            self.boot(node)
            self.schedule(self.rng.uniform(0, STATUS_EVERY), "tick", node.index)
        self.schedule(0.05, "txs", -1)
        self.schedule(0.1, "byz_tick", self.byzantine)
        self.schedule(GST, "gst", -1)
        self.schedule(self.rng.uniform(1.0, GST + 4), "crash", -1)
        while self.queue:
            event = heapq.heappop(self.queue)
            if event.at > self.duration:
                break
            self.clock.now = event.at
            self.handle(event)

    def handle(self, event: Event) -> None:
        node = next((n for n in self.nodes if n.index == event.target), None)
        if event.kind == "deliver" and node is not None:
            self.step(node, PeerMessage(*event.payload))
        elif event.kind == "poll" and node is not None and node.core is not None:
            self.poll(node)
        elif event.kind == "tick" and node is not None:
            self.step(node, Idle())  # periodic status, gossip, sync requests
            self.schedule(STATUS_EVERY, "tick", node.index)
        elif event.kind == "txs":
            self.add_transactions()
            self.schedule(0.4, "txs", -1)
        elif event.kind == "gst":
            for n in self.nodes:
                self.on(n)
                self.height_at_gst[n.index] = _height()
        elif event.kind == "crash":
            victim = self.rng.choice([n for n in self.nodes if n.core is not None])
            self.crash(victim)
            self.schedule(self.rng.uniform(0.3, 2.0), "restart", victim.index)
            if self.clock.now < GST + 4:
                self.schedule(self.rng.uniform(2.5, 5.0), "crash", -1)
        elif event.kind == "restart" and node is not None:
            self.boot(node)
            for other in self.nodes:  # its links come up again
                if other.core is not None:
                    self.step(other, PeerUp(node.key.public_key))
        elif event.kind == "byz_tick":
            self.byzantine_tick()
            self.schedule(self.rng.uniform(0.2, 0.6), "byz_tick", self.byzantine)
        elif event.kind == "byz_hears":
            self.byzantine_hears(event.payload)

    def add_transactions(self) -> None:
        envelopes = []
        for _ in range(self.rng.randint(1, 3)):
            self.nonce += 1
            body = {
                "chain_id": CHAIN_ID,
                "type": "state.put",
                "signer": self.writer.public_key,
                "nonce": self.nonce,
                "payload": {"namespace": "sim", "key": f"k{self.nonce % 7}", "value": self.nonce},
            }
            envelopes.append(sign_body(body, self.writer))
        for node in self.nodes:  # as if gossiped to every node
            self.on(node)
            pool.admit(envelopes, chain_id=CHAIN_ID)
            if node.core is not None:
                self.step(node, Wake())

    # ---- the Byzantine validator -----------------------------------------------------

    def to_some(self, message: dict, nodes: list[Node] | None = None) -> None:
        for node in nodes if nodes is not None else self.nodes:
            self.schedule(self.delay(), "deliver", node.index, (self.byz_key.public_key, message))

    def byz_vote(self, vote_type: str, height: int, round_: int, value: str | None) -> dict:
        wire = message_to_wire(sign_intent(self.byz_key, CHAIN_ID, VoteIntent(vote_type, height, round_, value)))
        return {"type": "consensus", "message": wire}

    def byzantine_tick(self) -> None:
        if self.rng.random() < 0.15:
            self.withholding = not self.withholding
        if self.withholding:
            return
        live = [n for n in self.nodes if n.core is not None]
        if not live:
            return
        height = max(n.core.height for n in live)
        choice = self.rng.random()
        if choice < 0.25:
            self.to_some({"type": "status", "height": MAX_SAFE_INTEGER, "round": 0, "messages": 0})
        elif choice < 0.5:
            for round_ in (self.rng.randint(5, 40), 2**31 + self.rng.randint(0, 9), MAX_SAFE_INTEGER):
                for value in (None, "ab" * 32):
                    self.to_some(self.byz_vote("prevote", height, round_, value))
        elif choice < 0.75:
            self.propose_to_halves(height, self.rng.randint(0, 2))
        else:
            self.to_some({"type": "consensus", "message": {"height": height + 1}})
            self.to_some({"type": "blocks", "blocks": [self.forged_entry(height)]})

    def propose_to_halves(self, height: int, round_: int) -> None:
        """Two different blocks under two signed proposals: one to each half (only counts when it is proposer)."""
        node = next((n for n in self.nodes if n.core is not None and n.core.height == height), None)
        if node is None:
            return
        self.on(node)
        state = node.core.state
        blocks = [
            build_block(
                [],
                tip=state.tip,
                membership=state.membership,
                reader=DatabaseStateReader(),
                proposer=self.byz_key.public_key,
                time_ms=state.tip.time_ms + 1 + i,
            )[0]
            for i in range(2)
        ]
        half = len(self.nodes) // 2
        shuffled = self.rng.sample(self.nodes, len(self.nodes))
        for block, nodes in zip(blocks, (shuffled[:half], shuffled[half:]), strict=True):
            signed = sign_intent(self.byz_key, CHAIN_ID, ProposalIntent(height, round_, block.hash, -1, block))
            self.to_some({"type": "consensus", "message": message_to_wire(signed)}, nodes)

    def forged_entry(self, height: int) -> dict:
        """A sync entry that must not verify: a real block of another height, a forged or mixed-round certificate."""
        node = next((n for n in self.nodes if n.core is not None), None)
        self.on(node)
        entries = stored_blocks(max(1, height - 2), 2)
        if not entries:
            return {"block": {}, "commit": [], "round": 0}
        entry = copy.deepcopy(self.rng.choice(entries))
        how = self.rng.random()
        if how < 0.33 and entry["commit"]:
            entry["commit"][0]["round"] += 1  # mixed rounds
        elif how < 0.66:
            entry["commit"] = [{"validator": o.node.public_key, "round": 0, "signature": "00" * 64} for o in self.orgs]
        return entry

    def byzantine_hears(self, message: dict) -> None:
        if self.withholding or not isinstance(message, dict):
            return
        if message.get("type") == "get_blocks":
            self.to_some({"type": "blocks", "blocks": [self.forged_entry(message["from"])]})
            return
        wire = message.get("message") if message.get("type") == "consensus" else None
        if not wire or wire.get("kind") != "proposal":
            return
        slot = (wire["height"], wire["round"])
        if slot in self.byz_seen:
            return
        self.byz_seen.add(slot)
        half = len(self.nodes) // 2
        shuffled = self.rng.sample(self.nodes, len(self.nodes))
        for vote_type in ("prevote", "precommit"):  # equivocates: the proposal to one half, nil to the other
            self.to_some(self.byz_vote(vote_type, *slot, wire["block_hash"]), shuffled[:half])
            self.to_some(self.byz_vote(vote_type, *slot, None), shuffled[half:])

    # ---- what must hold ---------------------------------------------------------------

    def check(self) -> dict[int, int]:
        chains: dict[int, dict[int, str]] = {}
        validators = sorted(o.node.public_key for o in self.orgs)
        for node in self.nodes:
            self.on(node)
            chains[node.index] = dict(Block.objects.values_list("height", "hash"))
            for block in Block.objects.all():
                commit = [s.as_dict() for s in CommitSignature.objects.filter(block=block)]
                assert {s["round"] for s in commit} == {block.round}, f"block {block.height}: not one round"
                check_certificate(
                    commit, chain_id=CHAIN_ID, height=block.height, block_hash=block.hash, validators=validators
                )
        heights = {index: max(chain, default=0) for index, chain in chains.items()}
        for height in range(1, max(heights.values()) + 1):
            hashes = {chain[height] for chain in chains.values() if height in chain}
            assert len(hashes) <= 1, f"fork at height {height}: {hashes}"
        for index, top in heights.items():
            assert top >= self.height_at_gst.get(index, 0) + 2, f"node {index} made no progress after GST: {heights}"
        return heights


def _height() -> int:
    return Block.objects.order_by("-height").values_list("height", flat=True).first() or 0


def _key(seed: int, index: int) -> SigningKey:
    import hashlib

    return SigningKey(hashlib.sha256(f"sim-{seed}-{index}".encode()).digest())


def migrated_template(path: Path) -> Path:
    """An empty, migrated SQLite database to copy for every node."""
    original = connections["default"]
    connections["default"] = sqlite_wrapper(path)
    try:
        call_command("migrate", verbosity=0, interactive=False)
    finally:
        connections["default"].close()
        connections["default"] = original
    return path
