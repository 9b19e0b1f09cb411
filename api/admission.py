"""Admission of the envelopes of concurrent submit requests, together.

Each submit must be durably pooled before its answer, and on SQLite every
commit is an fsync. The submit views are async: a request hands its
envelopes to this process's `AdmissionQueue` and awaits them. One admission
thread takes everything queued since its last round and admits it with one
`ledger.pool.admit` call: one lookup of known ids, one lookup of signers, one
insert and one commit for all of those requests. While it works, the event
loop keeps reading new requests, which form the next round. A lone submit
waits for nobody.

The thread is dedicated, not Django's shared sync thread, so a commit's fsync
never holds up the other requests' sync hops.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from django.db import close_old_connections, connections

from api.errors import ApiError
from common.db import use_dedicated_connection
from consortium_protocol.errors import ProtocolError
from ledger import selectors
from ledger.pool import Admission, admit
from node.notify import pool_changed_coalesced

Outcome = Admission | ProtocolError
T = TypeVar("T")
ROUND_LIMIT = 2000  # envelopes per round; a round takes whole requests, so a batch of 1,000 may exceed it alone

# Its own database connection for life, outside the request pool (common.db).
_executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="admission", initializer=use_dedicated_connection)


def admit_requests(requests: list[list[Any]]) -> list[list[Outcome]]:
    """Admit the envelopes of several requests in one call; the outcomes, split back per request.

    Runs on the admission thread, which serves no request of its own, so it
    closes unusable or expired connections before and after, as Django does
    around each request (CONN_MAX_AGE).
    """
    close_old_connections()
    try:
        chain_id = selectors.chain_id()
        if chain_id is None:
            raise ApiError("no_chain", "this node has no chain yet; start it from its home first", 503)
        outcomes = admit([envelope for envelopes in requests for envelope in envelopes], chain_id=chain_id)
    finally:
        close_old_connections()
    split, start = [], 0
    for envelopes in requests:
        split.append(outcomes[start : start + len(envelopes)])
        start += len(envelopes)
    return split


async def on_admission_thread(function: Callable[..., T], *args: Any) -> T:
    """Run `function(*args)` on the admission thread: the submit path's other database reads, on its connection."""
    return await asyncio.get_running_loop().run_in_executor(_executor, function, *args)


def close_connections() -> None:
    """Close the admission thread's database connections (before a test database is dropped)."""
    _executor.submit(connections.close_all).result()


class AdmissionQueue:
    """The submissions waiting for the admission thread, on one event loop."""

    def __init__(self) -> None:
        self._waiting: list[tuple[list[Any], asyncio.Future[list[Outcome]]]] = []
        self._drainer: asyncio.Task[None] | None = None

    async def admit(self, envelopes: list[Any]) -> list[Outcome]:
        future: asyncio.Future[list[Outcome]] = asyncio.get_running_loop().create_future()
        self._waiting.append((envelopes, future))
        if self._drainer is None or self._drainer.done():
            self._drainer = asyncio.create_task(self._drain())
        return await future

    async def _drain(self) -> None:
        loop = asyncio.get_running_loop()
        while self._waiting:
            round_ = self._next_round()
            try:
                outcomes = await loop.run_in_executor(_executor, admit_requests, [e for e, _ in round_])
            except Exception as error:  # every request of the round learns why (ApiError, or a database error)
                for _, future in round_:
                    if not future.done():
                        future.set_exception(error)
                continue
            for (_, future), outcome in zip(round_, outcomes, strict=True):
                if not future.done():  # a request whose client went away is cancelled; its envelopes still count
                    future.set_result(outcome)
            if any(isinstance(o, Admission) and o.created for request in outcomes for o in request):
                await pool_changed_coalesced()

    def _next_round(self) -> list[tuple[list[Any], asyncio.Future[list[Outcome]]]]:
        taken, size = 0, 0
        for envelopes, _ in self._waiting:
            if taken and size + len(envelopes) > ROUND_LIMIT:
                break
            taken, size = taken + 1, size + len(envelopes)
        round_, self._waiting = self._waiting[:taken], self._waiting[taken:]
        return round_


_queues: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, AdmissionQueue] = weakref.WeakKeyDictionary()


async def admit_envelopes(envelopes: list[Any]) -> list[Outcome]:
    """Validate and durably pool `envelopes` (see ledger.pool.admit), together with concurrent requests."""
    loop = asyncio.get_running_loop()
    queue = _queues.get(loop)
    if queue is None:
        queue = _queues[loop] = AdmissionQueue()
    return await queue.admit(envelopes)
