"""Wiring the hub into a running node: identity from the home, admission and targets from membership.

The engine replaces the membership object on every commit (LedgerState.advance),
so `is_allowed` reads `state.membership` at call time and always sees the
latest committed organisations. After a commit that changes organisations or
peers, the engine calls `refresh_from_membership()`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from peers.hub import PeerHub, get_hub
from peers.limits import PeerLimits

if TYPE_CHECKING:
    from consortium_protocol.membership import Membership
    from ledger.node.home import NodeHome
    from ledger.services import LedgerState


def membership_targets(membership: Membership) -> list[tuple[str, str]]:
    """(node_key, url) of every peer of an active organisation."""
    return sorted((peer.node_key, peer.url) for peer in membership.peers.values() if membership.peer_org(peer.node_key))


def refresh_from_membership(hub: PeerHub, membership: Membership) -> None:
    """Follow a membership change: dial new peers, stop dialling and drop suspended or removed ones."""
    hub.set_targets(membership_targets(membership))
    hub.revalidate()


def daphne_limits() -> dict[str, int]:
    """daphne's own WebSocket size limits, so a frame over the peer limit is refused before it is buffered."""
    size = PeerLimits.from_settings().max_message_bytes
    return {"websocket_max_message_size": size, "websocket_max_frame_size": size}


async def start_hub(home: NodeHome, state: LedgerState) -> PeerHub:
    """Configure the process hub for this node and start linking to the current peers."""
    hub = get_hub()
    hub.configure(
        node_key=home.node_key,
        chain_id=home.chain_id,
        is_allowed=lambda key: state.membership.peer_org(key) is not None,
    )
    hub.set_targets(membership_targets(state.membership))
    await hub.start()
    return hub
