"""The peer hub: one per node process, owning every authenticated peer link.

The hub authenticates, frames, limits and delivers JSON objects; it never
interprets application messages. The engine plugs in through `configure()`
(or later `set_handlers()`), keeps the mesh with `set_targets()` and drops
suspended organisations with `revalidate()`. All methods run on the node's
asyncio loop; a thread (the engine core) uses the `*_threadsafe` variants.

Mesh rule: of two peers, only the one with the lexicographically lower
node_key dials. Inbound links are accepted from any allowed key whatever its
order (a peer may run an older rule, or be unreachable the other way).

Duplicate-link rule: a link competes for its peer's place only once it has
completed its own version 2 handshake (until then it is not registered at
all, so no unauthenticated socket can displace anything). Of two
authenticated links to one peer, both ends keep the same one: the link
dialled by the lower key; between two dialled by the same side, the
established one, unless it has heard nothing for two ping intervals (then it is
most likely half-open and the newcomer, which has just proved itself,
replaces it). See `_preferred` and docs/peers.md.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import time
from collections.abc import Awaitable, Callable, Coroutine, Iterable
from typing import Any

from consortium_protocol.keys import SigningKey
from peers import frames
from peers.limits import PeerLimits
from peers.link import INBOUND, OUTBOUND, Link, LinkInfo
from peers.sealed import MessageTooLarge

logger = logging.getLogger(__name__)

# How long stop() waits for peers to complete their closing handshakes.
SOCKET_CLOSE_WAIT = 2.0
# How long a peer disconnected for misbehaving is refused (both directions) before it may link again.
COOL_OFF_SECONDS = 30.0

MessageHandler = Callable[[str, dict[str, Any]], Awaitable[None] | None]
PeerHandler = Callable[[str], Awaitable[None] | None]


class PeerHub:
    def __init__(self) -> None:
        self.node_key: SigningKey | None = None
        self.chain_id = ""
        self.limits = PeerLimits()
        self._is_allowed: Callable[[str], bool] = lambda key: False
        self._on_message: MessageHandler | None = None
        self._on_peer_up: PeerHandler | None = None
        self._on_peer_down: PeerHandler | None = None
        self._links: dict[str, Link] = {}
        self._cooling: dict[str, float] = {}  # node key -> time (self.clock) until which its links are refused
        self.clock: Callable[[], float] = time.monotonic
        self._handshaking: set[Link] = set()
        self._targets: dict[str, str] = {}
        self._dialers: dict[str, asyncio.Task[None]] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self.running = False

    # Set-up -------------------------------------------------------------

    def configure(
        self,
        *,
        node_key: SigningKey,
        chain_id: str,
        is_allowed: Callable[[str], bool],
        on_message: MessageHandler | None = None,
        on_peer_up: PeerHandler | None = None,
        on_peer_down: PeerHandler | None = None,
        limits: PeerLimits | None = None,
    ) -> None:
        """Set identity, admission and handlers; only before start()."""
        if self.running:
            raise RuntimeError("configure() the hub before start(); use set_handlers() while it runs")
        self.node_key, self.chain_id, self._is_allowed = node_key, chain_id, is_allowed
        self.limits = limits or PeerLimits.from_settings()
        self.set_handlers(on_message=on_message, on_peer_up=on_peer_up, on_peer_down=on_peer_down)

    def set_handlers(
        self,
        *,
        on_message: MessageHandler | None = None,
        on_peer_up: PeerHandler | None = None,
        on_peer_down: PeerHandler | None = None,
    ) -> None:
        """Replace the callbacks at any time (None removes one)."""
        self._on_message, self._on_peer_up, self._on_peer_down = on_message, on_peer_up, on_peer_down

    @property
    def public_key(self) -> str:
        assert self.node_key is not None, "the hub is not configured"
        return self.node_key.public_key

    async def start(self) -> None:
        if self.node_key is None:
            raise RuntimeError("configure() the hub before start()")
        self._loop = asyncio.get_running_loop()
        self.running = True
        for key, url in self._targets.items():
            self._start_dialer(key, url)
        logger.info("peer hub started for %s… with %d targets", self.public_key[:12], len(self._targets))

    async def stop(self) -> None:
        """Stop dialling and close every link (code 4015, going away); returns when all are closed."""
        if not self.running:
            return
        self.running = False
        dialers = list(self._dialers.values())
        self._dialers.clear()
        for task in dialers:
            task.cancel()
        await asyncio.gather(*dialers, return_exceptions=True)
        links = [*self._links.values(), *self._handshaking]
        await asyncio.gather(*(link.close(frames.GOING_AWAY, "node_stopping") for link in links))
        # Wait (briefly) for each closing handshake: a consumer still waiting for its
        # disconnect when runnode stops the reactor is left pending, and CPython 3.11 was
        # seen to crash (SIGSEGV) garbage-collecting it at exit.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.gather(*(link.socket_gone.wait() for link in links)), SOCKET_CLOSE_WAIT)
        await asyncio.gather(*list(self._tasks), return_exceptions=True)
        logger.info("peer hub stopped")

    # Mesh ---------------------------------------------------------------

    def set_targets(self, targets: Iterable[tuple[str, str]]) -> None:
        """The peers to stay linked to, as (node_key, url); this node dials only keys above its own."""
        wanted = {key: url for key, url in targets if key != self.public_key}
        for key in [key for key in self._targets if self._targets[key] != wanted.get(key)]:
            self._stop_dialer(key)
        self._targets = wanted
        if self.running:
            for key, url in wanted.items():
                if key not in self._dialers:
                    self._start_dialer(key, url)

    def revalidate(self) -> list[str]:
        """Close the links of keys no longer allowed (e.g. a suspended organisation); returns them."""
        dropped = [key for key, link in self._links.items() if not self.is_allowed(key)]
        for key in dropped:
            logger.info("peer %s… no longer allowed; closing its link", key[:12])
            self._links[key].close_soon(frames.NOT_ALLOWED, "not_allowed")
        # Links still in their handshake are checked again when they register.
        return dropped

    def _start_dialer(self, key: str, url: str) -> None:
        from peers.dialer import dial_forever  # the dialer needs the websockets library only here

        if key > self.public_key:
            self._dialers[key] = asyncio.create_task(dial_forever(self, key, url), name=f"peer-dial-{key[:12]}")

    def _stop_dialer(self, key: str) -> None:
        task = self._dialers.pop(key, None)
        if task is not None:
            task.cancel()
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    # Sending ------------------------------------------------------------

    def send(self, node_key: str, message: dict[str, Any]) -> bool:
        """Queue `message` for one peer; False when not linked (or its queue overflowed).

        Raises ValueError for a message no peer would accept: not canonical
        JSON, no string `type`, a reserved `peer-` type; MessageTooLarge (a
        ValueError, also logged as an error) when its encoding exceeds the
        maximum message size. A large message is never dropped silently: up
        to the maximum it travels as sealed chunks.
        """
        return self._send_encoded(node_key, self._encode(message))

    def broadcast(self, message: dict[str, Any], exclude: Iterable[str] | str | None = None) -> int:
        """Queue `message` for every linked peer but `exclude`; returns how many took it (raises like send)."""
        return self._broadcast_encoded(self._encode(message), exclude)

    def send_threadsafe(self, node_key: str, message: dict[str, Any]) -> bool:
        """send() from another thread: encoded on the caller's thread; False (and an error logged) when refused."""
        data = self._encode_or_log(message)
        return data is not None and self._call_threadsafe(self._send_encoded, node_key, data)

    def broadcast_threadsafe(self, message: dict[str, Any], exclude: Iterable[str] | str | None = None) -> bool:
        """broadcast() from another thread; False (and an error logged) when the message is refused."""
        data = self._encode_or_log(message)
        return data is not None and self._call_threadsafe(self._broadcast_encoded, data, exclude)

    def disconnect(self, node_key: str, reason: str) -> None:
        """Close the link to a misbehaving peer and refuse its key for COOL_OFF_SECONDS."""
        self._cooling[node_key] = self.clock() + COOL_OFF_SECONDS
        link = self._links.get(node_key)
        logger.warning("peer %s… disconnected for %s s: %s", node_key[:12], f"{COOL_OFF_SECONDS:g}", reason)
        if link is not None:
            link.close_soon(frames.MISBEHAVING, "misbehaving")

    def disconnect_threadsafe(self, node_key: str, reason: str) -> bool:
        """disconnect() from another thread (the engine's)."""
        return self._call_threadsafe(self.disconnect, node_key, reason)

    def _send_encoded(self, node_key: str, data: bytes) -> bool:
        link = self._links.get(node_key)
        return link is not None and link.enqueue(data)

    def _broadcast_encoded(self, data: bytes, exclude: Iterable[str] | str | None) -> int:
        skip = {exclude} if isinstance(exclude, str) else set(exclude or ())
        return sum(link.enqueue(data) for key, link in list(self._links.items()) if key not in skip)

    def _encode_or_log(self, message: dict[str, Any]) -> bytes | None:
        try:
            return self._encode(message)
        except ValueError:
            logger.exception("peer message refused")
            return None

    def _call_threadsafe(self, method: Callable[..., Any], *args: Any) -> bool:
        if self._loop is None or self._loop.is_closed():
            return False
        self._loop.call_soon_threadsafe(self._logged, method, *args)
        return True

    @staticmethod
    def _logged(method: Callable[..., Any], *args: Any) -> None:
        try:
            method(*args)
        except Exception:
            logger.exception("peer %s from another thread failed", method.__name__)

    def _encode(self, message: dict[str, Any]) -> bytes:
        data = frames.encode_application(message).encode("utf-8")
        if len(data) > self.limits.max_message_bytes:
            logger.error(
                "peer message %r of %d bytes refused: over the maximum of %d", message["type"], len(data),
                self.limits.max_message_bytes,
            )  # fmt: skip
            raise MessageTooLarge(
                f"a {message['type']} message of {len(data)} bytes exceeds {self.limits.max_message_bytes}"
            )
        return data

    # Reporting ----------------------------------------------------------

    def links(self) -> list[LinkInfo]:
        return [link.info() for link in self._links.values()]

    def connected_keys(self) -> set[str]:
        return set(self._links)

    # Called by links ----------------------------------------------------

    def is_allowed(self, node_key: str) -> bool:
        try:
            return bool(self._is_allowed(node_key))
        except Exception:
            logger.exception("is_allowed failed; refusing %s…", node_key[:12])
            return False

    def _handshake_started(self, link: Link) -> bool:
        """Count an unauthenticated link; False when its client host already has its share (inbound only)."""
        if link.direction == INBOUND:
            host = link.transport.remote_host
            pending = sum(
                1 for other in self._handshaking if other.direction == INBOUND and other.transport.remote_host == host
            )
            if pending >= self.limits.unauthenticated_per_address:
                return False
        self._handshaking.add(link)
        return True

    def _register(self, link: Link) -> tuple[int, str] | None:
        """Admit an authenticated link; returns (close code, reason) when it must close instead."""
        self._handshaking.discard(link)
        key = link.peer_key
        assert key is not None
        if not self.running:
            return frames.GOING_AWAY, "node_stopping"
        if not self.is_allowed(key):
            return frames.NOT_ALLOWED, "not_allowed"
        if self._cooling.get(key, 0.0) > self.clock():
            return frames.MISBEHAVING, "cooling_off"
        old = self._links.get(key)
        if old is not None and self._preferred(old, link) is old:
            logger.info("peer %s… duplicate %s link refused; kept the %s one", key[:12], link.direction, old.direction)
            return frames.DUPLICATE, "duplicate_link"
        self._links[key] = link
        if old is not None:
            logger.info("peer %s… %s link replaces a duplicate %s one", key[:12], link.direction, old.direction)
            old.close_soon(frames.DUPLICATE, "duplicate_link")
            self._notify(self._on_peer_down, key)
        logger.info(
            "peer link up %s… %s local %s remote %s", key[:12], link.direction, link.transport.local_address,
            link.remote_address,
        )  # fmt: skip
        self._notify(self._on_peer_up, key)
        return None

    def _preferred(self, old: Link, new: Link) -> Link:
        """Which of two authenticated links to one peer both ends keep (docs/peers.md, duplicate links)."""
        lower = min(self.public_key, new.peer_key or "")

        def by_lower(link: Link) -> bool:
            return (self.public_key if link.direction == OUTBOUND else link.peer_key) == lower

        if by_lower(old) != by_lower(new):
            return old if by_lower(old) else new
        # Same dialler: the established link stays while it is alive (the peer pings and answers
        # our pings, so a live link is never silent for two ping intervals); a silent one is
        # likely half-open.
        return new if old.silent_for() > 2 * self.limits.ping_interval else old

    def _link_closed(self, link: Link) -> None:
        self._handshaking.discard(link)
        key = link.peer_key
        if key is None or self._links.get(key) is not link:
            return
        del self._links[key]
        uptime = time.monotonic() - link.opened_at if link.opened_at else 0.0
        logger.info(
            "peer link down %s… %s after %.0f s (%s %s)", key[:12], link.direction, uptime,
            link.close_code, link.close_reason,
        )  # fmt: skip
        self._notify(self._on_peer_down, key)

    async def _deliver(self, link: Link, message: dict[str, Any]) -> None:
        handler = self._on_message
        if handler is None or link.peer_key is None:
            return
        try:
            result = handler(link.peer_key, message)
            if inspect.isawaitable(result):
                await result
        except Exception:
            # A bug in the engine's handler must not cost us the link.
            logger.exception("on_message failed for a %r message from %s…", message["type"], link.peer_key[:12])

    def _notify(self, handler: PeerHandler | None, key: str) -> None:
        if handler is None:
            return
        try:
            result = handler(key)
        except Exception:
            logger.exception("peer up/down handler failed for %s…", key[:12])
            return
        if inspect.isawaitable(result):
            self._background(_awaited(result, key))

    def _background(self, coro: Coroutine[Any, Any, Any]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)


async def _awaited(result: Awaitable[Any], key: str) -> None:
    try:
        await result
    except Exception:
        logger.exception("peer up/down handler failed for %s…", key[:12])


_hub: PeerHub | None = None


def get_hub() -> PeerHub:
    """The process's hub (created on first use; `runnode` configures and starts it)."""
    global _hub  # one node per process
    if _hub is None:
        _hub = PeerHub()
    return _hub


def set_hub(hub: PeerHub | None) -> None:
    """Install a hub (tests), or with None forget it so get_hub() makes a fresh one."""
    global _hub
    _hub = hub
