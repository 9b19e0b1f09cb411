"""A realistic demo workload: shipments moving through a food supply chain.

Each organisation's writer key moves shipments from farm to shop, recording
every step (loaded, in transit with a temperature reading, at the depot,
delivered) as a `state.put` of the shipment's key, so the explorer's
provenance view has real histories to show. Transactions go, in batches,
to every node in turn over the public REST API.
"""

from __future__ import annotations

import json
import logging
import random
import secrets
import threading
import urllib.error
import urllib.request
from dataclasses import dataclass

from consortium_protocol.keys import SigningKey
from consortium_protocol.transactions import sign_body

logger = logging.getLogger(__name__)

PRODUCTS = ["lettuce", "strawberries", "milk", "salmon", "cheddar", "apples", "yoghurt", "chicken"]
PLACES = ["Valley Farm", "North Dairy", "Harbour Depot", "City Hub", "Metro Store 12", "Coastal Market"]
STEPS = ["packed", "loaded", "in-transit", "at-depot", "out-for-delivery", "delivered"]


@dataclass
class Shipment:
    key: str
    product: str
    origin: str
    destination: str
    step: int = 0


class SupplyChainTraffic:
    def __init__(self, *, chain_id: str, node_urls: list[str], writers: list[SigningKey], rate: float = 10.0) -> None:
        self.chain_id = chain_id
        self.node_urls = node_urls
        self.writers = writers
        self.rate = rate
        self.shipments: list[Shipment] = []
        self.sent = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="devnet-traffic", daemon=True)
        self._serial = random.randint(1000, 9000)
        self._failing: set[str] = set()

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)

    def _run(self) -> None:
        turn = 0
        while not self._stop.wait(1.0):
            url = self.node_urls[turn % len(self.node_urls)]
            turn += 1
            self._send(url, [self._next_transaction() for _ in range(max(1, int(self.rate)))])

    def _next_transaction(self) -> dict:
        moving = [s for s in self.shipments if s.step < len(STEPS) - 1]
        if len(moving) < 8 or random.random() < 0.2:
            shipment = self._new_shipment()
        else:
            shipment = random.choice(moving)
            shipment.step += 1
        writer = random.choice(self.writers)
        value = {
            "product": shipment.product,
            "origin": shipment.origin,
            "destination": shipment.destination,
            "status": STEPS[shipment.step],
            # Temperatures in tenths of a degree: the protocol has no floats.
            "temp_c_x10": random.randint(15, 60) if shipment.step in (1, 2, 3) else random.randint(20, 80),
        }
        body = {
            "chain_id": self.chain_id,
            "type": "state.put",
            "signer": writer.public_key,
            "nonce": secrets.randbelow(2**53),
            "payload": {"namespace": "shipments", "key": shipment.key, "value": value},
        }
        return sign_body(body, writer)

    def _new_shipment(self) -> Shipment:
        self._serial += 1
        origin, destination = random.sample(PLACES, 2)
        shipment = Shipment(f"SHIP-{self._serial}", random.choice(PRODUCTS), origin, destination)
        self.shipments.append(shipment)
        self.shipments = self.shipments[-200:]
        return shipment

    def _send(self, url: str, envelopes: list[dict]) -> None:
        data = json.dumps({"transactions": envelopes}).encode()
        request = urllib.request.Request(  # noqa: S310 - our own loopback nodes, http only
            f"{url}/api/v1/transactions/batch", data=data, headers={"Content-Type": "application/json"}
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - our own loopback nodes
                response.read()
            self.sent += len(envelopes)
            self._failing.discard(url)
        except (urllib.error.URLError, OSError) as exc:
            if url not in self._failing:  # say it once per outage, not every second
                logger.warning("traffic: %s did not take a batch (%s); retrying quietly", url, exc)
                self._failing.add(url)
