"""Re-verify a stored chain from its genesis, trusting nothing in the database.

Each block is rebuilt from its stored transactions and replayed in memory
from genesis: header hash, parent link, Merkle root, signatures, execution
results, validator set and commit certificate must all agree with what is
stored. Afterwards the stored world state, its history and the membership
tables must equal the replay's. Any difference is a `ChainFault` naming the
height and the problem.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from consortium_protocol.blocks import block_hash, genesis_hash
from consortium_protocol.canonical import loads_strict
from consortium_protocol.errors import ProtocolError
from consortium_protocol.genesis import parse_genesis_text
from consortium_protocol.membership import Membership
from consortium_protocol.transactions import SignedTx, parse_envelope
from consortium_protocol.votes import check_certificate
from ledger.chain import ChainBlock, ChainTip, check_block
from ledger.execution import Execution, MemoryStateReader, StateKey
from ledger.membership_store import membership_store
from ledger.models import Block as BlockRow
from ledger.models import Chain, StateChange, StateEntry, Transaction


class ChainFault(Exception):
    def __init__(self, height: int, problem: str) -> None:
        super().__init__(f"height {height}: {problem}")
        self.height = height
        self.problem = problem


@dataclass
class Verified:
    blocks: int
    transactions: int


class _Replay:
    def __init__(self, genesis: dict, digest: str) -> None:
        self.tip = ChainTip(genesis["chain_id"], 0, digest, genesis["genesis_time_ms"])
        self.membership = Membership.from_genesis(genesis)
        self.reader = MemoryStateReader()
        self.values: dict[StateKey, tuple[str, int, str]] = {}
        self.history = hashlib.sha256()
        self.seen: set[str] = set()
        self.transactions = 0

    def advance(self, block: ChainBlock, run: Execution) -> None:
        self.reader.apply(run)
        for write in run.writes:
            self.history.update(_history_line(run.height, write.tx_index, write.namespace, write.key, write.value))
        for state_key, write in run.final_values().items():
            if write.value is None:
                self.values.pop(state_key, None)
            else:
                self.values[state_key] = (write.value, run.height, write.tx_id)
        self.seen.update(tx.tx_id for tx in block.txs)
        self.transactions += len(block.txs)
        self.membership = run.membership
        self.tip = ChainTip(self.tip.chain_id, block.height, block.hash, block.header["time_ms"])


def _history_line(height: int, index: int, namespace: str, key: str, value: str | None) -> bytes:
    return repr((height, index, namespace, key, value)).encode("utf-8") + b"\n"


def verify_chain(*, on_block: Callable[[int], None] = lambda height: None) -> Verified:
    chain = Chain.objects.first()
    if chain is None:
        raise ChainFault(0, "the database holds no chain; start the node once or import one")
    genesis = parse_genesis_text(bytes(chain.genesis_text))
    digest = genesis_hash(genesis)
    if digest != chain.genesis_hash:
        raise ChainFault(0, "the stored genesis does not match its recorded hash")
    replay = _Replay(genesis, digest)
    for row in _blocks():
        _verify_block(replay, row)
        on_block(row.height)
    _verify_final_state(replay)
    return Verified(replay.tip.height, replay.transactions)


def _blocks() -> Iterator[BlockRow]:
    return BlockRow.objects.order_by("height").iterator(chunk_size=500)


def _verify_block(replay: _Replay, row: BlockRow) -> None:
    height = replay.tip.height + 1
    if row.height != height:
        raise ChainFault(height, f"block {height} is missing (found {row.height} next)")
    header = row.header()
    if block_hash(header) != row.hash:
        raise ChainFault(height, "the header does not hash to the stored block hash")
    stored = list(Transaction.objects.filter(block=row).order_by("index"))
    block = ChainBlock(header, [_signed(height, tx, replay.tip.chain_id) for tx in stored])
    try:
        run = check_block(
            block,
            tip=replay.tip,
            membership=replay.membership,
            reader=replay.reader,
            already_included=lambda tx_ids: set(tx_ids) & replay.seen,
        )
        commit = [sig.as_dict() for sig in row.commit_signatures.all()]
        decided = check_certificate(
            commit, chain_id=replay.tip.chain_id, height=height, block_hash=row.hash, validators=run.validators
        )
        if row.round != decided:
            raise ProtocolError("bad_certificate", f"stored with round {row.round}, certified in round {decided}")
    except ProtocolError as fault:
        raise ChainFault(height, fault.detail) from fault
    for tx, (_, status, code) in zip(stored, run.results, strict=True):
        if (tx.status, tx.code) != (status, code):
            raise ChainFault(
                height, f"transaction {tx.tx_id[:16]}… is stored as {tx.status}/{tx.code}, replay says {status}/{code}"
            )
    replay.advance(block, run)


def _signed(height: int, row: Transaction, chain_id: str) -> SignedTx:
    try:
        tx = parse_envelope({"body": loads_strict(row.body), "signature": row.signature}, chain_id)
    except ProtocolError as fault:
        raise ChainFault(height, f"transaction {row.tx_id[:16]}…: {fault.detail}") from fault
    if tx.tx_id != row.tx_id or tx.signer != row.signer or tx.type != row.type:
        raise ChainFault(height, f"transaction {row.tx_id[:16]}… does not match its stored body")
    return tx


def _verify_final_state(replay: _Replay) -> None:
    height = replay.tip.height
    stored = {
        (e.namespace, e.key): (e.value, e.block_height, e.tx_id)
        for e in StateEntry.objects.all().iterator(chunk_size=2000)
    }
    if stored != replay.values:
        differing = sorted(set(stored.items()) ^ set(replay.values.items()))
        namespace, key = differing[0][0]
        raise ChainFault(height, f"the stored state of {namespace}/{key} differs from the replayed chain")
    history = hashlib.sha256()
    rows = StateChange.objects.order_by("block_height", "tx_index").values_list(
        "block_height", "tx_index", "namespace", "key", "value"
    )
    for line in rows.iterator(chunk_size=2000):
        history.update(_history_line(*line))
    if history.digest() != replay.history.digest():
        raise ChainFault(height, "the stored state history differs from the replayed chain")
    stored_membership = membership_store().load()
    for part in ("orgs", "keys", "peers", "proposals"):
        if getattr(stored_membership, part) != getattr(replay.membership, part):
            raise ChainFault(height, f"the stored membership ({part}) differs from the replayed chain")
