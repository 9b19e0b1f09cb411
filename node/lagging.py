"""A round-0 proposer that is heights behind is not waited for (docs/consensus.md, "Lagging proposer").

A validator can propose height h only once it has committed h - 1. Each
peer says which height it has committed in its `status` (sent after every
commit and once a second); `PeerHeights` keeps the last claim of each. When
this node starts height h and the round-0 proposer's own last claim is below
h - 2 (it has not even committed h - 2), its proposal cannot come soon: a
slow validator, stopped 75% of the time, was measured 3 to 7 s behind. Its
round-0 propose timeout is then cut to `LAGGING_PROPOSER_SECONDS` instead of
a whole timeoutPropose(0), and its turn costs one short wait, not a stall.

Only round 0, and only the wait for the proposer whose own status says it is
behind: a peer's claim about itself can only shorten the wait for its own
proposal, which a faulty proposer could withhold anyway. Every round >= 1
keeps CONSENSUS.md's timeoutPropose(r) = base + r * delta, which is what
liveness rests on.
"""

from __future__ import annotations

LAGGING_PROPOSER_SECONDS = 0.1  # the wait for a round-0 proposal from a proposer heights behind
LAG_HEIGHTS = 2  # "behind": blocks it still lacks of ours before it could propose the next (see lags())


class PeerHeights:
    """The last committed height each peer claimed in its status (a hint, never trusted for safety)."""

    def __init__(self) -> None:
        self._claims: dict[str, int] = {}

    def __len__(self) -> int:
        return len(self._claims)

    def claim(self, peer: str, height: int) -> None:
        self._claims[peer] = height

    def lags(self, peer: str, tip: int) -> bool:
        """True when `peer` last said it committed a height below tip - 1: at least two blocks behind ours.

        A peer we have no claim from (not linked yet, or never said) is not
        judged: it is waited for as CONSENSUS.md says.
        """
        claimed = self._claims.get(peer)
        return claimed is not None and claimed <= tip - LAG_HEIGHTS


def propose_timeout(seconds: float, *, round_: int, proposer_lags: bool) -> float:
    """The wait for the proposal of `round_`: the machine's `seconds`, cut in round 0 for a lagging proposer."""
    if round_ == 0 and proposer_lags:
        return min(seconds, LAGGING_PROPOSER_SECONDS)
    return seconds
