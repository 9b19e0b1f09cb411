"""`Client`: one member's connection to one node of a consortium."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from consortium_protocol.keys import SigningKey
from consortium_protocol.transactions import SignedTx

from . import bodies, events, light
from .errors import ConsortiumError
from .keys import load_key
from .results import (
    FINAL_STATUSES,
    Block,
    BlockSummary,
    Event,
    HistoryEntry,
    StateEntry,
    Submitted,
    TxStatus,
    Verified,
)
from .transport import Transport, path_part

BATCH_LIMIT = 1000  # PROTOCOL.md section 6: at most 1000 envelopes per batch request
POLL_INTERVAL = 0.5
BLOCK_SUMMARY_FIELDS = frozenset({"height", "hash", "prev_hash", "time_ms", "proposer", "tx_count"})

OnFinal = Callable[[TxStatus], None]


class Client:
    """Sign, submit, wait for, read, watch and verify, against the node at `url`.

    `token` (a REST framework token) is needed for every read, `wait`, `watch`
    and `verify_proof`; submitting needs only `key`. `chain_id` is read once
    from the node's /genesis when not given. `genesis` is the trust anchor of
    `verify_proof`: a genesis file's path, or None to pin the node's own on
    first use (in `pin_dir`, default ~/.config/consortium/pins).
    """

    def __init__(
        self,
        url: str,
        *,
        token: str | None = None,
        key: SigningKey | str | Path | None = None,
        chain_id: str | None = None,
        genesis: str | Path | None = None,
        pin_dir: Path | None = None,
        timeout: float = 15.0,
        retries: int = 5,
        transport: Transport | None = None,
    ) -> None:
        self.transport = transport or Transport(url, token, timeout=timeout, retries=retries)
        self.url, self.token = self.transport.url, self.transport.token
        self.key = load_key(key) if isinstance(key, (str, Path)) else key
        self._chain_id = chain_id
        self._genesis_path, self._pin_dir = genesis, pin_dir
        self._history: light.ValidatorHistory | None = None

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.transport.close()

    # --- identity ---

    @property
    def chain_id(self) -> str:
        if self._chain_id is None:
            genesis = self.genesis()
            if not isinstance(genesis, dict) or not isinstance(genesis.get("chain_id"), str):
                raise ConsortiumError("bad_response", f"node {self.url} answered /genesis without a chain_id")
            self._chain_id = genesis["chain_id"]
        return self._chain_id

    def _signing_key(self) -> SigningKey:
        if self.key is None:
            raise ConsortiumError("no_key", "signing needs a key file: pass --key FILE or set CONSORTIUM_KEY")
        return self.key

    # --- signing and submitting ---

    def sign(self, tx_type: str, payload: dict[str, Any], *, nonce: int | None = None) -> SignedTx:
        return bodies.sign_tx(
            self._signing_key(), chain_id=self.chain_id, tx_type=tx_type, payload=payload, nonce=nonce
        )

    def submit(self, tx: SignedTx) -> Submitted:
        """POST one envelope. Sending it again (a retry) is safe: the node answers with its status."""
        code, answer = self.transport.post("/transactions", tx.envelope())
        if not isinstance(answer, dict) or answer.get("tx_id") != tx.tx_id:
            raise ConsortiumError("bad_response", f"node {self.url} answered for another transaction than {tx.tx_id}")
        return Submitted(tx.tx_id, str(answer.get("status")), created=code == 202)

    def submit_batch(self, txs: Iterable[SignedTx], *, on_sent: Callable[[int], None] | None = None) -> list[Submitted]:
        """Send envelopes in requests of at most 1000; one Submitted per envelope, in order.

        A line the node refused has `code` set (and `accepted` False)."""
        txs, outcome, seen = list(txs), [], set[str]()
        for start in range(0, len(txs), BATCH_LIMIT):
            chunk = txs[start : start + BATCH_LIMIT]
            _, answer = self.transport.post("/transactions/batch", {"transactions": [tx.envelope() for tx in chunk]})
            results = answer.get("results") if isinstance(answer, dict) else None
            if not isinstance(results, list) or len(results) != len(chunk):
                raise ConsortiumError(
                    "bad_response", f"node {self.url} answered a batch without one result per transaction"
                )
            for tx, result in zip(chunk, results, strict=True):
                outcome.append(_batch_result(tx, result, seen))
            if on_sent:
                on_sent(len(chunk))
        return outcome

    def put(self, namespace: str, key: str, value: Any, *, nonce: int | None = None) -> Submitted:
        return self.submit(self.sign("state.put", bodies.state_put(namespace, key, value), nonce=nonce))

    def delete(self, namespace: str, key: str, *, nonce: int | None = None) -> Submitted:
        return self.submit(self.sign("state.delete", bodies.state_delete(namespace, key), nonce=nonce))

    def add_member(self, public_key: str, roles: list[str], label: str = "", *, nonce: int | None = None) -> Submitted:
        return self.submit(self.sign("member.add", bodies.member_add(public_key, roles, label), nonce=nonce))

    def revoke_member(self, public_key: str, *, nonce: int | None = None) -> Submitted:
        return self.submit(self.sign("member.revoke", bodies.member_revoke(public_key), nonce=nonce))

    def propose(self, proposal_id: str, action: str, org: dict[str, Any], *, nonce: int | None = None) -> Submitted:
        return self.submit(self.sign("gov.propose", bodies.gov_propose(proposal_id, action, org), nonce=nonce))

    def vote(self, proposal_id: str, approve: bool, *, nonce: int | None = None) -> Submitted:
        return self.submit(self.sign("gov.vote", bodies.gov_vote(proposal_id, approve), nonce=nonce))

    # --- reading ---

    def transaction_record(self, tx_id: str) -> dict[str, Any]:
        record = self.transport.get(f"/transactions/{path_part(tx_id)}")
        if not isinstance(record, dict):
            raise ConsortiumError("bad_response", f"node {self.url} answered a transaction that is not an object")
        return record

    def status(self, tx_id: str) -> TxStatus:
        """The node's status of `tx_id`: pending, committed, rejected, or unknown."""
        try:
            return TxStatus.from_record(tx_id, self.transaction_record(tx_id))
        except ConsortiumError as exc:
            if exc.status == 404:
                return TxStatus(tx_id, "unknown")
            raise

    def get_state(self, namespace: str, key: str) -> StateEntry | None:
        try:
            entry = self.transport.get(f"/state/{path_part(namespace)}/{path_part(key)}")
        except ConsortiumError as exc:
            if exc.status == 404 and exc.code == "not_found":
                return None
            raise
        version = entry.get("version") if isinstance(entry, dict) else None
        if not isinstance(version, dict):
            raise ConsortiumError("bad_response", f"node {self.url} answered a state entry without a version")
        return StateEntry(
            _field(entry, "namespace"),
            _field(entry, "key"),
            _field(entry, "value"),
            _field(version, "block_height"),
            _field(version, "tx_id"),
        )

    def history(self, namespace: str, key: str, *, limit: int | None = None) -> Iterator[HistoryEntry]:
        """Every write and delete of the key, newest first, following the node's pages."""
        for change in self._pages(f"/state/{path_part(namespace)}/{path_part(key)}/history", limit):
            yield HistoryEntry(
                _field(change, "block_height"),
                _field(change, "tx_id"),
                _field(change, "signer"),
                _field(change, "op"),
                _field(change, "value"),
            )

    def blocks(self, *, limit: int | None = None) -> Iterator[BlockSummary]:
        """Committed blocks, newest first."""
        for item in self._pages("/blocks", limit):
            if not isinstance(item, dict) or not set(item) >= BLOCK_SUMMARY_FIELDS:
                raise ConsortiumError("bad_response", f"node {self.url} listed a block without its fields")
            yield BlockSummary(**{name: item[name] for name in BLOCK_SUMMARY_FIELDS})

    def block(self, height: int) -> Block:
        data = self.transport.get(f"/blocks/{int(height)}")
        if not isinstance(data, dict) or not all(k in data for k in ("header", "hash", "tx_ids", "results", "commit")):
            raise ConsortiumError("bad_response", f"node {self.url} answered block {height} without its fields")
        return Block(data["header"], data["hash"], data["tx_ids"], data["results"], data["commit"])

    def proof(self, tx_id: str) -> dict[str, Any]:
        proof = self.transport.get(f"/transactions/{path_part(tx_id)}/proof")
        if not isinstance(proof, dict):
            raise ConsortiumError("bad_response", f"node {self.url} answered a proof that is not an object")
        return proof

    def node_status(self) -> dict[str, Any]:
        return self.transport.get("/status")

    def genesis(self) -> dict[str, Any]:
        return self.transport.get("/genesis")

    def orgs(self) -> list[dict[str, Any]]:
        return list(self._pages("/orgs", None))

    def _pages(self, path: str, limit: int | None) -> Iterator[dict[str, Any]]:
        page, count = self.transport.get(path), 0
        while True:
            items = page.get("results") if isinstance(page, dict) else page
            if not isinstance(items, list):
                raise ConsortiumError("bad_response", f"node {self.url} answered {path} without a list of results")
            for item in items:
                if limit is not None and count >= limit:
                    return
                count += 1
                yield item
            following = page.get("next") if isinstance(page, dict) else None
            if not following:
                return
            page = self.transport.get_absolute(following)

    # --- events ---

    def watch(
        self,
        *,
        from_height: int | None = None,
        blocks: bool = False,
        txs: Iterable[str] = (),
        writes: Iterable[dict[str, str] | str] = (),
        governance: bool = False,
        reconnect: bool = True,
    ) -> events.Watch:
        """Live events of the node's /ws/events/ socket, resuming across reconnects without loss.

        `writes` entries are {"namespace", "prefix"} or "NAMESPACE[/PREFIX]" strings. The
        result is an iterator of Event; its close() (from any thread) ends it."""
        return events.watch(
            self.url,
            self.token,
            from_height=from_height,
            blocks=blocks,
            txs=txs,
            writes=[_write_filter(item) for item in writes],
            governance=governance,
            reconnect=reconnect,
        )

    def governance_events(self, *, from_height: int, below: int) -> Iterator[Event]:
        """The committed membership transactions of heights [from_height, below), from the event socket."""
        if from_height >= below:
            return
        watch = events.watch(self.url, self.token, from_height=from_height, governance=True)
        try:
            for event in watch:
                if event.height >= below:
                    return
                if event.type == "synced":
                    if event.height >= below - 1:
                        return
                    continue
                if event.type == "governance":
                    yield event
        finally:
            watch.close()

    def wait(
        self, tx_ids: Iterable[str], *, timeout: float = 30.0, on_final: OnFinal | None = None
    ) -> dict[str, TxStatus]:
        """Wait until every transaction is committed or rejected, or `timeout` seconds pass.

        One event socket reports them all as their blocks commit (those already
        final at once); a node without the socket is polled instead. Returns
        the last status of each id (status "pending" or "unknown" when it did
        not end in time)."""
        wanted = list(dict.fromkeys(tx_ids))
        statuses = {tx_id: TxStatus(tx_id, "pending") for tx_id in wanted}
        if not wanted:
            return statuses
        deadline = time.monotonic() + timeout
        try:
            self._wait_on_socket(wanted, statuses, deadline, on_final)
        except events.SocketMissing:
            self._wait_by_polling(wanted, statuses, deadline, on_final)
        for tx_id, status in statuses.items():
            if not status.final:  # one last look, so "unknown" is told apart from "pending"
                statuses[tx_id] = self.status(tx_id)
        return statuses

    def _wait_on_socket(
        self, wanted: list[str], statuses: dict[str, TxStatus], deadline: float, on_final: OnFinal | None
    ) -> None:
        """Wait on one socket; when the node closes it (a restart, a slow read) open another for the rest."""
        failures = 0
        while True:
            try:
                self._wait_on_one_socket([t for t in wanted if not statuses[t].final], statuses, deadline, on_final)
                return
            except events.SocketClosed as exc:
                if not exc.resumable:
                    raise
            except events.SocketMissing:
                raise
            except ConsortiumError as exc:
                if exc.code != "unreachable":
                    raise
            failures += 1
            pause = min(0.25 * 2**failures, 5.0)
            if time.monotonic() + pause >= deadline:
                return
            time.sleep(pause)

    def _wait_on_one_socket(
        self, wanted: list[str], statuses: dict[str, TxStatus], deadline: float, on_final: OnFinal | None
    ) -> None:
        if not wanted:
            return
        queue, open_count = list(wanted), 0
        with events.EventSocket(self.url, self.token) as socket:
            first, queue = queue[: events.MAX_TXS], queue[events.MAX_TXS :]
            socket.subscribe(txs=first)
            open_count = len(first)
            while queue and open_count + events.MAX_TXS <= events.MAX_WATCHED:  # up to 10,000 at once
                more, queue = queue[: events.MAX_TXS], queue[events.MAX_TXS :]
                socket.watch_txs(more)
                open_count += len(more)
            last_sent = time.monotonic()
            while open_count or queue:
                free = min(events.MAX_WATCHED - open_count, events.MAX_TXS)
                # Top up the watched set in large steps: the node allows 120 messages a minute.
                if queue and (free >= min(100, len(queue))) and time.monotonic() - last_sent >= 0.5:
                    more, queue = queue[:free], queue[free:]
                    socket.watch_txs(more)
                    open_count += len(more)
                    last_sent = time.monotonic()
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return
                message = socket.receive(timeout=min(remaining, 0.5))
                if not message or message.get("type") != "tx" or message.get("tx_id") not in statuses:
                    continue
                status = TxStatus(
                    message["tx_id"],
                    message.get("status", "?"),
                    message.get("code"),
                    message.get("height"),
                    message.get("index"),
                )
                if status.final and not statuses[status.tx_id].final:
                    statuses[status.tx_id] = status
                    open_count -= 1
                    if on_final:
                        on_final(status)

    def _wait_by_polling(
        self, wanted: list[str], statuses: dict[str, TxStatus], deadline: float, on_final: OnFinal | None
    ) -> None:
        open_ids = list(wanted)
        while open_ids:
            for tx_id in open_ids:
                statuses[tx_id] = self.status(tx_id)
                if statuses[tx_id].final and on_final:
                    on_final(statuses[tx_id])
            open_ids = [tx_id for tx_id in open_ids if not statuses[tx_id].final]
            if not open_ids or time.monotonic() >= deadline:
                return
            time.sleep(min(POLL_INTERVAL, max(deadline - time.monotonic(), 0.0)))

    # --- verification ---

    def verify_proof(self, tx_id: str) -> Verified:
        """Check `tx_id`'s inclusion and its block's certificate from the genesis file alone.

        Raises ConsortiumError with code "not_verified" when anything does not
        check out; returns what was verified otherwise."""
        if self._history is None:
            genesis = (
                light.load_genesis_file(self._genesis_path)
                if self._genesis_path
                else light.pinned_genesis(self, self._pin_dir)
            )
            if self._chain_id is not None and genesis["chain_id"] != self._chain_id:
                raise light.not_verified(f"the genesis is for chain {genesis['chain_id']!r}, not {self._chain_id!r}")
            self._history = light.ValidatorHistory(genesis)
        return light.verify_transaction(self, self._history, tx_id)


def _write_filter(item: dict[str, str] | str) -> dict[str, str]:
    if isinstance(item, dict):
        return item
    namespace, _, prefix = item.partition("/")
    return {"namespace": namespace, "prefix": prefix}


def _batch_result(tx: SignedTx, result: Any, seen: set[str]) -> Submitted:
    if not isinstance(result, dict) or result.get("error") or result.get("tx_id") != tx.tx_id:
        error = result.get("error") if isinstance(result, dict) else None
        if isinstance(error, dict):
            code = str(error.get("error") or error.get("code") or "error")
        else:
            code = str(error) if error else "bad_result"
        return Submitted(tx.tx_id, "refused", created=False, code=code)
    # A known tx id is reported with its current status: a line repeating an earlier
    # one, or not pending any more, is a duplicate unless the node says "created".
    created = result.get("created")
    status = str(result.get("status"))
    is_new = created is True or (created is None and tx.tx_id not in seen and status == "pending")
    seen.add(tx.tx_id)
    return Submitted(tx.tx_id, status, created=is_new)


def _field(data: dict[str, Any], name: str) -> Any:
    """One field of a JSON object the node answered, None if absent (docs/api.md gives its type)."""
    return data.get(name)


__all__ = ["FINAL_STATUSES", "Client"]
