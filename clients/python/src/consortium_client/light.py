"""Verify a transaction from the genesis file alone, as a light client would.

The node is trusted for nothing but bytes. Starting from the genesis file
(given by the member, or fetched once and pinned by its hash), the validator
set of every height is derived by replaying the chain's committed membership
transactions with the node's own rules (`consortium_protocol.rules`). Every
block on the way that carries one is checked: its header hash, its commit
certificate against the set then in force, its tx_root over its tx ids (so
each membership transaction's inclusion), and its results_hash over the
results that say the transaction committed. The target block is then checked
the same way, and the transaction's RFC 6962 audit path against its tx_root.

The node names which blocks carry membership transactions (the governance
events of its event socket). A node that hides one cannot make a forged
block pass: the set derived without it no longer matches the validators_hash
and certificate of the next checked block, and verification fails. As with
every light client, validators that were removed long ago could sign a
history of their own; the genesis pin and the certificate chain bound it.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeGuard

from consortium_protocol.blocks import block_hash, check_header_shape, genesis_hash, results_hash, validators_hash
from consortium_protocol.canonical import canonical
from consortium_protocol.errors import ProtocolError
from consortium_protocol.genesis import parse_genesis_text
from consortium_protocol.hashing import is_hex64
from consortium_protocol.membership import Membership, Rejected
from consortium_protocol.merkle import merkle_root_hex, verify_inclusion
from consortium_protocol.rules import MEMBERSHIP_TYPES, apply_membership_tx
from consortium_protocol.transactions import parse_envelope
from consortium_protocol.votes import check_certificate

from .errors import ConsortiumError
from .results import Block, Verified

if TYPE_CHECKING:
    from .client import Client


def not_verified(detail: str) -> ConsortiumError:
    return ConsortiumError("not_verified", detail)


# --- the trust anchor -------------------------------------------------------------------------


def default_pin_dir() -> Path:
    configured = os.environ.get("CONSORTIUM_PINS")
    if configured:
        return Path(configured)
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "consortium" / "pins"


def load_genesis_file(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    try:
        return parse_genesis_text(path.read_bytes())
    except OSError as exc:
        raise ConsortiumError("bad_input", f"genesis file {path} cannot be read: {exc.strerror or exc}") from None
    except ProtocolError as exc:
        raise ConsortiumError(exc.code, f"genesis file {path} is not a valid genesis: {exc.detail}") from None


def pinned_genesis(client: Client, pin_dir: Path | None = None) -> dict[str, Any]:
    """The node's genesis, fetched on first use and pinned by its hash; later uses read the pin only."""
    pin_dir = pin_dir or default_pin_dir()
    name = re.sub(r"[^A-Za-z0-9._-]", "_", client.url.split("://", 1)[1])
    pin, digest = pin_dir / f"{name}.genesis.json", pin_dir / f"{name}.genesis.sha256"
    if pin.exists():
        genesis = load_genesis_file(pin)
        recorded = digest.read_text().strip() if digest.exists() else None
        if recorded != genesis_hash(genesis):
            raise not_verified(f"the pinned genesis {pin} does not match its recorded hash {digest}")
        return genesis
    try:
        genesis = parse_genesis_text(json.dumps(client.genesis()))
    except ProtocolError as exc:
        raise not_verified(f"the node's /genesis is not a valid genesis: {exc.detail}") from None
    pin_dir.mkdir(parents=True, exist_ok=True)
    pin.write_bytes(canonical(genesis))
    digest.write_text(genesis_hash(genesis) + "\n")
    return genesis


# --- checked blocks ---------------------------------------------------------------------------


@dataclass(frozen=True)
class CheckedBlock:
    block: Block
    hash: str
    round: int


def check_block(block: Block, *, chain_id: str, height: int, validators: list[str]) -> CheckedBlock:
    """Header shape and hash, tx_root, results_hash and a one-round certificate of `validators`."""
    header = block.header
    if not isinstance(block.tx_ids, list) or not all(is_hex64(tx_id) for tx_id in block.tx_ids):
        raise not_verified(f"block {height}: the transaction ids are not a list of tx ids")
    if not isinstance(block.results, list) or not all(_is_result(r) for r in block.results):
        raise not_verified(f"block {height}: the results are not a list of [tx_id, status, code]")
    if not isinstance(block.hash, str):
        raise not_verified(f"block {height}: the block hash is not a string")
    try:
        check_header_shape(header)
    except ProtocolError as exc:
        raise not_verified(f"block {height}: the header is malformed: {exc.detail}") from None
    if header["height"] != height or header["chain_id"] != chain_id:
        raise not_verified(f"block {height}: the node sent the header of another block or chain")
    digest = block_hash(header)
    if block.hash != digest:
        raise not_verified(f"block {height}: the header does not hash to the block hash the node gave")
    if header["validators_hash"] != validators_hash(validators):
        raise not_verified(f"block {height}: validators_hash is not the hash of the validator set derived from genesis")
    if header["tx_root"] != merkle_root_hex(block.tx_ids):
        raise not_verified(f"block {height}: the transaction ids do not hash to the header's tx_root")
    if [result[0] for result in block.results] != block.tx_ids:
        raise not_verified(f"block {height}: the results do not list the block's transactions in order")
    if header["results_hash"] != results_hash(block.results):
        raise not_verified(f"block {height}: the results do not hash to the header's results_hash")
    try:  # the node's own check, one round only (PROTOCOL.md section 4); it returns that round
        round_ = check_certificate(
            block.commit, chain_id=chain_id, height=height, block_hash=digest, validators=validators
        )
    except ProtocolError as exc:
        raise not_verified(f"block {height}: the commit certificate does not check out: {exc.detail}") from None
    return CheckedBlock(block, digest, round_)


def _is_result(result: Any) -> bool:
    return isinstance(result, list) and len(result) == 3 and all(isinstance(part, str) for part in result)


# --- the validator sets -----------------------------------------------------------------------


class ValidatorHistory:
    """Validator sets by height, derived from genesis by the node's membership rules."""

    def __init__(self, genesis: dict[str, Any]) -> None:
        self.genesis = genesis
        self.chain_id: str = genesis["chain_id"]
        self.membership = Membership.from_genesis(genesis)
        self.applied_through = 0  # membership blocks up to this height are applied
        self.changes: list[tuple[int, list[str]]] = [(1, self.membership.validators())]  # (from height, set)
        self.checked_blocks = 0

    def validators_at(self, height: int) -> list[str]:
        current = self.changes[0][1]
        for start, validators in self.changes:
            if start > height:
                break
            current = validators
        return current

    def advance(self, client: Client, before_height: int) -> None:
        """Apply every committed membership transaction in blocks below `before_height`."""
        if self.applied_through >= before_height - 1:
            return
        by_height: dict[int, list[dict[str, Any]]] = {}
        for event in client.governance_events(from_height=self.applied_through + 1, below=before_height):
            by_height.setdefault(event.height, []).append(event.data)
        for height in sorted(by_height):
            self._apply_block(client, height, by_height[height])
        self.applied_through = before_height - 1

    def _apply_block(self, client: Client, height: int, events: list[dict[str, Any]]) -> None:
        checked = check_block(
            client.block(height), chain_id=self.chain_id, height=height, validators=self.validators_at(height)
        )
        block = checked.block
        indexes = sorted({index for e in events if isinstance(index := e.get("index"), int)})
        for index in indexes:
            if not 0 <= index < len(block.tx_ids):
                raise not_verified(
                    f"block {height}: the node names a membership transaction at index {index}, outside the block"
                )
            tx_id = block.tx_ids[index]
            record = client.transaction_record(tx_id)
            envelope = {"body": record.get("body"), "signature": record.get("signature")}
            try:
                tx = parse_envelope(envelope, self.chain_id)
            except ProtocolError as exc:
                raise not_verified(f"block {height}: transaction {tx_id[:16]} is malformed: {exc.detail}") from None
            if tx.tx_id != tx_id or tx.type not in MEMBERSHIP_TYPES:
                raise not_verified(f"block {height}: index {index} does not hold the membership transaction named")
            try:
                apply_membership_tx(self.membership, tx, height, index)
                outcome = ["committed", "ok"]
            except Rejected as rejection:
                outcome = ["rejected", rejection.code]
            if block.results[index][1:] != outcome:
                raise not_verified(
                    f"block {height}: transaction {tx_id[:16]} is recorded {block.results[index][1:]} "
                    f"but the membership rules give {outcome}"
                )
        self.checked_blocks += 1
        after = self.membership.validators()
        if after != self.changes[-1][1]:
            self.changes.append((height + 1, after))


def _natural(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def verify_transaction(client: Client, history: ValidatorHistory, tx_id: str) -> Verified:
    if not is_hex64(tx_id):
        raise ConsortiumError("bad_input", f"{tx_id!r} is not a tx id (64 lowercase hex characters)")
    proof = client.proof(tx_id)
    height, index, size, path = proof.get("block_height"), proof.get("index"), proof.get("tree_size"), proof.get("path")
    if not (_natural(height) and _natural(index) and _natural(size) and height >= 1):
        raise not_verified(f"the node's proof of {tx_id[:16]} has no valid block position")
    if not isinstance(path, list) or not all(is_hex64(step) for step in path):
        raise not_verified(f"the node's proof of {tx_id[:16]} has a malformed audit path")
    history.advance(client, height)
    checked = check_block(
        client.block(height), chain_id=history.chain_id, height=height, validators=history.validators_at(height)
    )
    header = checked.block.header
    leaf, root = bytes.fromhex(tx_id), bytes.fromhex(header["tx_root"])
    if size != header["tx_count"] or not verify_inclusion(leaf, index, size, [bytes.fromhex(p) for p in path], root):
        raise not_verified(f"the audit path of {tx_id[:16]} does not lead to block {height}'s tx_root")
    status, code = checked.block.results[index][1], checked.block.results[index][2]
    return Verified(
        tx_id=tx_id,
        block_height=height,
        index=index,
        status=status,
        code=code,
        block_hash=checked.hash,
        round=checked.round,
        validators=history.validators_at(height),
        signers=len(checked.block.commit),
        governance_blocks=history.checked_blocks,
    )
