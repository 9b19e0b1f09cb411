"""Four validators in one process: the engine core under test is one of them, the test signs for the others.

The core's own key is the lowest of the four, so the proposers of heights 1,
2 and 3 at round 0 are validators the test holds (proposer(h, r) is sorted
key (h + r) mod 4). The core runs on the test database; its network is a
recorder.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from consortium_protocol.keys import SigningKey, write_key_file
from consortium_protocol.transactions import sign_body
from ledger import pool
from ledger.chain import ChainBlock, build_block
from ledger.consensus.machine import Timeouts
from ledger.consensus.messages import ConsensusProposal, ConsensusVote, ProposalIntent, VoteIntent, sign_intent
from ledger.services import DatabaseStateReader, open_chain
from node.core import EngineCore
from node.home import load_home
from node.inbox import PeerMessage, Wake
from node.network import Network
from node.wire import message_to_wire
from tests.chainkit import Org, make_genesis

FAST = Timeouts(0.2, 0.1, 0.2, 0.1, 0.2, 0.1)


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Recorder(Network):
    """Every message the core sends: (peer, message) for a send, (None, message) for a broadcast."""

    def __init__(self) -> None:
        self.out: list[tuple[str | None, dict[str, Any]]] = []
        self.excluded: list[str | None] = []  # each broadcast's `exclude`, in order
        super().__init__(broadcast=self._broadcast, send=self._send)

    def _broadcast(self, message: dict[str, Any], exclude: str | None = None) -> None:
        self.out.append((None, message))
        self.excluded.append(exclude)

    def _send(self, peer: str, message: dict[str, Any]) -> None:
        self.out.append((peer, message))

    def consensus(self) -> list[dict[str, Any]]:
        return [m["message"] for _, m in self.out if m.get("type") == "consensus"]

    def sent_to(self, peer: str, kind: str) -> list[dict[str, Any]]:
        return [m for to, m in self.out if to == peer and m.get("type") == kind]


class FourValidators:
    def __init__(self, root: Path, chain_id: str = "byzantine-chain") -> None:
        orgs = [Org(f"org{i}") for i in range(1, 5)]
        orgs.sort(key=lambda org: org.node.public_key)
        self.chain_id = chain_id
        self.orgs = orgs
        self.keys: list[SigningKey] = [org.node for org in orgs]  # sorted: index i is proposer order
        self.home_dir = root / "validator"
        self.home_dir.mkdir(parents=True, exist_ok=True)
        (self.home_dir / "genesis.json").write_text(json.dumps(make_genesis(orgs, chain_id)))
        write_key_file(self.home_dir / "node_key", orgs[0].node)
        self.home = load_home(self.home_dir)
        open_chain(self.home.genesis_text)

    @property
    def me(self) -> str:
        return self.keys[0].public_key

    def key(self, index: int) -> SigningKey:
        return self.keys[index]

    def proposer(self, height: int, round_: int) -> SigningKey:
        return self.keys[(height + round_) % 4]

    def core(self, *, clock=None, network: Network | None = None) -> EngineCore:
        kwargs = {"clock": clock} if clock is not None else {}
        return EngineCore(
            self.home,
            open_chain(self.home.genesis_text),
            timeouts=FAST,
            max_block_txs=100,
            network=network or Recorder(),
            **kwargs,
        )

    def block(self, core: EngineCore, proposer: SigningKey, txs=(), time_offset_ms: int = 5) -> ChainBlock:
        state = core.state
        block, _ = build_block(
            list(txs),
            tip=state.tip,
            membership=state.membership,
            reader=DatabaseStateReader(),
            proposer=proposer.public_key,
            time_ms=state.tip.time_ms + time_offset_ms,
        )
        return block

    def signed_proposal(
        self, key: SigningKey, height: int, round_: int, block: ChainBlock, valid_round: int = -1
    ) -> ConsensusProposal | ConsensusVote:
        return sign_intent(key, self.chain_id, ProposalIntent(height, round_, block.hash, valid_round, block))

    def signed_vote(
        self, key: SigningKey, vote_type: str, height: int, round_: int, block_hash: str | None
    ) -> ConsensusProposal | ConsensusVote:
        return sign_intent(key, self.chain_id, VoteIntent(vote_type, height, round_, block_hash))

    def proposal(self, key: SigningKey, height: int, round_: int, block: ChainBlock, valid_round: int = -1) -> dict:
        """The compact proposal peers send (node/wire.py)."""
        return message_to_wire(self.signed_proposal(key, height, round_, block, valid_round))

    def vote(self, key: SigningKey, vote_type: str, height: int, round_: int, block_hash: str | None) -> dict:
        return message_to_wire(self.signed_vote(key, vote_type, height, round_, block_hash))

    def put(self, nonce: int) -> dict:
        writer = self.orgs[0].writer
        body = {
            "chain_id": self.chain_id,
            "type": "state.put",
            "signer": writer.public_key,
            "nonce": nonce,
            "payload": {"namespace": "n", "key": f"k{nonce}", "value": nonce},
        }
        return sign_body(body, writer)

    def decide(self, core: EngineCore, height: int) -> None:
        """Bring the core to commit `height` at round 0 with validators 1 and 2 (honest) voting with it."""
        peer = self.key(1).public_key
        if self.proposer(height, 0).public_key == self.me:  # the core proposes: give it work
            pool.admit([self.put(height)], chain_id=self.chain_id)
            core.step(Wake())
            proposal = core.signing.signed.get((height, 0, "proposal"))
            assert proposal is not None, "the core did not propose"
            voters, block_hash = self.keys[1:3], proposal.block_hash
            messages = [self.vote(k, t, height, 0, block_hash) for t in ("prevote", "precommit") for k in voters]
        else:
            messages = self.decide_messages(core, height)
        for message in messages:
            core.step(PeerMessage(peer, consensus(message)))
        assert core.state.tip.height == height, (
            f"height {height} was not committed: round {core.machine.round} step {core.machine.step}, "
            f"signed {sorted((k, getattr(m, 'block_hash', None)) for k, m in core.signing.signed.items())}, "
            f"view {core.machine.view()}"
        )

    def decide_messages(self, core: EngineCore, height: int, round_: int = 0) -> list[dict]:
        """A proposal from the round's proposer, prevotes and precommits of keys 1 and 2: with the core, a quorum."""
        proposer = self.proposer(height, round_)
        block = self.block(core, proposer)
        voters = self.keys[1:3]  # honest; key 3 is the one tests use as the Byzantine validator
        messages = [self.proposal(proposer, height, round_, block)]
        messages += [self.vote(k, "prevote", height, round_, block.hash) for k in voters]
        messages += [self.vote(k, "precommit", height, round_, block.hash) for k in voters]
        return messages


def consensus(wire: dict) -> dict:
    return {"type": "consensus", "message": wire}
