"""Compact proposals made whole: each node rebuilds a proposal's block from bodies it holds, and asks for the rest.

A proposal on a peer link names its block's transactions by id
(node/wire.py). The header's tx_root commits to those ids and the signature
to the header, so once the proposal's signature verifies, every id is the
proposer's. A node fills the block in from bodies it has already verified:
the blocks of this height it holds whole, then the transactions it stores,
pooled or committed (`ledger.pool.stored_txs`). For the ids it still lacks
it asks one peer at a time with `get_proposal_txs`: first the peer the
proposal came from (a node relays only proposals it holds whole, and the
proposer built its block from its own pool), then the proposer, the block's
builder and the other validators, pausing longer after each ask. An answer
(`proposal_txs`) is admitted only for ids asked of that peer: each body must
hash to its id (it is parsed and canonically encoded again) and its
signature must verify. A peer that answers with anything else (an id not
asked of it, the same id twice, a bad signature, more than a block's bytes)
has its answer dropped and counted against its link
(node/misbehaviour.py). Requests carry the asker's height and answers
repeat it: an answer for a height this node has left is late, and dropped
unread without counting.

Only a whole block goes on to the consensus machine; until then the
proposal counts for nothing, as if it had not arrived yet, so a node whose
bodies do not come before timeout_propose prevotes nil as the rules say
(docs/consensus.md, "Compact proposals").

Everything here is bounded per height: `MAX_WAITING` proposals waiting for
bodies, `MAX_WAITING_PER_SLOT` of them per (round, sender); `MAX_BLOCKS_KEPT`
whole blocks kept to fill the next proposal of the same block and to answer
peers; `MAX_ASKED_PER_PEER` ids remembered as asked of each peer; and
`SERVE_BYTES_PER_PEER` of bodies served to each peer when the engine serves
requests itself (without its host, which serves them beside the engine
thread: node/host.py). An answer holds at most
`BLOCK_TX_BYTES` of envelopes, so the bodies of any valid block fit one.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from typing import Any, NamedTuple

from consortium_protocol.canonical import MAX_SAFE_INTEGER
from consortium_protocol.errors import ProtocolError
from consortium_protocol.hashing import is_hex64
from consortium_protocol.transactions import SignedTx, parse_envelope
from ledger import pool
from ledger.budgets import BLOCK_TX_BYTES, MAX_BLOCK_BYTES, MAX_BLOCK_TX_IDS, envelope_bytes
from ledger.chain import ChainBlock, check_signatures
from ledger.consensus.messages import ConsensusProposal
from node.dbwork import fresh_connection
from node.network import Network
from node.wire import CompactBlock

logger = logging.getLogger(__name__)

REQUEST = "get_proposal_txs"
ANSWER = "proposal_txs"

MAX_WAITING = 4  # proposals of this height waiting for bodies
MAX_WAITING_PER_SLOT = 2  # of them per (round, sender): an equivocating proposer's second block still gets in
MAX_BLOCKS_KEPT = 8  # whole blocks of this height, to fill a re-proposal at once and to answer peers
MAX_ASKED_PER_PEER = 4 * MAX_BLOCK_TX_IDS  # ids remembered as asked of one peer; past it, forgotten
SERVE_BYTES_PER_PEER = 2 * MAX_BLOCK_BYTES  # bodies served to one peer per height
FIRST_PAUSE_SECONDS = 0.2  # before the same proposal's bodies are asked of the next peer; doubles each time
LONGEST_PAUSE_SECONDS = 4.0

_stored_txs = fresh_connection(pool.stored_txs)


def _envelope_cost(tx: SignedTx) -> int:
    """Its canonical envelope and one separator (ledger.budgets)."""
    return envelope_bytes(len(tx.canonical_body), tx.signature) + 1


@dataclass
class Waiting:
    """A checked compact proposal whose block this node cannot fill in yet."""

    proposal: ConsensusProposal  # its block is a CompactBlock
    wire: dict[str, Any]
    origin: str | None  # the peer it came from (None: our own log or next-height buffer)
    targets: list[str]  # whom to ask, in order
    have: dict[str, SignedTx] = field(default_factory=dict)
    have_bytes: int = 0
    asks: int = 0
    asked_at: float = 0.0
    asked: str | None = None  # the peer asked last

    @property
    def block(self) -> CompactBlock:
        return self.proposal.block

    def missing(self) -> list[str]:
        return [tx_id for tx_id in self.block.tx_ids if tx_id not in self.have]

    def add(self, tx: SignedTx) -> None:
        if tx.tx_id not in self.have:
            self.have[tx.tx_id] = tx
            self.have_bytes += _envelope_cost(tx)

    @property
    def whole(self) -> bool:
        return len(self.have) == len(self.block.tx_ids)

    @property
    def too_large(self) -> bool:
        """Its bodies already exceed what a valid block may hold: it can never be valid, so it is not filled."""
        return self.have_bytes > BLOCK_TX_BYTES

    def filled(self) -> ConsensusProposal:
        return replace(self.proposal, block=self.block.filled([self.have[tx_id] for tx_id in self.block.tx_ids]))


class Filled(NamedTuple):
    """A waiting proposal made whole, with the wire form and origin it arrived with."""

    proposal: ConsensusProposal
    wire: dict[str, Any]
    origin: str | None


def _key(proposal: ConsensusProposal) -> tuple:
    """node.height.message_key of a proposal."""
    return ("proposal", proposal.height, proposal.round, proposal.sender, proposal.block_hash)


def check_request(message: dict[str, Any]) -> tuple[int, list[str]]:
    """The height and ids of a get_proposal_txs: 1 to MAX_BLOCK_TX_IDS distinct 64-hex ids (ProtocolError if not)."""
    height, tx_ids = message.get("height"), message.get("tx_ids")
    if set(message) != {"type", "height", "tx_ids"} or not isinstance(tx_ids, list):
        raise ProtocolError("bad_message", "get_proposal_txs has exactly type, height and tx_ids (a list)")
    if not isinstance(height, int) or isinstance(height, bool) or not 1 <= height <= MAX_SAFE_INTEGER:
        raise ProtocolError("bad_message", "height must be an integer in [1, 2^53-1]")
    if not 1 <= len(tx_ids) <= MAX_BLOCK_TX_IDS or not all(is_hex64(tx_id) for tx_id in tx_ids):
        raise ProtocolError("bad_message", f"tx_ids holds 1 to {MAX_BLOCK_TX_IDS} ids of 64 lowercase hex")
    if len(set(tx_ids)) != len(tx_ids):
        raise ProtocolError("bad_message", "tx_ids names a transaction twice")
    return height, tx_ids


def answer_request(
    message: dict[str, Any], held: Callable[[list[str]], dict[str, SignedTx]]
) -> tuple[dict[str, Any], int]:
    """The proposal_txs for a get_proposal_txs and its bodies' bytes: what `held` finds, in the order asked.

    At most BLOCK_TX_BYTES of envelopes, so the bodies of any valid block fit
    one answer; those not found are left out (an empty answer says "ask
    someone else").
    """
    height, tx_ids = check_request(message)
    found = held(tx_ids)
    envelopes: list[dict[str, Any]] = []
    size = 0
    for tx_id in tx_ids:
        tx = found.get(tx_id)
        if tx is None:
            continue
        cost = _envelope_cost(tx)
        if size + cost > BLOCK_TX_BYTES:
            break
        envelopes.append(tx.envelope())
        size += cost
    return {"type": ANSWER, "height": height, "envelopes": envelopes}, size


def stored_answer(message: dict[str, Any]) -> dict[str, Any]:
    """answer_request from the transactions this node stores: what its host serves beside the engine thread."""
    return answer_request(message, pool.stored_txs)[0]


class ProposalAssembly:
    """The compact proposals of this height: filled in, waiting for bodies, or served to peers."""

    def __init__(
        self,
        *,
        chain_id: str,
        me: str,
        network: Network,
        clock: Callable[[], float],
        stored: Callable[[list[str]], dict[str, SignedTx]] = _stored_txs,
    ) -> None:
        self.chain_id = chain_id
        self.me = me
        self.network = network
        self.clock = clock
        self.stored = stored  # the transactions this node stores, by id (ledger.pool.stored_txs)
        self.height = 0
        self._waiting: dict[tuple, Waiting] = {}
        self._blocks: dict[str, ChainBlock] = {}  # block hash -> a whole block of this height
        self._known: dict[str, SignedTx] = {}  # the transactions of those blocks
        self._asked: dict[str, set[str]] = {}  # peer -> ids asked of it at this height
        self._served: Counter[str] = Counter()  # peer -> bytes of bodies sent to it at this height

    def reset(self, height: int) -> None:
        """A new height: what waited, was kept, asked or served at the last one is forgotten."""
        self.height = height
        self._waiting.clear()
        self._blocks.clear()
        self._known.clear()
        self._asked.clear()
        self._served.clear()

    def waiting_for(self, key: tuple) -> bool:
        """Whether the proposal of this height-log key already waits for bodies (a relayed copy is dropped)."""
        return key in self._waiting

    def __len__(self) -> int:
        return len(self._waiting)

    # ---- filling a proposal in -------------------------------------------------

    def complete(
        self, proposal: ConsensusProposal, wire: dict[str, Any], *, origin: str | None, validators: Iterable[str]
    ) -> ConsensusProposal | None:
        """The proposal with its whole block, or None while bodies are missing (they are asked for)."""
        block: CompactBlock = proposal.block
        kept = self._blocks.get(block.hash)
        if kept is not None:
            return replace(proposal, block=kept)
        key = _key(proposal)
        if key in self._waiting or self._slot_full(proposal):
            return None  # a copy, or an equivocating proposer's third block of one round: not even looked up
        held = self._held(block.tx_ids)
        if len(held) == len(block.tx_ids):
            whole = block.filled([held[tx_id] for tx_id in block.tx_ids])
            self.keep(whole)
            return replace(proposal, block=whole)
        if not self._make_room(proposal):
            return None
        waiting = Waiting(proposal, wire, origin, self._targets(origin, proposal, validators))
        for tx in held.values():
            waiting.add(tx)
        self._waiting[key] = waiting
        self._ask(waiting)
        return None

    def _held(self, tx_ids: list[str]) -> dict[str, SignedTx]:
        """The bodies of `tx_ids` this node holds: in blocks of this height, waiting proposals, or stored."""
        found: dict[str, SignedTx] = {}
        unknown: list[str] = []
        for tx_id in tx_ids:
            tx = self._known.get(tx_id) or self._partial(tx_id)
            if tx is None:
                unknown.append(tx_id)
            else:
                found[tx_id] = tx
        if unknown:
            found.update(self.stored(unknown))
        return found

    def _partial(self, tx_id: str) -> SignedTx | None:
        for waiting in self._waiting.values():
            tx = waiting.have.get(tx_id)
            if tx is not None:
                return tx
        return None

    def keep(self, block: ChainBlock) -> None:
        """A whole block of this height: it fills in later proposals of it, and its bodies are served."""
        if block.hash in self._blocks:
            return
        self._blocks[block.hash] = block
        if len(self._blocks) > MAX_BLOCKS_KEPT:
            del self._blocks[next(iter(self._blocks))]
            self._known = {tx.tx_id: tx for kept in self._blocks.values() for tx in kept.txs}
        else:
            self._known.update((tx.tx_id, tx) for tx in block.txs)

    def _slot_full(self, proposal: ConsensusProposal) -> bool:
        slot = (proposal.round, proposal.sender)
        held = sum((w.proposal.round, w.proposal.sender) == slot for w in self._waiting.values())
        return held >= MAX_WAITING_PER_SLOT

    def _make_room(self, proposal: ConsensusProposal) -> bool:
        """Whether a new waiting proposal may be held; the lowest earlier round's gives way if all are taken."""
        if len(self._waiting) < MAX_WAITING:
            return True
        lowest = min(self._waiting, key=lambda key: self._waiting[key].proposal.round)
        if self._waiting[lowest].proposal.round >= proposal.round:
            return False
        del self._waiting[lowest]
        return True

    def _targets(self, origin: str | None, proposal: ConsensusProposal, validators: Iterable[str]) -> list[str]:
        candidates = [origin, proposal.sender, proposal.block.header["proposer"], *validators]
        targets: list[str] = []
        for peer in candidates:
            if peer is not None and peer != self.me and peer not in targets:
                targets.append(peer)
        return targets

    # ---- asking ------------------------------------------------------------------

    def _ask(self, waiting: Waiting) -> None:
        if not waiting.targets:
            return
        peer = waiting.targets[waiting.asks % len(waiting.targets)]
        missing = waiting.missing()
        asked = self._asked.setdefault(peer, set())
        if len(asked) + len(missing) > MAX_ASKED_PER_PEER:
            asked.clear()  # a long height of many rounds: the oldest asks are forgotten, not the memory bound
        asked.update(missing)
        waiting.asks += 1
        waiting.asked_at = self.clock()
        waiting.asked = peer
        logger.info(
            "asked %s for %s of the %s bodies of proposal %s (round %s)",
            peer[:12],
            len(missing),
            len(waiting.block.tx_ids),
            waiting.proposal.block_hash[:16],
            waiting.proposal.round,
            extra={"event": "bodies_asked", "height": waiting.proposal.height, "round": waiting.proposal.round},
        )
        self.network.send(peer, {"type": REQUEST, "height": self.height, "tx_ids": missing})

    def ask_again_if_overdue(self) -> None:
        """Ask the next peer for what a waiting proposal still lacks, once its pause since the last ask is over."""
        now = self.clock()
        for waiting in list(self._waiting.values()):
            pause = min(FIRST_PAUSE_SECONDS * 2 ** max(waiting.asks - 1, 0), LONGEST_PAUSE_SECONDS)
            if now - waiting.asked_at >= pause:
                self._ask(waiting)

    # ---- answers -----------------------------------------------------------------

    def bodies_from_peer(self, peer: str, message: dict[str, Any]) -> list[Filled]:
        """Admit a peer's answer; return the waiting proposals it made whole (ProtocolError: dropped, counted).

        An answer for another height is late (this node moved on since it
        asked) or stale: dropped unread and not counted, like a consensus
        message of another height.
        """
        if message.get("height") != self.height:
            return []
        txs = self._checked_answer(peer, message)
        wanted = {tx_id for waiting in self._waiting.values() for tx_id in waiting.missing()}
        fresh = [tx for tx in txs if tx.tx_id in wanted]  # a late or repeated answer costs no verification
        check_signatures(fresh)
        by_id = {tx.tx_id: tx for tx in fresh}
        whole: list[Filled] = []
        for key, waiting in list(self._waiting.items()):
            for tx_id in waiting.missing():
                if tx_id in by_id:
                    waiting.add(by_id[tx_id])
            if waiting.too_large:
                del self._waiting[key]  # it can never be valid: nothing to fill in, or to vote for
            elif waiting.whole:
                del self._waiting[key]
                filled = waiting.filled()
                self.keep(filled.block)
                whole.append(Filled(filled, waiting.wire, waiting.origin))
            elif waiting.asked == peer and waiting.asks < len(waiting.targets):
                self._ask(waiting)  # it lacked some: the next peer at once, on the first pass over them
        return whole

    def _checked_answer(self, peer: str, message: dict[str, Any]) -> list[SignedTx]:
        envelopes = message.get("envelopes")
        if set(message) != {"type", "height", "envelopes"} or not isinstance(envelopes, list):
            raise ProtocolError("bad_message", "proposal_txs has exactly type, height and envelopes (a list)")
        if len(envelopes) > MAX_BLOCK_TX_IDS:
            raise ProtocolError("bad_message", f"proposal_txs holds at most {MAX_BLOCK_TX_IDS} envelopes")
        asked = self._asked.get(peer, set())
        txs: list[SignedTx] = []
        ids: set[str] = set()
        size = 0
        for envelope in envelopes:
            tx = parse_envelope(envelope, self.chain_id, check_signature=False)  # its id is its canonical hash
            if tx.tx_id not in asked:
                raise ProtocolError("unasked_tx", f"transaction {tx.tx_id[:16]} was not asked of this peer")
            if tx.tx_id in ids:
                raise ProtocolError("duplicate_tx", "an answer holds the same transaction twice")
            size += _envelope_cost(tx)
            if size > BLOCK_TX_BYTES:
                raise ProtocolError("too_large", f"an answer holds at most {BLOCK_TX_BYTES} bytes of envelopes")
            ids.add(tx.tx_id)
            txs.append(tx)
        return txs

    # ---- serving peers -----------------------------------------------------------

    def serve(self, peer: str, message: dict[str, Any]) -> None:
        """Answer a peer's get_proposal_txs, within its share of this height.

        Only when the engine runs without its host: node/host.py answers them
        beside the engine thread from the transactions stored
        (`stored_answer`), so that serving never waits behind the engine's
        inbox or delays a vote.
        """
        check_request(message)
        if self._served[peer] >= SERVE_BYTES_PER_PEER:
            return  # its share of this height is spent; it will ask another peer
        reply, size = answer_request(message, self._held)
        self._served[peer] += max(size, 1)
        self.network.send(peer, reply)
