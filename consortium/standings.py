"""Reads behind the approvals page: open proposals, their votes and progress.

Progress is shown with the thresholds that `consortium_protocol.rules` decides
with (policy `majority`, `majority_yes_needed` and `majority_no_needed`): only
votes of active organisations count, a proposal passes with more than half of
them voting yes and fails once half or more vote no.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TypedDict

from consortium.models import Organisation, Proposal
from consortium_protocol.rules import majority_no_needed, majority_yes_needed
from ledger.models import Transaction

YES, NO, NOT_VOTED = "yes", "no", "not voted"


@dataclass(frozen=True)
class OrgVote:
    org: Organisation
    vote: str  # YES, NO or NOT_VOTED


@dataclass(frozen=True)
class ProposalStanding:
    proposal: Proposal
    votes: list[OrgVote]  # one per organisation active now

    @property
    def yes(self) -> int:
        return sum(1 for v in self.votes if v.vote == YES)

    @property
    def no(self) -> int:
        return sum(1 for v in self.votes if v.vote == NO)

    @property
    def needed(self) -> int:
        """Yes votes needed to pass: more than half of the active organisations."""
        return majority_yes_needed(len(self.votes))

    @property
    def progress(self) -> str:
        return f"{self.yes} of {len(self.votes)} voted yes, {self.needed} needed"

    @property
    def no_needed(self) -> int:
        """No votes that fail it: half of the active organisations."""
        return majority_no_needed(len(self.votes))

    @property
    def fails_at(self) -> str:
        return f"{self.no} voted no; it fails at {self.no_needed}"


def standings(proposals: Iterable[Proposal]) -> list[ProposalStanding]:
    active = list(Organisation.objects.filter(status=Organisation.Status.ACTIVE))
    result = []
    for proposal in proposals:
        cast = {vote.org_id: vote.approve for vote in proposal.votes.all()}
        votes = [OrgVote(org, _word(cast.get(org.pk))) for org in active]
        result.append(ProposalStanding(proposal, votes))
    return result


def open_standings() -> list[ProposalStanding]:
    proposals = Proposal.objects.filter(status=Proposal.Status.OPEN).select_related("proposer_org")
    return standings(proposals.prefetch_related("votes").order_by("created_height", "created_index"))


def recently_decided(limit: int = 10) -> list[Proposal]:
    decided = Proposal.objects.exclude(status=Proposal.Status.OPEN).select_related("proposer_org")
    return list(decided.prefetch_related("votes__org").order_by("-decided_height", "-created_height")[:limit])


class TransactionStatus(TypedDict):
    tx_id: str
    type: str
    status: str
    code: str
    block_id: int


def transaction_statuses(tx_ids: list[str]) -> list[TransactionStatus]:
    """tx_id, type, status and code of each known transaction, in the order given."""
    rows = Transaction.objects.filter(tx_id__in=tx_ids).values("tx_id", "type", "status", "code", "block_id")
    by_id = {row["tx_id"]: row for row in rows}
    return [by_id[tx_id] for tx_id in tx_ids if tx_id in by_id]


def _word(approve: bool | None) -> str:
    if approve is None:
        return NOT_VOTED
    return YES if approve else NO
