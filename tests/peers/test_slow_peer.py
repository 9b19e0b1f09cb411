"""A peer that stops reading (a stopped or quarter-speed process) never holds up what goes to the others."""

from __future__ import annotations

import asyncio
import dataclasses

from tests.peers.meshkit import FAST, TestNode, eventually, mesh_targets, sorted_keys

QUEUE = 50
BURST = 10


async def test_a_link_whose_writes_never_complete_does_not_delay_broadcasts_to_other_peers() -> None:
    keys = sorted_keys(3)
    allowed = {key.public_key for key in keys}
    sender = await TestNode(keys[0], set(allowed), dataclasses.replace(FAST, send_queue_messages=QUEUE)).start()
    healthy, stopped = [await TestNode(key, set(allowed)).start() for key in keys[1:]]
    nodes = [sender, healthy, stopped]
    try:
        mesh_targets(nodes)
        for node in nodes:
            others = {other.public_key for other in nodes if other is not node}
            await eventually(lambda node=node, others=others: node.hub.connected_keys() == others, what="mesh")
        # The socket to `stopped` is full: each write waits for ever, as when the peer's
        # process is SIGSTOPped and its receive buffer has filled.
        never = asyncio.Event()
        link = sender.hub._links[stopped.public_key]

        async def blocked(data: bytes) -> None:
            await never.wait()

        link.transport.send_bytes = blocked  # type: ignore[method-assign]
        # Broadcast in bursts, as the engine does; the healthy link drains between them.
        taken: list[int] = []
        for burst in range(0, 3 * QUEUE, BURST):
            taken += [sender.hub.broadcast({"type": "block", "n": n}) for n in range(burst, burst + BURST)]
            sent = burst + BURST
            await eventually(lambda sent=sent: len(healthy.messages("block")) == sent, what="the burst delivered")
        assert [m["n"] for _, m in healthy.messages("block")] == list(range(3 * QUEUE))
        # The stalled link took about its queue's worth (its pings share the queue), then closed on
        # overflow, never a wait for the others; the dialler then links again (a fresh socket).
        assert taken[:BURST] == [2] * BURST and 1 in taken
        assert stopped.public_key in sender.downs
    finally:
        for node in nodes:
            await node.stop()
