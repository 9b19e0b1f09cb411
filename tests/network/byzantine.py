"""A Byzantine validator run by a test from a real validator key.

It authenticates to honest nodes like any peer (handshake version 2: the
handshake cannot tell it apart), then sends what an honest node never would:
conflicting proposals, double votes, blocks with invalid transactions or the
wrong parent, and oversized or garbage messages. `send` and `send_raw` seal
what they send, so the node's message handling (not the link's seal) is what
they test; `send_frame` puts raw bytes or text on the wire.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import sys
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from consortium_protocol.blocks import block_hash
from consortium_protocol.keys import SigningKey
from consortium_protocol.merkle import merkle_root_hex
from consortium_protocol.transactions import sign_body, tx_id_of
from ledger.consensus.messages import ProposalIntent, VoteIntent, sign_intent
from peers.handshake import Handshake
from peers.sealed import MAX_FRAME_BYTES
from peers.session import PeerSession


class ByzantinePeer:
    def __init__(self, key: SigningKey, chain_id: str) -> None:
        self.key = key
        self.chain_id = chain_id
        self.links: dict[str, ClientConnection] = {}
        self.sessions: dict[str, PeerSession] = {}
        self._readers: list[asyncio.Task] = []

    async def connect(self, node_key: str, url: str) -> None:
        connection = await connect(url, max_size=MAX_FRAME_BYTES, open_timeout=5, compression=None)
        handshake = Handshake(self.key, self.chain_id, lambda key: True, expected_peer=node_key)
        self.sessions[node_key] = await PeerSession.open(connection, handshake)
        self.links[node_key] = connection
        # Read (and ignore) what the honest node sends, or its frames would back
        # up and we would never see it close the link.
        self._readers.append(asyncio.create_task(self._drain(connection)))

    @staticmethod
    async def _drain(connection: ClientConnection) -> None:
        with contextlib.suppress(ConnectionClosed):
            async for _ in connection:
                pass

    async def send(self, node_key: str, message: dict[str, Any]) -> None:
        """One message, canonical JSON, sealed (in chunks when over a frame)."""
        await self.sessions[node_key].send(message)

    async def send_raw(self, node_key: str, text: str) -> None:
        """Any text (garbage, not JSON, even over MAX_MESSAGE_BYTES) as one sealed message: the node judges it."""
        await self.sessions[node_key].send_text(text, max_bytes=sys.maxsize)

    async def send_frame(self, node_key: str, frame: str | bytes) -> None:
        """Raw bytes or text on the wire, unsealed (the link closes on it)."""
        await self.links[node_key].send(frame)

    async def close(self) -> None:
        for connection in self.links.values():
            await connection.close()
        await asyncio.gather(*self._readers, return_exceptions=True)

    # ---- crafted consensus messages ---------------------------------------------

    def proposal(self, height: int, round_: int, block: dict[str, Any]) -> dict[str, Any]:
        """A signed compact proposal of `block` (docs/peers.md): its header and its transaction ids."""
        header = block["header"]
        signed = sign_intent(self.key, self.chain_id, ProposalIntent(height, round_, block_hash(header), -1, None))
        return {
            "type": "consensus",
            "message": {
                "kind": "proposal",
                "height": height,
                "round": round_,
                "block_hash": signed.block_hash,
                "valid_round": -1,
                "sender": self.key.public_key,
                "signature": signed.signature,
                "block": {"header": header, "tx_ids": [tx_id_of(tx["body"]) for tx in block["txs"]]},
            },
        }

    @staticmethod
    def bodies(height: int, txs: list[dict[str, Any]]) -> dict[str, Any]:
        """An answer to an honest node's get_proposal_txs for a proposal of ours."""
        return {"type": "proposal_txs", "height": height, "envelopes": txs}

    def vote(self, vote_type: str, height: int, round_: int, target: str | None) -> dict[str, Any]:
        signed = sign_intent(self.key, self.chain_id, VoteIntent(vote_type, height, round_, target))
        return {
            "type": "consensus",
            "message": {
                "kind": "vote",
                "type": vote_type,
                "height": height,
                "round": round_,
                "block_hash": target,
                "sender": self.key.public_key,
                "signature": signed.signature,
            },
        }

    def block(self, height: int, *, prev_hash: str, txs: list[dict[str, Any]] | None = None) -> dict[str, Any]:
        """A well-formed block that no honest node can accept (made-up parent, results and validators)."""
        txs = txs or []
        header = {
            "chain_id": self.chain_id,
            "height": height,
            "prev_hash": prev_hash,
            "time_ms": 1_900_000_000_000,
            "proposer": self.key.public_key,
            "tx_count": len(txs),
            "tx_root": merkle_root_hex([tx_id_of(tx["body"]) for tx in txs]),
            "results_hash": secrets.token_hex(32),
            "validators_hash": secrets.token_hex(32),
        }
        return {"header": header, "txs": txs}

    def forged_transaction(self, signer: SigningKey, nonce: int = 1) -> dict[str, Any]:
        """A transaction whose signature does not verify."""
        body = {
            "chain_id": self.chain_id,
            "type": "state.put",
            "signer": signer.public_key,
            "nonce": nonce,
            "payload": {"namespace": "n", "key": "k", "value": 1},
        }
        envelope = sign_body(body, signer)
        envelope["body"]["payload"]["value"] = 2  # changed after signing
        return envelope
