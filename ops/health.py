"""Readiness: can this node serve and take part right now?

Each check answers ok or not with a short reason meant for a monitoring
system that has no login, so a reason names no host, key, path or exception
text: the details of a failure go to the log instead.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from dataclasses import asdict, dataclass

from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from django.db import DatabaseError, connection

from consortium_protocol.votes import link_health
from ledger.selectors import EngineReport, engine_report
from ops import selectors

logger = logging.getLogger(__name__)

CHANNEL_TIMEOUT_SECONDS = 1.0  # a healthy layer round-trips in milliseconds


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    reason: str = ""


@dataclass(frozen=True)
class Readiness:
    checks: list[Check]

    @property
    def ready(self) -> bool:
        return all(check.ok for check in self.checks)

    def as_dict(self) -> dict[str, object]:
        return {"status": "ready" if self.ready else "not ready", "checks": [asdict(c) for c in self.checks]}


async def readiness() -> Readiness:
    database = await sync_to_async(check_database)()
    channel_layer = await check_channel_layer()
    engine = await sync_to_async(check_engine)() if database.ok else _unknown("database unavailable")
    return Readiness([database, channel_layer, *engine])


def check_database() -> Check:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except DatabaseError:
        logger.warning("readiness: the database did not answer", exc_info=True)
        return Check("database", False, "the database did not answer")
    return Check("database", True)


async def check_channel_layer() -> Check:
    """Send a message to a fresh channel of our own and receive it back."""
    layer = get_channel_layer()
    if layer is None:
        return Check("channel_layer", False, "no channel layer is configured")
    token = secrets.token_hex(8)
    try:
        async with asyncio.timeout(CHANNEL_TIMEOUT_SECONDS):
            channel = await layer.new_channel()
            await layer.send(channel, {"type": "readiness.ping", "token": token})
            message = await layer.receive(channel)
    except TimeoutError:
        return Check("channel_layer", False, f"no round trip within {CHANNEL_TIMEOUT_SECONDS:g} s")
    except Exception:  # any backend failure (Redis down, full channel) means not ready
        logger.warning("readiness: the channel layer failed", exc_info=True)
        return Check("channel_layer", False, "the channel layer failed")
    if message.get("token") != token:
        return Check("channel_layer", False, "the channel layer returned another message")
    return Check("channel_layer", True)


def check_engine() -> list[Check]:
    """The engine's report is fresh, enough peers are linked, and the node is not catching up."""
    report = engine_report()
    if report is None:
        return _unknown("the engine has not reported yet")
    if report.stale:  # older than ledger.selectors.REPORT_MAX_AGE_SECONDS
        return _unknown(f"the engine's last report is {report.age_seconds():.0f} s old")
    return [Check("engine", True), check_peers(report, set(selectors.validator_orgs())), check_sync(report)]


def check_peers(report: EngineReport, validators: set[str]) -> Check:
    """Enough links to other validators, by consortium_protocol.votes.link_health (the explorer's rule too)."""
    health = link_health(validators, report.linked_keys(), report.node_key)
    if not health.enough:
        return Check("peers", False, f"{health.linked} of {health.needed} needed validator links are up")
    return Check("peers", True, f"{health.linked} of {health.validators - health.validating} other validators linked")


def check_sync(report: EngineReport) -> Check:
    if report.syncing:
        behind = max(0, report.sync_target - report.height)
        return Check("sync", False, f"catching up from peers: {behind} blocks behind")
    return Check("sync", True)


def _unknown(why: str) -> list[Check]:
    return [Check(name, False, why) for name in ("engine", "peers", "sync")]
