"""Tendermint consensus for one height as a pure state machine (CONSENSUS.md, rules 1-8).

No I/O, no clock, no keys. Every input method (`start`, `on_proposal`,
`on_vote`, `on_timeout`) returns the list of effects it caused, in order:

- `Broadcast(intent)`: sign this proposal or vote with your own key, after
  durably recording it, broadcast it, and feed the signed message back in.
  The machine counts its own votes only when they come back, so whatever
  the caller failed to sign simply never counts.
- `ScheduleTimeout(kind, height, round, seconds)`: call `on_timeout` later.
- `Decide(height, round, block, block_hash, certificate)`: commit the block.
  The machine is then finished; build a new one for height + 1 with the
  validator set in force after this block.
- `Evidence(first, second)`: a validator signed two different messages of one
  kind for one (height, round).

Rules are "upon" clauses: after every input `_evaluate` re-checks all of them
until none fires, so a rule fires exactly when its condition first holds,
whatever order the messages arrived in.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from consortium_protocol.keys import verify
from consortium_protocol.votes import PRECOMMIT, PREVOTE, quorum, third

from .messages import (
    VOTE_TYPES,
    ConsensusProposal,
    ConsensusVote,
    ProposalIntent,
    Verifier,
    VoteIntent,
    verify_proposal,
    verify_vote,
)

PROPOSE = "propose"
STEPS = (PROPOSE, PREVOTE, PRECOMMIT)
TIMEOUT_KINDS = STEPS

# Distinct proposals kept per round. Only the first one is prevoted on; later
# conflicting ones from the same proposer are evidence, yet still kept so that
# a quorum of votes for one of them can lock or decide it (the paper's log
# holds every message). The cap bounds what an equivocating proposer can make
# us store; past it, catch-up by certificate restores liveness.
MAX_PROPOSALS_PER_ROUND = 16

# Likewise, conflicting votes beyond a validator's first for a (type, round)
# are evidence, and each still counts for the value it names, as every message
# in the paper's log does: one validator is never counted twice in one tally,
# and the "2f+1 of anything" tallies count only its first vote. Counting it for
# the value it names matters: an equivocator's precommit may be part of the
# quorum its honest peers decided with, and a node that saw its other vote
# first could otherwise never decide that round. Safety does not depend on it:
# two quorums still share an honest validator, who votes once.
MAX_CONFLICTS_PER_SLOT = 4

# What the machine agrees on. It never looks inside one: it asks `is_valid`,
# `block_id` and `make_block`, so the node's block (ledger.chain.ChainBlock)
# and the tests' small fakes both serve.
ProposedValue = Any


@dataclass(frozen=True, slots=True)
class Timeouts:
    """timeoutX(r) = X + r * X_delta seconds. Defaults suit loopback and a LAN."""

    propose: float = 1.0
    propose_delta: float = 0.5
    prevote: float = 0.5
    prevote_delta: float = 0.25
    precommit: float = 0.5
    precommit_delta: float = 0.25

    @classmethod
    def wan(cls) -> Timeouts:
        """CometBFT's WAN defaults."""
        return cls(3.0, 0.5, 1.0, 0.5, 1.0, 0.5)

    def seconds(self, kind: str, round_: int) -> float:
        base, delta = {
            PROPOSE: (self.propose, self.propose_delta),
            PREVOTE: (self.prevote, self.prevote_delta),
            PRECOMMIT: (self.precommit, self.precommit_delta),
        }[kind]
        return base + round_ * delta


@dataclass(frozen=True, slots=True)
class Broadcast:
    intent: ProposalIntent | VoteIntent


@dataclass(frozen=True, slots=True)
class ScheduleTimeout:
    kind: str
    height: int
    round: int
    seconds: float


@dataclass(frozen=True, slots=True)
class Decide:
    height: int
    round: int
    block_hash: str
    block: ProposedValue
    certificate: tuple[ConsensusVote, ...]


@dataclass(frozen=True, slots=True)
class Evidence:
    """Two conflicting signed messages of one sender, kind and (height, round)."""

    first: ConsensusVote | ConsensusProposal
    second: ConsensusVote | ConsensusProposal


Effect = Broadcast | ScheduleTimeout | Decide | Evidence


@dataclass(frozen=True, slots=True)
class RoundView:
    proposals: tuple[str, ...]
    prevotes: dict[str, str | None]
    precommits: dict[str, str | None]


@dataclass(frozen=True, slots=True)
class MachineView:
    """A read-only copy of the state, for dashboards; changing it changes nothing."""

    height: int
    round: int
    step: str
    locked_round: int
    locked_hash: str | None
    valid_round: int
    valid_hash: str | None
    decided_round: int | None
    decided_hash: str | None
    rounds: dict[int, RoundView]
    evidence_count: int


class ConsensusMachine:
    """One validator's (or observer's, with me=None) view of consensus at one height."""

    def __init__(
        self,
        *,
        chain_id: str,
        height: int,
        validators: list[str],
        me: str | None,
        is_valid: Callable[[ProposedValue], bool],
        block_id: Callable[[ProposedValue], str],
        make_block: Callable[[], ProposedValue],
        timeouts: Timeouts | None = None,
        verifier: Verifier = verify,
    ) -> None:
        if not validators or len(set(validators)) != len(validators):
            raise ValueError("validators must be a non-empty list of distinct public keys")
        self.chain_id = chain_id
        self.height = height
        self.validators: tuple[str, ...] = tuple(sorted(validators))
        self.me = me if me in self.validators else None
        self.timeouts = timeouts or Timeouts()
        self._is_valid = is_valid
        self._block_id = block_id
        self._make_block = make_block
        self._verifier = verifier
        self._members = frozenset(self.validators)
        self._quorum = quorum(len(self.validators))
        self._third = third(len(self.validators))

        self.round = 0
        self.step = PROPOSE
        self.locked_value: ProposedValue = None
        self.locked_round = -1
        # The locked block's id: after a restart the lock may be known from the
        # node's own precommit before (or without) the block itself.
        self._locked_id: str | None = None
        self.valid_value: ProposedValue = None
        self.valid_round = -1
        self.decision: Decide | None = None
        self.evidence: list[Evidence] = []

        self._started = False
        self._proposals: dict[int, dict[str, ConsensusProposal]] = {}
        # First vote per validator, per (type, round): the "anything" tallies.
        self._votes: dict[tuple[str, int], dict[str, ConsensusVote]] = {}
        # Every counted vote, per (type, round, block_hash): the per-value tallies.
        self._tally: dict[tuple[str, int, str | None], dict[str, ConsensusVote]] = {}
        self._conflicts: dict[tuple[str, int, str], int] = {}
        self._senders: dict[int, set[str]] = {}
        self._evidence_keys: set[tuple[str, int, str]] = set()
        self._fired: set[tuple[int, int]] = set()
        self._validity: dict[str, bool] = {}
        self._out: list[Effect] = []

    # ---- queries -------------------------------------------------------

    def proposer(self, round_: int) -> str:
        return self.validators[(self.height + round_) % len(self.validators)]

    @property
    def done(self) -> bool:
        return self.decision is not None

    def view(self) -> MachineView:
        rounds = {
            r: RoundView(
                proposals=tuple(self._proposals.get(r, {})),
                prevotes={s: v.block_hash for s, v in sorted(self._votes.get((PREVOTE, r), {}).items())},
                precommits={s: v.block_hash for s, v in sorted(self._votes.get((PRECOMMIT, r), {}).items())},
            )
            for r in sorted(self._senders)
        }
        decision = self.decision
        return MachineView(
            height=self.height,
            round=self.round,
            step=self.step,
            locked_round=self.locked_round,
            locked_hash=self._locked_id,
            valid_round=self.valid_round,
            valid_hash=self._id_or_none(self.valid_value),
            decided_round=decision.round if decision else None,
            decided_hash=decision.block_hash if decision else None,
            rounds=rounds,
            evidence_count=len(self.evidence),
        )

    # ---- inputs --------------------------------------------------------

    def resume(
        self,
        *,
        round_: int,
        locked: tuple[int, str, ProposedValue] | None = None,
        valid: tuple[int, str, ProposedValue] | None = None,
    ) -> None:
        """Before start: restore what a restarted node had reached, from its own signatures.

        `round_` is the highest round it signed in, where it starts again;
        `locked` and `valid` are (round, block id, block or None), as its own
        logged precommits and proposals show them. A lock restored here is
        exactly the one rule 4 took before the crash, so the node never
        prevotes against it (amnesia would be Byzantine).
        """
        if self._started:
            raise RuntimeError("resume() comes before start()")
        self.round = max(self.round, round_)
        if locked is not None and locked[0] > self.locked_round:
            self.locked_round, self._locked_id, self.locked_value = locked
        if valid is not None and valid[0] > self.valid_round and valid[2] is not None:
            self.valid_round, _, self.valid_value = valid

    def start(self) -> list[Effect]:
        """StartRound(0), or the round resume() restored. Messages fed before start count from here on."""
        if not self._started:
            self._started = True
            self._start_round(self.round)
            self._evaluate()
        return self._drain()

    def on_proposal(self, proposal: ConsensusProposal) -> list[Effect]:
        if self.decision is None and self._accept_proposal(proposal):
            self._evaluate()
        return self._drain()

    def on_vote(self, vote: ConsensusVote) -> list[Effect]:
        if self.decision is None and self._accept_vote(vote):
            self._evaluate()
        return self._drain()

    def on_timeout(self, kind: str, height: int, round_: int) -> list[Effect]:
        # A timeout for any other (height, round) is stale: the node moved on
        # since it was scheduled, and the paper's guards make it a no-op.
        if self._started and self.decision is None and (height, round_) == (self.height, self.round):
            self._timeout(kind)
            self._evaluate()
        return self._drain()

    # ---- message intake: what counts, and what is evidence ---------------

    def _accept_vote(self, vote: ConsensusVote) -> bool:
        """Store a vote if it counts; True when the message log changed."""
        if not self._well_formed_vote(vote):
            return False
        firsts = self._votes.setdefault((vote.type, vote.round), {})
        tally = self._tally.setdefault((vote.type, vote.round, vote.block_hash), {})
        slot = (vote.type, vote.round, vote.sender)
        held = firsts.get(vote.sender)
        # A gossip repeat was checked already; a flood of conflicting votes is
        # capped so that one Byzantine validator cannot fill our memory.
        if vote.sender in tally or (held is not None and self._conflicts.get(slot, 0) >= MAX_CONFLICTS_PER_SLOT):
            return False
        if not verify_vote(self.chain_id, vote, self._verifier):
            return False
        if held is None:
            firsts[vote.sender] = vote
        else:
            self._conflicts[slot] = self._conflicts.get(slot, 0) + 1
            self._record_evidence(slot, held, vote)
        tally[vote.sender] = vote
        self._senders.setdefault(vote.round, set()).add(vote.sender)
        return True

    def _well_formed_vote(self, vote: ConsensusVote) -> bool:
        return (
            vote.type in VOTE_TYPES
            and vote.height == self.height
            and _is_round(vote.round)
            and vote.sender in self._members
            and (vote.block_hash is None or isinstance(vote.block_hash, str))
        )

    def _accept_proposal(self, proposal: ConsensusProposal) -> bool:
        if not self._well_formed_proposal(proposal):
            return False
        held = self._proposals.setdefault(proposal.round, {})
        if proposal.block_hash in held and held[proposal.block_hash].valid_round == proposal.valid_round:
            return False  # a gossip repeat, already checked
        if len(held) >= MAX_PROPOSALS_PER_ROUND or not verify_proposal(self.chain_id, proposal, self._verifier):
            return False
        # The block is not signed, only its hash; a copy whose block does not
        # hash to it was altered on the way and must not shadow a good copy.
        if self._block_id(proposal.block) != proposal.block_hash:
            return False
        if held:
            self._record_evidence(("proposal", proposal.round, proposal.sender), next(iter(held.values())), proposal)
        if proposal.block_hash not in held:
            held[proposal.block_hash] = proposal
        self._senders.setdefault(proposal.round, set()).add(proposal.sender)
        return True

    def _well_formed_proposal(self, proposal: ConsensusProposal) -> bool:
        return (
            proposal.height == self.height
            and _is_round(proposal.round)
            and isinstance(proposal.valid_round, int)
            and -1 <= proposal.valid_round < proposal.round
            and isinstance(proposal.block_hash, str)
            and proposal.block is not None
            and proposal.sender == self.proposer(proposal.round)
        )

    def _record_evidence(
        self,
        key: tuple[str, int, str],
        first: ConsensusVote | ConsensusProposal,
        second: ConsensusVote | ConsensusProposal,
    ) -> None:
        if first == second or key in self._evidence_keys:
            return
        self._evidence_keys.add(key)
        found = Evidence(first, second)
        self.evidence.append(found)
        self._out.append(found)

    # ---- rules -----------------------------------------------------------

    def _evaluate(self) -> None:
        """Fire rules until none holds; each call of a rule returns True if it fired."""
        if not self._started:
            return
        rules = (
            self._rule7_decide,
            self._rule8_round_skip,
            self._rule1_fresh_proposal,
            self._rule2_proposal_with_valid_round,
            self._rule3_prevote_timeout,
            self._rule4_polka_for_value,
            self._rule5_polka_for_nil,
            self._rule6_precommit_timeout,
        )
        while self.decision is None and any(rule() for rule in rules):
            pass

    def _rule1_fresh_proposal(self) -> bool:
        proposal = self._first_proposal(self.round)
        if self.step != PROPOSE or proposal is None or proposal.valid_round != -1:
            return False
        accept = self._valid(proposal) and (self.locked_round == -1 or self._is_locked_on(proposal))
        self._prevote(proposal.block_hash if accept else None)
        return True

    def _rule2_proposal_with_valid_round(self) -> bool:
        proposal = self._first_proposal(self.round)
        if self.step != PROPOSE or proposal is None or proposal.valid_round == -1:
            return False
        vr = proposal.valid_round
        if self._count(PREVOTE, vr, proposal.block_hash) < self._quorum:
            return False
        accept = self._valid(proposal) and (self.locked_round <= vr or self._is_locked_on(proposal))
        self._prevote(proposal.block_hash if accept else None)
        return True

    def _rule3_prevote_timeout(self) -> bool:
        if self.step != PREVOTE or len(self._votes.get((PREVOTE, self.round), {})) < self._quorum:
            return False
        return self._once(3, lambda: self._schedule(PREVOTE))

    def _rule4_polka_for_value(self) -> bool:
        if self.step == PROPOSE or (4, self.round) in self._fired:
            return False
        proposal = self._backed_proposal(PREVOTE, self.round)
        if proposal is None:
            return False
        self._fired.add((4, self.round))
        if self.step == PREVOTE:
            self.locked_value, self.locked_round = proposal.block, self.round
            self._locked_id = proposal.block_hash
            self._precommit(proposal.block_hash)
        # Even after precommitting nil, remember the value a quorum backed so
        # that, as proposer later, this node re-proposes it with its proof.
        self.valid_value, self.valid_round = proposal.block, self.round
        return True

    def _rule5_polka_for_nil(self) -> bool:
        if self.step != PREVOTE or self._count(PREVOTE, self.round, None) < self._quorum:
            return False
        self._precommit(None)
        return True

    def _rule6_precommit_timeout(self) -> bool:
        if len(self._votes.get((PRECOMMIT, self.round), {})) < self._quorum:
            return False
        return self._once(6, lambda: self._schedule(PRECOMMIT))

    def _rule7_decide(self) -> bool:
        # Any round, not only the current one: precommits that arrive after
        # this node moved on still decide the earlier round.
        for round_ in sorted(self._proposals):
            proposal = self._backed_proposal(PRECOMMIT, round_)
            if proposal is not None:
                precommits = self._matching(PRECOMMIT, round_, proposal.block_hash)
                certificate = tuple(sorted(precommits, key=lambda v: v.sender))
                self.decision = Decide(self.height, round_, proposal.block_hash, proposal.block, certificate)
                self._out.append(self.decision)
                return True
        return False

    def _rule8_round_skip(self) -> bool:
        # f+1 distinct senders include an honest one, so that round is real.
        # Jump to the highest such round at once: starting each one in between
        # would only sign proposals that nobody waits for.
        ahead = [r for r, senders in self._senders.items() if r > self.round and len(senders) >= self._third]
        if not ahead:
            return False
        self._start_round(max(ahead))
        return True

    # ---- transitions -------------------------------------------------------

    def _start_round(self, round_: int) -> None:
        self.round, self.step = round_, PROPOSE
        if self.me is not None and self.me == self.proposer(round_):
            block = self.valid_value if self.valid_value is not None else self._make_block()
            intent = ProposalIntent(self.height, round_, self._block_id(block), self.valid_round, block)
            self._out.append(Broadcast(intent))
        else:
            self._schedule(PROPOSE)

    def _timeout(self, kind: str) -> None:
        if kind == PROPOSE and self.step == PROPOSE:
            self._prevote(None)
        elif kind == PREVOTE and self.step == PREVOTE:
            self._precommit(None)
        elif kind == PRECOMMIT:
            self._start_round(self.round + 1)

    def _prevote(self, block_hash: str | None) -> None:
        self.step = PREVOTE
        self._emit_vote(PREVOTE, block_hash)

    def _precommit(self, block_hash: str | None) -> None:
        self.step = PRECOMMIT
        self._emit_vote(PRECOMMIT, block_hash)

    def _emit_vote(self, vote_type: str, block_hash: str | None) -> None:
        # An observer (me=None) walks the same steps but has nothing to sign.
        if self.me is not None:
            self._out.append(Broadcast(VoteIntent(vote_type, self.height, self.round, block_hash)))

    def _schedule(self, kind: str) -> None:
        seconds = self.timeouts.seconds(kind, self.round)
        self._out.append(ScheduleTimeout(kind, self.height, self.round, seconds))

    # ---- helpers -------------------------------------------------------------

    def _once(self, rule: int, action: Callable[[], None]) -> bool:
        if (rule, self.round) in self._fired:
            return False
        self._fired.add((rule, self.round))
        action()
        return True

    def _first_proposal(self, round_: int) -> ConsensusProposal | None:
        """The proposal this node prevotes on: the first one it accepted for the round."""
        held = self._proposals.get(round_)
        return next(iter(held.values())) if held else None

    def _backed_proposal(self, vote_type: str, round_: int) -> ConsensusProposal | None:
        """A valid proposal of `round_` with a quorum of `vote_type` votes for its block.

        With fewer than a third Byzantine, two quorums share an honest
        validator, who votes once per round, so at most one proposal qualifies.
        """
        for proposal in self._proposals.get(round_, {}).values():
            if self._count(vote_type, round_, proposal.block_hash) >= self._quorum and self._valid(proposal):
                return proposal
        return None

    def _matching(self, vote_type: str, round_: int, block_hash: str | None) -> list[ConsensusVote]:
        return list(self._tally.get((vote_type, round_, block_hash), {}).values())

    def _count(self, vote_type: str, round_: int, block_hash: str | None) -> int:
        return len(self._matching(vote_type, round_, block_hash))

    def _valid(self, proposal: ConsensusProposal) -> bool:
        # valid(v) may execute the block; its answer cannot change within a
        # height (same parent, same state), so ask once per block hash.
        known = self._validity.get(proposal.block_hash)
        if known is None:
            known = self._validity[proposal.block_hash] = bool(self._is_valid(proposal.block))
        return known

    def _is_locked_on(self, proposal: ConsensusProposal) -> bool:
        return self._locked_id is not None and self._locked_id == proposal.block_hash

    def _id_or_none(self, block: ProposedValue) -> str | None:
        return None if block is None else self._block_id(block)

    def _drain(self) -> list[Effect]:
        out, self._out = self._out, []
        return out


def _is_round(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0
