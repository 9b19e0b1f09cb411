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
from django.utils import timezone

from consortium_protocol.votes import quorum, third
from ops import selectors
from ops.selectors import EngineReport

logger = logging.getLogger(__name__)

CHANNEL_TIMEOUT_SECONDS = 1.0  # a healthy layer round-trips in milliseconds
REPORT_MAX_AGE_SECONDS = 5.0  # the engine reports every second (node.core.STATUS_SECONDS)


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
    report = selectors.engine_report()
    if report is None:
        return _unknown("the engine has not reported yet")
    age = (timezone.now() - report.updated_at).total_seconds()
    if age > REPORT_MAX_AGE_SECONDS:
        return _unknown(f"the engine's last report is {age:.0f} s old")
    return [Check("engine", True), check_peers(report, set(selectors.validator_orgs())), check_sync(report)]


def needed_links(validators: set[str], me: str) -> int:
    """Links to other validators that make this node useful.

    A validator needs quorum - 1 (with its own vote, a quorum can decide). A
    node that only follows needs f + 1 (one of them is surely honest, so a
    lying peer cannot keep it behind).
    """
    if me in validators:
        return quorum(len(validators)) - 1
    return min(third(len(validators)), len(validators))


def check_peers(report: EngineReport, validators: set[str]) -> Check:
    others = validators - {report.node_key}
    needed = needed_links(validators, report.node_key)
    linked = len(report.linked_keys() & others)
    if linked < needed:
        return Check("peers", False, f"{linked} of {needed} needed validator links are up")
    return Check("peers", True, f"{linked} of {len(others)} other validators linked")


def check_sync(report: EngineReport) -> Check:
    if report.syncing:
        behind = max(0, report.sync_target - report.height)
        return Check("sync", False, f"catching up from peers: {behind} blocks behind")
    return Check("sync", True)


def _unknown(why: str) -> list[Check]:
    return [Check(name, False, why) for name in ("engine", "peers", "sync")]
