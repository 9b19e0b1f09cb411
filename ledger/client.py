"""A member's client for a node's REST API (PROTOCOL.md sections 3 and 6).

Everything here runs on the member's machine and needs no database: it builds
transaction bodies, signs them with the member's key, checks the envelope
with the same `parse_envelope` gate the node applies (so a malformed payload
fails before anything is sent), and speaks HTTP with the standard library.

Every failure is a `ClientError` whose message is one line a person can act
on; the `tx` management command shows it as is.
"""

from __future__ import annotations

import http.client
import json
import secrets
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

from consortium_protocol.canonical import MAX_SAFE_INTEGER, canonical, loads_strict
from consortium_protocol.errors import ProtocolError
from consortium_protocol.keys import SigningKey
from consortium_protocol.transactions import SignedTx, parse_envelope, sign_body

API_PREFIX = "/api/v1"
BATCH_LIMIT = 1000  # PROTOCOL.md section 6: at most 1000 envelopes per batch
HTTP_TIMEOUT = 15.0
FINAL_STATUSES = ("committed", "rejected")
BODY_FIELDS = frozenset({"chain_id", "type", "signer", "nonce", "payload"})
LINE_FIELDS = frozenset({"type", "payload", "nonce"})
MAX_DETAIL = 300


class ClientError(Exception):
    """A failure the user fixes; str() is one line."""

    def __init__(self, message: str) -> None:
        super().__init__(one_line(message))


class ApiError(ClientError):
    """The node answered with an error status and its {"error", "detail"} body."""

    def __init__(self, status: int, error: str, detail: str) -> None:
        self.status, self.error, self.detail = status, error, detail
        super().__init__(f"node refused the request (HTTP {status}) {error}: {detail}")


def one_line(text: str) -> str:
    return " ".join(text.split())


def describe(detail: Any) -> str:
    """A node's `detail` (a string, or DRF's field errors) as one short line."""
    text = detail if isinstance(detail, str) else json.dumps(detail, ensure_ascii=False, sort_keys=True)
    text = one_line(text)
    return text if len(text) <= MAX_DETAIL else text[: MAX_DETAIL - 3] + "..."


# --- values and payloads -----------------------------------------------------------------------


def parse_value(text: str, what: str = "VALUE_JSON") -> Any:
    """Parse JSON the way the node will: floats, NaN and duplicate keys are refused."""
    try:
        return loads_strict(text)
    except ProtocolError as exc:
        if exc.code == "float_not_allowed":
            raise ClientError(
                f'{what} holds a float, which the protocol refuses: use integers or strings, e.g. 4 or "4.5"'
            ) from None
        raise ClientError(f"{what} is not valid JSON for a transaction: {exc.detail}") from None


def parse_object(text: str, what: str) -> dict[str, Any]:
    value = parse_value(text, what)
    if not isinstance(value, dict):
        raise ClientError(f"{what} must be a JSON object")
    return value


def read_json_file(path: Path, what: str) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ClientError(f"{what} {path} cannot be read: {getattr(exc, 'strerror', None) or exc}") from None
    return parse_object(text, f"{what} {path}")


def state_put(namespace: str, key: str, value: Any) -> dict[str, Any]:
    return {"namespace": namespace, "key": key, "value": value}


def state_delete(namespace: str, key: str) -> dict[str, Any]:
    return {"namespace": namespace, "key": key}


def member_add(public_key: str, roles: list[str], label: str) -> dict[str, Any]:
    return {"key": public_key, "roles": roles, "label": label}


def member_revoke(public_key: str) -> dict[str, Any]:
    return {"key": public_key}


def gov_propose(proposal_id: str, action: str, org: dict[str, Any]) -> dict[str, Any]:
    return {"proposal_id": proposal_id, "action": action, "org": org}


def gov_vote(proposal_id: str, approve: bool) -> dict[str, Any]:
    return {"proposal_id": proposal_id, "approve": approve}


# --- bodies and signatures ---------------------------------------------------------------------


def random_nonce() -> int:
    """A fresh nonce, so sending the same command twice makes two transactions."""
    return secrets.randbelow(MAX_SAFE_INTEGER + 1)


def build_body(
    *, chain_id: str, tx_type: str, signer: str, payload: dict[str, Any], nonce: int | None = None
) -> dict[str, Any]:
    return {
        "chain_id": chain_id,
        "type": tx_type,
        "signer": signer,
        "nonce": random_nonce() if nonce is None else nonce,
        "payload": payload,
    }


def sign(body: dict[str, Any], key: SigningKey) -> SignedTx:
    """Sign `body` and check the envelope exactly as the node's admission will."""
    try:
        return parse_envelope(sign_body(body, key), body["chain_id"])
    except ProtocolError as exc:
        raise ClientError(f"{body.get('type')} transaction is malformed: {exc.detail}") from None


def sign_tx(
    key: SigningKey, *, chain_id: str, tx_type: str, payload: dict[str, Any], nonce: int | None = None
) -> SignedTx:
    body = build_body(chain_id=chain_id, tx_type=tx_type, signer=key.public_key, payload=payload, nonce=nonce)
    return sign(body, key)


def body_from_line(item: Any, key: SigningKey, chain_id: str) -> dict[str, Any]:
    """A batch line: {"type", "payload"[, "nonce"]}, or a full body signed by `key` for this chain."""
    if not isinstance(item, dict):
        raise ClientError('expected an object {"type", "payload"} or a full transaction body')
    fields = set(item)
    if fields == BODY_FIELDS:
        if item["signer"] != key.public_key:
            raise ClientError(f"signer {item['signer']} is not the public key of --key ({key.public_key})")
        if item["chain_id"] != chain_id:
            raise ClientError(f"chain_id {item['chain_id']!r} is not the node's chain ({chain_id!r})")
        return item
    if {"type", "payload"} <= fields <= LINE_FIELDS:
        return build_body(
            chain_id=chain_id,
            tx_type=item["type"],
            signer=key.public_key,
            payload=item["payload"],
            nonce=item.get("nonce"),
        )
    raise ClientError('expected an object {"type", "payload"} (optionally "nonce") or a full transaction body')


@dataclass(frozen=True, slots=True)
class BatchLine:
    line: int
    tx: SignedTx


def sign_lines(lines: Iterable[str], key: SigningKey, chain_id: str, source: str) -> list[BatchLine]:
    """Sign every non-blank JSONL line; the first bad line stops everything, so nothing half-sends."""
    signed: list[BatchLine] = []
    for number, text in enumerate(lines, 1):
        if not text.strip():
            continue
        try:
            body = body_from_line(parse_value(text, "the line"), key, chain_id)
            signed.append(BatchLine(number, sign(body, key)))
        except ClientError as exc:
            raise ClientError(f"{source} line {number}: {exc}") from None
    if not signed:
        raise ClientError(f"{source} holds no transactions")
    return signed


# --- HTTP --------------------------------------------------------------------------------------


def node_base_url(url: str) -> str:
    """The node's root URL; a trailing slash or /api/v1 is forgiven."""
    url = url.strip().rstrip("/")
    if not url.startswith(("http://", "https://")):
        raise ClientError(f"--node {url!r} must be an http:// or https:// URL, e.g. http://127.0.0.1:9001")
    return url.removesuffix(API_PREFIX).rstrip("/")


@dataclass(frozen=True)
class Node:
    """One node's REST API. GETs need `token`; POSTs of transactions do not."""

    url: str
    token: str | None = None
    timeout: float = HTTP_TIMEOUT

    def get(self, path: str) -> Any:
        return self.request("GET", path)[1]

    def post(self, path: str, payload: Any) -> tuple[int, Any]:
        return self.request("POST", path, canonical(payload))

    def request(self, method: str, path: str, data: bytes | None = None) -> tuple[int, Any]:
        request = urllib.request.Request(  # noqa: S310 - node_base_url allows only http(s)
            self.url + API_PREFIX + path, data=data, method=method, headers=self._headers(data)
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:  # noqa: S310
                return response.status, self._json(response.read(), response.status)
        except urllib.error.HTTPError as exc:
            raise self._api_error(exc) from None
        except urllib.error.URLError as exc:
            raise ClientError(f"cannot reach node {self.url}: {exc.reason}") from None
        except (OSError, http.client.HTTPException) as exc:
            raise ClientError(f"cannot reach node {self.url}: {exc or type(exc).__name__}") from None

    def _headers(self, data: bytes | None) -> dict[str, str]:
        headers = {"Accept": "application/json", "User-Agent": "consortium-tx/1"}
        if data is not None:
            headers["Content-Type"] = "application/json"
        if self.token:
            headers["Authorization"] = f"Token {self.token}"
        return headers

    def _json(self, raw: bytes, status: int) -> Any:
        try:
            return json.loads(raw) if raw else None
        except ValueError:
            raise ClientError(f"node {self.url} answered HTTP {status} with a body that is not JSON") from None

    def _api_error(self, exc: urllib.error.HTTPError) -> ClientError:
        try:
            body = json.loads(exc.read() or b"null")
        except (ValueError, OSError):
            body = None
        if isinstance(body, dict) and "error" in body:
            error, detail = str(body["error"]), describe(body.get("detail", ""))
        elif isinstance(body, dict) and "detail" in body:
            error, detail = "error", describe(body["detail"])
        else:
            error, detail = f"http_{exc.code}", one_line(str(exc.reason))
        if exc.code == 401:
            detail += " (pass a valid --token or set CONSORTIUM_TOKEN)"
        return ApiError(exc.code, error, detail)

    # --- the operations of PROTOCOL.md section 6 ---

    def chain_id(self) -> str:
        status = self.get("/status")
        if not isinstance(status, dict) or not isinstance(status.get("chain_id"), str):
            raise ClientError(f"node {self.url} answered /status without a chain_id")
        return status["chain_id"]

    def submit(self, tx: SignedTx) -> tuple[str, bool]:
        """POST one envelope; (status, created), created False when the tx_id was already known."""
        code, answer = self.post("/transactions", tx.envelope())
        self._check_tx_id(answer, tx.tx_id)
        return str(answer.get("status")), code == 202

    def submit_batch(self, txs: list[SignedTx]) -> list[dict[str, Any]]:
        _, answer = self.post("/transactions/batch", {"transactions": [tx.envelope() for tx in txs]})
        results = answer.get("results") if isinstance(answer, dict) else None
        if not isinstance(results, list) or len(results) != len(txs):
            raise ClientError(f"node {self.url} answered the batch without one result per transaction")
        return results

    def transaction(self, tx_id: str) -> dict[str, Any] | None:
        """The node's record of `tx_id`, or None if it does not know it."""
        try:
            record = self.get(f"/transactions/{quote(tx_id, safe='')}")
        except ApiError as exc:
            if exc.status == 404:
                return None
            raise
        if not isinstance(record, dict) or "status" not in record:
            raise ClientError(f"node {self.url} answered a transaction without a status")
        return record

    def _check_tx_id(self, answer: Any, tx_id: str) -> None:
        if not isinstance(answer, dict) or answer.get("tx_id") != tx_id:
            raise ClientError(f"node {self.url} answered for another transaction than {tx_id}")


# --- batches and waiting -----------------------------------------------------------------------


@dataclass
class BatchReport:
    """What the node said about each line of a batch."""

    accepted: list[str] = field(default_factory=list)
    duplicates: list[str] = field(default_factory=list)
    errors: list[tuple[int, str, str]] = field(default_factory=list)  # (line, code, detail)

    @property
    def pooled(self) -> list[str]:
        """Every tx_id the node holds now, new or not."""
        return self.accepted + self.duplicates


def chunks(items: list[BatchLine], size: int) -> Iterable[list[BatchLine]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def send_batch(node: Node, lines: list[BatchLine], size: int = BATCH_LIMIT) -> BatchReport:
    """Send `lines` in requests of at most `size`; a refused request names the lines already sent."""
    report, seen = BatchReport(), set[str]()
    for chunk in chunks(lines, min(size, BATCH_LIMIT)):
        try:
            results = node.submit_batch([item.tx for item in chunk])
        except ClientError as exc:
            sent = "; the lines before it were sent" if chunk[0] is not lines[0] else ""
            raise ClientError(f"batch from line {chunk[0].line} not sent: {exc}{sent}") from None
        for item, result in zip(chunk, results, strict=True):
            record_result(report, item, result, seen)
    return report


def record_result(report: BatchReport, item: BatchLine, result: Any, seen: set[str]) -> None:
    if not isinstance(result, dict) or result.get("error") or result.get("tx_id") != item.tx.tx_id:
        code, detail = result_error(result)
        report.errors.append((item.line, code, detail))
        return
    # The contract reports a known tx_id with its current status; one still pending
    # counts as new unless it repeats an earlier line (or the node says "created").
    created = result.get("created")
    duplicate = (created is False) or item.tx.tx_id in seen or (created is None and result.get("status") != "pending")
    (report.duplicates if duplicate else report.accepted).append(item.tx.tx_id)
    seen.add(item.tx.tx_id)


def result_error(result: Any) -> tuple[str, str]:
    """The (code, detail) of a failed batch result; "error" is a code or an {"error", "detail"} object."""
    error = result.get("error") if isinstance(result, dict) else None
    if isinstance(error, dict):
        return str(error.get("error") or error.get("code") or "error"), describe(error.get("detail", ""))
    if error:
        return str(error), describe(result.get("detail", ""))
    return "bad_result", "the node's result does not match this transaction"


Clock = Callable[[], float]
Sleep = Callable[[float], None]


def wait_for(
    node: Node,
    tx_ids: list[str],
    timeout: float,
    *,
    clock: Clock = time.monotonic,
    sleep: Sleep = time.sleep,
) -> dict[str, dict[str, Any] | None]:
    """Poll until every transaction is committed or rejected, or `timeout` seconds pass.

    Returns the last record of each tx_id (None if the node never knew it)."""
    deadline, interval = clock() + timeout, 0.2
    records: dict[str, dict[str, Any] | None] = dict.fromkeys(tx_ids)
    open_ids = list(records)  # each tx_id once, even if a batch repeated it
    while True:
        for tx_id in open_ids:
            records[tx_id] = node.transaction(tx_id)
        open_ids = [tx_id for tx_id in open_ids if not is_final(records[tx_id])]
        if not open_ids or clock() >= deadline:
            return records
        sleep(min(interval, max(deadline - clock(), 0.0)))
        interval = min(interval * 1.5, 1.0)


def is_final(record: dict[str, Any] | None) -> bool:
    return record is not None and record.get("status") in FINAL_STATUSES


def status_line(tx_id: str, record: dict[str, Any] | None) -> str:
    """One line for a transaction's status, e.g. `<tx_id> committed at height 7 (index 0, code ok)`."""
    if record is None:
        return f"{tx_id} unknown to the node"
    status = record.get("status")
    if status not in FINAL_STATUSES:
        return f"{tx_id} {status}"
    code = record.get("code") or "-"
    return f"{tx_id} {status} at height {record.get('block_height')} (index {record.get('index')}, code {code})"
