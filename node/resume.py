"""Where a restarted validator resumes a height: its round, lock and valid value, from its own signatures.

Replaying the signing log into a fresh machine is not enough on its own:
the replayed messages make rule 8 jump straight to the highest round with
f+1 senders, and rule 4 of an earlier round, which took the lock, never
fires again. So the state is read from what this node itself signed
(CONSENSUS.md, "No double signing", and docs/consensus.md):

- a precommit for a block at round r means rule 4 fired at r: the node was
  locked on that block at r, and it was its valid value at r;
- a proposal at round r with valid_round vr >= 0 re-proposed its valid
  value of round vr;
- the highest round it signed anything in is where it resumes.

The block itself comes from the node's own proposals or the proposals it
logged as seen; a lock whose block is not found still holds by its hash.
"""

from __future__ import annotations

from typing import Any

from consortium_protocol.errors import ProtocolError
from ledger.consensus.messages import PRECOMMIT, ConsensusProposal, ConsensusVote
from node.wire import message_from_log


def _logged_blocks(
    signed: list[ConsensusVote | ConsensusProposal], seen: list[dict[str, Any]], chain_id: str
) -> dict[str, Any]:
    blocks = {m.block_hash: m.block for m in signed if isinstance(m, ConsensusProposal) and m.block is not None}
    for wire in seen:
        if isinstance(wire, dict) and wire.get("kind") == "proposal" and wire.get("block_hash") not in blocks:
            try:
                proposal = message_from_log(wire, chain_id=chain_id, verified=lambda txs: {tx.tx_id for tx in txs})
            except (ProtocolError, KeyError, TypeError, ValueError, AttributeError):
                continue
            if isinstance(proposal, ConsensusProposal) and proposal.block.hash == proposal.block_hash:
                blocks[proposal.block_hash] = proposal.block
    return blocks


def resume_point(
    signed: list[ConsensusVote | ConsensusProposal], seen: list[dict[str, Any]], *, chain_id: str
) -> dict[str, Any]:
    """Keyword arguments for ConsensusMachine.resume()."""
    blocks = _logged_blocks(signed, seen, chain_id)
    locked = valid = None
    for message in signed:
        if isinstance(message, ConsensusVote) and message.type == PRECOMMIT and message.block_hash is not None:
            point = (message.round, message.block_hash, blocks.get(message.block_hash))
            if locked is None or point[0] > locked[0]:
                locked = point
            if valid is None or point[0] > valid[0]:
                valid = point
        elif isinstance(message, ConsensusProposal) and message.valid_round >= 0:
            point = (message.valid_round, message.block_hash, message.block)
            if valid is None or point[0] > valid[0]:
                valid = point
    round_ = max((message.round for message in signed), default=0)
    return {"round_": round_, "locked": locked, "valid": valid}
