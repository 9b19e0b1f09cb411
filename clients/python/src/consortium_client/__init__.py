"""consortium-client: a member's SDK for a Consortium ledger.

    from consortium_client import Client, load_key

    with Client("https://node.example.org", token="...", key="member_key") as node:
        sent = node.put("shipments", "SHIP-1", {"temp_c": 4})
        print(node.wait([sent.tx_id])[sent.tx_id].status)   # committed
        print(node.verify_proof(sent.tx_id).block_height)

See docs/member-guide.md of the project for the whole API and the CLI.
"""

from .bodies import SignedTx, sign_tx
from .client import Client
from .errors import ConsortiumError
from .keys import SigningKey, generate_key, load_key, save_key
from .results import Block, BlockSummary, Event, HistoryEntry, StateEntry, Submitted, TxStatus, Verified

__version__ = "0.1.0"

__all__ = [
    "Block",
    "BlockSummary",
    "Client",
    "ConsortiumError",
    "Event",
    "HistoryEntry",
    "SignedTx",
    "SigningKey",
    "StateEntry",
    "Submitted",
    "TxStatus",
    "Verified",
    "generate_key",
    "load_key",
    "save_key",
    "sign_tx",
]
