"""Wiring the hub into a running node: identity from the home, admission and targets from membership.

The engine replaces the membership object on every commit (LedgerState.advance),
so `is_allowed` reads `state.membership` at call time and always sees the
latest committed organisations. After a commit that changes organisations or
peers, the engine calls `refresh_from_membership()`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from peers.hub import PeerHub, get_hub
from peers.sealed import MAX_FRAME_BYTES

if TYPE_CHECKING:
    from consortium_protocol.membership import Membership
    from ledger.services import LedgerState
    from node.home import NodeHome


def membership_targets(membership: Membership) -> list[tuple[str, str]]:
    """(node_key, url) of every peer of an active organisation."""
    return sorted((peer.node_key, peer.url) for peer in membership.peers.values() if membership.peer_org(peer.node_key))


def refresh_from_membership(hub: PeerHub, membership: Membership) -> None:
    """Follow a membership change: dial new peers, stop dialling and drop suspended or removed ones."""
    hub.set_targets(membership_targets(membership))
    hub.revalidate()


def daphne_limits() -> dict[str, int]:
    """daphne's WebSocket size limits for the whole port: one sealed peer frame (64 KiB).

    daphne has one limit for every socket it serves (peer, dashboard, events),
    so no socket can make it buffer more than this before the application sees
    the frame; larger peer messages travel as several sealed chunks.
    """
    return {"websocket_max_message_size": MAX_FRAME_BYTES, "websocket_max_frame_size": MAX_FRAME_BYTES}


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
