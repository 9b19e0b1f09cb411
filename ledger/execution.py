"""Executing a block's transactions against the state, in memory.

`execute` applies each transaction in order to a clone of the membership
and to an overlay of the world state, recording it committed or rejected
with a reason code. It writes nothing: the proposer uses it to build a
block, validators to check one, block sync and `verifychain` to replay one,
and `ledger.services.commit_block` persists its outcome. The world state is
read only through a `StateReader`, so the same code runs on the database and
on an in-memory replay.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Protocol

from consortium_protocol import rules
from consortium_protocol.blocks import COMMITTED, OK, REJECTED, Result
from consortium_protocol.canonical import canonical
from consortium_protocol.membership import Membership, Rejected
from consortium_protocol.transactions import SignedTx

StateKey = tuple[str, str]  # (namespace, key)


class StateReader(Protocol):
    def existing_keys(self, keys: set[StateKey]) -> set[StateKey]:
        """Which of `keys` hold a value in the committed state."""
        ...


@dataclass(frozen=True, slots=True)
class StateWrite:
    """One committed put (value is canonical JSON text) or delete (value None)."""

    namespace: str
    key: str
    value: str | None
    tx_index: int
    tx_id: str
    signer: str


@dataclass
class Execution:
    height: int
    txs: list[SignedTx]
    validators: list[str]  # the set that commits this block
    membership: Membership  # the membership after the block
    results: list[Result] = field(default_factory=list)
    writes: list[StateWrite] = field(default_factory=list)  # in block order

    @property
    def next_validators(self) -> list[str]:
        return self.membership.validators()

    def final_values(self) -> dict[StateKey, StateWrite]:
        """The last write of each key in the block."""
        return {(w.namespace, w.key): w for w in self.writes}


def execute(txs: list[SignedTx], *, height: int, membership: Membership, reader: StateReader) -> Execution:
    run = Execution(height, txs, membership.validators(), membership.clone())
    deleted = {_state_key(tx) for tx in txs if tx.type == "state.delete"}
    holds_value: dict[StateKey, bool] = dict.fromkeys(reader.existing_keys(deleted), True) if deleted else {}
    for index, tx in enumerate(txs):
        try:
            _apply(run, tx, index, holds_value)
        except Rejected as rejection:
            run.results.append((tx.tx_id, REJECTED, rejection.code))
        else:
            run.results.append((tx.tx_id, COMMITTED, OK))
    return run


def _state_key(tx: SignedTx) -> StateKey:
    return tx.payload["namespace"], tx.payload["key"]


def _apply(run: Execution, tx: SignedTx, index: int, holds_value: dict[StateKey, bool]) -> None:
    kind = tx.type
    if kind == "state.put":
        run.membership.signer_with_role(tx.signer, "writer")
        value = canonical(tx.payload["value"]).decode("utf-8")
        _write(run, tx, index, value, holds_value)
    elif kind == "state.delete":
        run.membership.signer_with_role(tx.signer, "writer")
        if not holds_value.get(_state_key(tx), False):
            raise Rejected("no_value")
        _write(run, tx, index, None, holds_value)
    elif kind == "member.add":
        rules.apply_member_add(run.membership, tx, run.height)
    elif kind == "member.revoke":
        rules.apply_member_revoke(run.membership, tx, run.height)
    elif kind == "gov.propose":
        rules.apply_gov_propose(run.membership, tx, run.height, index)
    elif kind == "gov.vote":
        rules.apply_gov_vote(run.membership, tx, run.height)
    else:  # parse_envelope admits only the types above
        raise Rejected("unknown_type")


def _write(run: Execution, tx: SignedTx, index: int, value: str | None, holds_value: dict[StateKey, bool]) -> None:
    namespace, key = _state_key(tx)
    holds_value[(namespace, key)] = value is not None
    run.writes.append(StateWrite(namespace, key, value, index, tx.tx_id, tx.signer))


class MemoryStateReader:
    """World state held as a set of keys, for replays that never touch the database."""

    def __init__(self, keys: Iterable[StateKey] = ()) -> None:
        self.keys: set[StateKey] = set(keys)

    def existing_keys(self, keys: set[StateKey]) -> set[StateKey]:
        return keys & self.keys

    def apply(self, run: Execution) -> None:
        for (namespace, key), write in run.final_values().items():
            if write.value is None:
                self.keys.discard((namespace, key))
            else:
                self.keys.add((namespace, key))
