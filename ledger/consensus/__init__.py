"""Tendermint consensus as a pure state machine: no I/O, no Django, no asyncio.

See docs/consensus.md for how it maps onto CONSENSUS.md and how to wire it.
"""

from __future__ import annotations

from .machine import (
    PROPOSE,
    Broadcast,
    ConsensusMachine,
    Decide,
    Effect,
    Evidence,
    MachineView,
    RoundView,
    ScheduleTimeout,
    Timeouts,
)
from .messages import (
    PRECOMMIT,
    PREVOTE,
    ConsensusProposal,
    ConsensusVote,
    ProposalIntent,
    Verifier,
    VoteIntent,
    certificate_entries,
    proposal_bytes,
    sign_intent,
    sign_proposal,
    sign_vote,
    verify_proposal,
    verify_vote,
)

__all__ = [
    "PRECOMMIT",
    "PREVOTE",
    "PROPOSE",
    "Broadcast",
    "ConsensusMachine",
    "ConsensusProposal",
    "ConsensusVote",
    "Decide",
    "Effect",
    "Evidence",
    "MachineView",
    "ProposalIntent",
    "RoundView",
    "ScheduleTimeout",
    "Timeouts",
    "Verifier",
    "VoteIntent",
    "certificate_entries",
    "proposal_bytes",
    "sign_intent",
    "sign_proposal",
    "sign_vote",
    "verify_proposal",
    "verify_vote",
]
