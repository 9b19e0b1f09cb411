"""The node's application event socket, /ws/events/ (docs/api.md), as plain iterators.

`EventSocket` is one connection: subscribe once, then read events. `watch`
keeps a subscription alive across reconnects: it resumes from the height of
the last event it yielded, drops what it had already yielded, and so loses
nothing when the node closes a slow consumer (4429) or restarts.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterable, Iterator
from typing import Any

from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus, InvalidURI
from websockets.sync.client import ClientConnection, connect

from .errors import ConsortiumError, one_line
from .results import Event

EVENT_TYPES = ("block", "tx", "write", "governance")
MAX_TXS = 500  # tx ids in one subscribe or watch_txs message (one message fits the node's 64 KiB frame)
MAX_WATCHED = 10_000  # tx ids a socket watches at once (a reported one frees its place)
MAX_MESSAGE = 1 << 20
RESUMABLE_CLOSES = (1001, 1006, 1011, 1012, 4429)  # shutting down, dropped, server error, restart, slow consumer
CLOSE_MEANINGS = {
    4400: "bad_message",
    4401: "not_authenticated",
    4409: "too_many_sockets",
    4429: "slow_consumer",
}


def events_url(node_url: str) -> str:
    """http(s)://HOST[/...] -> ws(s)://HOST/ws/events/."""
    scheme, rest = node_url.split("://", 1)
    host = rest.split("/", 1)[0]
    return f"{'wss' if scheme == 'https' else 'ws'}://{host}/ws/events/"


class SocketMissing(ConsortiumError):
    """The node has no event socket (an older node): callers may fall back to polling."""


class EventSocket:
    """One authenticated /ws/events/ connection."""

    def __init__(self, node_url: str, token: str | None, *, open_timeout: float = 10.0) -> None:
        if not token:
            raise ConsortiumError(
                "no_token", "the event socket needs an API token: pass --token or set CONSORTIUM_TOKEN"
            )
        self.url = events_url(node_url)
        self.last_error: dict[str, Any] | None = None  # the node's {"type": "error"} sent before it closes
        try:
            self.conn: ClientConnection = connect(
                self.url,
                additional_headers={"Authorization": f"Token {token}"},
                max_size=MAX_MESSAGE,
                open_timeout=open_timeout,
                proxy=None,
                compression=None,
                user_agent_header="consortium-client/0.1",
                legacy=True,  # a connection object of our own, closed in close()
            )
        except InvalidStatus as exc:
            status = exc.response.status_code
            if status == 404:
                raise SocketMissing("no_event_socket", f"node {self.url} has no event socket", status=404) from None
            code = "not_authenticated" if status in (401, 403) else f"http_{status}"
            hint = " (pass a valid --token or set CONSORTIUM_TOKEN)" if status in (401, 403) else ""
            raise ConsortiumError(
                code, f"the event socket {self.url} refused the connection (HTTP {status}){hint}", status=status
            ) from None
        except (InvalidHandshake, InvalidURI, OSError, TimeoutError) as exc:
            raise ConsortiumError(
                "unreachable", f"cannot open the event socket {self.url}: {one_line(str(exc)) or type(exc).__name__}"
            ) from None

    def __enter__(self) -> EventSocket:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.conn.close()

    def send(self, message: dict[str, Any]) -> None:
        try:
            self.conn.send(json.dumps(message, separators=(",", ":")))
        except ConnectionClosed as exc:
            raise closed_error(exc, self.last_error) from None

    def subscribe(
        self,
        *,
        from_height: int | None = None,
        blocks: bool = False,
        txs: Iterable[str] = (),
        writes: Iterable[dict[str, str]] = (),
        governance: bool = False,
    ) -> dict[str, Any]:
        """Send the subscription and return the node's `subscribed` answer ({"tip", "from_height", ...})."""
        message: dict[str, Any] = {"type": "subscribe", "blocks": blocks, "governance": governance}
        if from_height is not None:
            message["from_height"] = from_height
        tx_list, write_list = list(txs), list(writes)
        if tx_list:
            message["txs"] = tx_list
        if write_list:
            message["writes"] = write_list
        self.send(message)
        answer = self.receive(timeout=30.0)
        if answer is None or answer.get("type") != "subscribed":
            raise ConsortiumError("bad_response", "the event socket did not confirm the subscription")
        return answer

    def watch_txs(self, tx_ids: list[str]) -> None:
        self.send({"type": "watch_txs", "txs": tx_ids})

    def receive(self, timeout: float | None = None) -> dict[str, Any] | None:
        """The next message, or None when `timeout` seconds pass without one."""
        try:
            raw = self.conn.recv(timeout=timeout)
        except TimeoutError:
            return None
        except ConnectionClosed as exc:
            raise closed_error(exc, self.last_error) from None
        try:
            message = json.loads(raw)
        except ValueError:
            raise ConsortiumError("bad_response", "the event socket sent a message that is not JSON") from None
        if not isinstance(message, dict) or not isinstance(message.get("type"), str):
            raise ConsortiumError("bad_response", "the event socket sent a message without a type")
        if message["type"] == "error":
            self.last_error = message
        return message


class SocketClosed(ConsortiumError):
    def __init__(self, close_code: int | None, reason: str) -> None:
        self.close_code = close_code
        meaning = CLOSE_MEANINGS.get(close_code or 0, "closed")
        detail = f"the event socket was closed ({close_code or 'no code'} {meaning})" + (
            f": {reason}" if reason else ""
        )
        super().__init__(meaning, detail)

    @property
    def resumable(self) -> bool:
        return self.close_code in RESUMABLE_CLOSES or self.close_code is None


def closed_error(exc: ConnectionClosed, error: dict[str, Any] | None = None) -> SocketClosed:
    """The close, with the detail of the error message the node sent before it (daphne drops close reasons)."""
    frame = exc.rcvd
    reason = one_line(frame.reason) if frame and frame.reason else ""
    if error and isinstance(error.get("detail"), str):
        reason = one_line(error["detail"])[:200]
    code = frame.code if frame else (error.get("code") if error and isinstance(error.get("code"), int) else None)
    return SocketClosed(code, reason)


def to_event(message: dict[str, Any]) -> Event | None:
    kind, height = message.get("type"), message.get("height")
    if kind not in (*EVENT_TYPES, "synced") or not isinstance(height, int) or isinstance(height, bool):
        return None
    return Event(kind, height, {k: v for k, v in message.items() if k not in ("type", "height")})


class Watch:
    """An iterator over a subscription's events; `close()`, from any thread, ends it at once."""

    def __init__(self, node_url: str, token: str | None, **options: Any) -> None:
        # The generator sees only this state, not the Watch: no cycle, so dropping an
        # unfinished Watch closes its socket at once (its reader thread would keep a
        # process from exiting).
        self.state = _WatchState()
        self._events = _events(self.state, node_url, token, **options)

    def __iter__(self) -> Watch:
        return self

    def __next__(self) -> Event:
        return next(self._events)

    def close(self) -> None:
        self.state.closed.set()
        socket = self.state.socket
        if socket is not None:
            socket.close()  # a receive() blocked in another thread ends with the close


class _WatchState:
    def __init__(self) -> None:
        self.closed = threading.Event()
        self.socket: EventSocket | None = None


def watch(node_url: str, token: str | None, **options: Any) -> Watch:
    """Every matching event, in height order, across reconnects; `synced` marks the end of a replay.

    Options: from_height, blocks, txs, writes, governance, reconnect (True),
    max_reconnects (20). A `tx` event comes once per tx id. On a resumable
    close the socket is opened again from the last height yielded, and events
    already yielded are skipped, so the caller sees each one exactly once.
    """
    return Watch(node_url, token, **options)


def _events(
    owner: _WatchState,
    node_url: str,
    token: str | None,
    *,
    from_height: int | None = None,
    blocks: bool = False,
    txs: Iterable[str] = (),
    writes: Iterable[dict[str, str]] = (),
    governance: bool = False,
    reconnect: bool = True,
    max_reconnects: int = 20,
) -> Iterator[Event]:
    watched = list(dict.fromkeys(txs))
    if len(watched) > MAX_WATCHED:
        raise ConsortiumError("bad_input", f"one watch follows at most {MAX_WATCHED} tx ids; use wait for more")
    write_list = list(writes)
    resume = from_height
    last_height, seen_at_last = 0, set[tuple[str, int, Any]]()
    reported: set[str | None] = set()
    failures = 0
    while True:
        pending_txs = [tx_id for tx_id in watched if tx_id not in reported]
        if not (blocks or write_list or governance or pending_txs):
            return  # only tx ids were asked for, and every one has been reported
        if owner.closed.is_set():
            return
        try:
            with EventSocket(node_url, token) as socket:
                owner.socket = socket
                if owner.closed.is_set():
                    return
                answer = socket.subscribe(
                    from_height=resume,
                    blocks=blocks,
                    txs=pending_txs[:MAX_TXS],
                    writes=write_list,
                    governance=governance,
                )
                for start in range(MAX_TXS, len(pending_txs), MAX_TXS):  # more than one message holds
                    socket.watch_txs(pending_txs[start : start + MAX_TXS])
                if resume is None and isinstance(answer.get("from_height"), int):
                    resume = answer["from_height"]
                failures = 0
                while True:
                    message = socket.receive()
                    event = to_event(message) if message else None
                    if event is None:
                        continue
                    if event.type == "tx":
                        if event.data.get("tx_id") in reported:
                            continue
                        reported.add(event.data.get("tx_id"))
                        yield event
                        if not (blocks or write_list or governance) and reported >= set(watched):
                            return  # a watch of tx ids alone ends when each has been reported
                        continue
                    marker = (event.type, event.height, event.data.get("index"))
                    if event.height < last_height or (event.height == last_height and marker in seen_at_last):
                        continue
                    if event.height > last_height:
                        last_height, seen_at_last = event.height, set()
                    seen_at_last.add(marker)
                    resume = max(resume or 0, event.height)
                    yield event
        except SocketClosed as exc:
            if owner.closed.is_set():
                return
            if not (reconnect and exc.resumable) or failures >= max_reconnects:
                raise
        except ConsortiumError as exc:
            if owner.closed.is_set():
                return
            if not reconnect or exc.code != "unreachable" or failures >= max_reconnects:
                raise
        finally:
            owner.socket = None
        failures += 1
        time.sleep(min(0.25 * 2**failures, 5.0))
