"""The approvals page's thresholds are the ones the chain decides proposals with (policy `majority`)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from consortium.standings import NO, NOT_VOTED, YES, OrgVote, ProposalStanding
from consortium_protocol.membership import OPEN, PASSED, Membership, OrgState, PeerState, ProposalState, VoteState
from consortium_protocol.rules import evaluate_open_proposals


@st.composite
def ballots(draw: st.DrawFn) -> tuple[int, int, int]:
    active = draw(st.integers(min_value=1, max_value=9))
    yes = draw(st.integers(min_value=0, max_value=active))
    no = draw(st.integers(min_value=0, max_value=active - yes))
    return active, yes, no


def decided_by_the_chain(active: int, yes: int, no: int) -> str:
    """The status rules.evaluate_open_proposals gives a suspension of o0 with these votes."""
    state = Membership()
    for i in range(active):
        state.orgs[f"o{i}"] = OrgState(f"o{i}", f"Org {i}")
        state.peers[f"n{i}"] = PeerState(f"n{i}", f"o{i}", f"ws://n{i}/", validator=True)
    proposal = ProposalState("p", "org.suspend", {"org_id": "o0"}, "o0", "tx", created_height=1, created_index=0)
    for i in range(yes + no):
        proposal.votes[f"o{i}"] = VoteState(i < yes, f"k{i}", f"tx{i}", 1)
    state.proposals["p"] = proposal
    evaluate_open_proposals(state, 2)
    return proposal.status


def shown_by_the_page(active: int, yes: int, no: int) -> ProposalStanding:
    words = [YES] * yes + [NO] * no + [NOT_VOTED] * (active - yes - no)
    return ProposalStanding(proposal=None, votes=[OrgVote(org=None, vote=word) for word in words])  # type: ignore[arg-type]


@given(ballots())
def test_a_proposal_is_decided_exactly_when_the_page_says_a_threshold_is_reached(ballot: tuple[int, int, int]) -> None:
    active, yes, no = ballot
    standing = shown_by_the_page(active, yes, no)
    status = decided_by_the_chain(active, yes, no)
    assert (standing.yes, standing.no) == (yes, no)
    assert (status != OPEN) == (yes >= standing.needed or no >= standing.no_needed)
    if yes >= standing.needed and active > 1:  # o0 is not the last active organisation, so it can be suspended
        assert status == PASSED
