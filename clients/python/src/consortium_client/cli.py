"""`consortium`: the member's command line.

    consortium keygen FILE
    consortium put NAMESPACE KEY JSON [--wait]
    consortium delete NAMESPACE KEY [--wait]
    consortium batch FILE.jsonl [--wait]
    consortium status TX_ID ...
    consortium wait TX_ID ... [--timeout S]
    consortium watch [--blocks] [--tx TX_ID] [--writes NS[/PREFIX]] [--governance] [--from-height H]
    consortium verify TX_ID [--genesis FILE]
    consortium member add PUBKEY --roles writer,reader [--label L] | member revoke PUBKEY
    consortium gov propose PROPOSAL_ID ACTION (--org-file F | --org-id ORG) | gov vote PROPOSAL_ID yes|no

--node (CONSORTIUM_NODE), --token (CONSORTIUM_TOKEN), --key (CONSORTIUM_KEY)
and --chain-id (CONSORTIUM_CHAIN_ID; read from the node's /genesis when not
given) go before or after the command; --json prints one JSON object per
result for scripts. Exit status: 0 success; 1 an error, a refused
transaction or a proof that does not check out (one line on stderr); 2 a
usage error; 3 a transaction rejected in its block (its code on stderr);
4 a transaction still pending when --timeout ran out.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

from tqdm import tqdm

from consortium_protocol.hashing import is_hex64
from consortium_protocol.transactions import ACTIONS, ROLES, TX_TYPES

from . import bodies
from .client import Client
from .errors import ConsortiumError
from .keys import generate_key, save_key
from .results import Submitted, TxStatus

EXIT_ERROR, EXIT_USAGE, EXIT_REJECTED, EXIT_PENDING = 1, 2, 3, 4
DEFAULT_TIMEOUT = 60.0
SHOWN_ERRORS = 20


class Failure(Exception):
    def __init__(self, message: str, exit_code: int = EXIT_ERROR) -> None:
        super().__init__(message)
        self.exit_code = exit_code


# --- output ---


class Output:
    def __init__(self, as_json: bool) -> None:
        self.as_json = as_json

    def line(self, text: str, data: dict[str, Any] | None = None) -> None:
        if self.as_json:
            if data is not None:
                print(json.dumps(data, ensure_ascii=False, sort_keys=True), flush=True)
        else:
            print(text, flush=True)

    def submitted(self, sent: Submitted) -> None:
        note = "" if sent.created or sent.code else " (already known)"
        self.line(f"{sent.tx_id} {sent.status}{note}", {"event": "submitted", **dataclasses.asdict(sent)})

    def status(self, status: TxStatus) -> None:
        self.line(status.line(), {"event": "status", **dataclasses.asdict(status)})


def final_check(status: TxStatus, waited: float | None) -> None:
    if status.status == "rejected":
        raise Failure(f"transaction {status.tx_id} rejected: {status.code or '-'}", EXIT_REJECTED)
    if status.status == "unknown":
        raise Failure(f"the node does not know transaction {status.tx_id}")
    if status.status != "committed":
        after = f" after {waited:g} s" if waited is not None else ""
        raise Failure(f"transaction {status.tx_id} still {status.status}{after}", EXIT_PENDING)


# --- commands ---


def cmd_keygen(args: argparse.Namespace, out: Output) -> None:
    key = generate_key()
    save_key(args.file, key)
    out.line(key.public_key, {"event": "key", "public_key": key.public_key, "file": str(args.file)})


def cmd_put(args: argparse.Namespace, out: Output) -> None:
    value = bodies.parse_value(args.value, "JSON")
    send(args, out, "state.put", bodies.state_put(args.namespace, args.state_key, value))


def cmd_delete(args: argparse.Namespace, out: Output) -> None:
    send(args, out, "state.delete", bodies.state_delete(args.namespace, args.state_key))


def cmd_submit(args: argparse.Namespace, out: Output) -> None:
    text = sys.stdin.read() if str(args.payload_file) == "-" else None
    payload = (
        bodies.parse_object(text, "the payload")
        if text is not None
        else bodies.read_json_file(args.payload_file, "payload file")
    )
    send(args, out, args.type, payload)


def cmd_member(args: argparse.Namespace, out: Output) -> None:
    if args.member_action == "add":
        roles = [role.strip() for role in args.roles.split(",") if role.strip()]
        send(args, out, "member.add", bodies.member_add(args.pubkey, roles, args.label))
    else:
        send(args, out, "member.revoke", bodies.member_revoke(args.pubkey))


def cmd_gov(args: argparse.Namespace, out: Output) -> None:
    if args.gov_action == "vote":
        send(args, out, "gov.vote", bodies.gov_vote(args.proposal_id, args.choice == "yes"))
        return
    if args.act == "org.add":
        if args.org_file is None:
            raise Failure("org.add needs --org-file with {org_id, name, admins, peers}", EXIT_USAGE)
        org = bodies.read_json_file(args.org_file, "org file")
    else:
        if args.org_id is None:
            raise Failure(f"{args.act} needs --org-id", EXIT_USAGE)
        org = {"org_id": args.org_id}
    send(args, out, "gov.propose", bodies.gov_propose(args.proposal_id, args.act, org))


def send(args: argparse.Namespace, out: Output, tx_type: str, payload: dict[str, Any]) -> None:
    """Sign one transaction, submit it, print its tx id and status; with --wait, wait for its block."""
    with connect(args, need_key=True, need_token=args.wait, why="--wait") as node:
        tx = node.sign(tx_type, payload, nonce=args.nonce)
        out.submitted(node.submit(tx))
        if args.wait:
            status = node.wait([tx.tx_id], timeout=args.timeout)[tx.tx_id]
            out.status(status)
            final_check(status, args.timeout)


def cmd_batch(args: argparse.Namespace, out: Output) -> None:
    try:
        lines = args.file.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise Failure(f"{args.file} cannot be read: {getattr(exc, 'strerror', None) or exc}") from None
    with connect(args, need_key=True, need_token=args.wait, why="--wait") as node:
        signed = bodies.sign_lines(lines, node._signing_key(), node.chain_id, str(args.file))
        with progress(len(signed), "sent", out) as bar:
            results = node.submit_batch([item.tx for item in signed], on_sent=bar.update)
        refused = [(item.line, sent) for item, sent in zip(signed, results, strict=True) if not sent.accepted]
        pooled = [sent.tx_id for sent in results if sent.accepted]
        new = sum(1 for sent in results if sent.accepted and sent.created)
        summary = {"sent": len(signed), "accepted": new, "duplicates": len(pooled) - new, "errors": len(refused)}
        out.line(
            f"sent       {summary['sent']}\naccepted   {new}\nduplicates {summary['duplicates']}\n"
            f"errors     {len(refused)}{codes_summary(sent.code for _, sent in refused)}",
            {
                "event": "batch",
                **summary,
                "refused": [{"line": n, "tx_id": s.tx_id, "code": s.code} for n, s in refused],
            },
        )
        if not out.as_json:
            for number, sent in refused[:SHOWN_ERRORS]:
                print(f"  line {number}: {sent.code}", flush=True)
        statuses = wait_with_bar(node, pooled, args.timeout, out) if args.wait else {}
        if statuses:
            counts = Counter(status.status for status in statuses.values())
            rejected = codes_summary(s.code for s in statuses.values() if s.status == "rejected")
            pending = len(statuses) - counts["committed"] - counts["rejected"]
            out.line(
                f"committed  {counts['committed']}\nrejected   {counts['rejected']}{rejected}\npending    {pending}",
                {
                    "event": "outcome",
                    "committed": counts["committed"],
                    "rejected": counts["rejected"],
                    "pending": pending,
                },
            )
    if refused:
        raise Failure(f"{len(refused)} of {len(signed)} transactions were refused by the node")
    if statuses and any(s.status == "rejected" for s in statuses.values()):
        raise Failure(
            f"{sum(s.status == 'rejected' for s in statuses.values())} of {len(signed)} transactions were rejected",
            EXIT_REJECTED,
        )
    if statuses and not all(s.final for s in statuses.values()):
        raise Failure(
            f"{sum(not s.final for s in statuses.values())} of {len(signed)} transactions did not end in time",
            EXIT_PENDING,
        )


def cmd_status(args: argparse.Namespace, out: Output) -> None:
    ids = checked_ids(args.tx_ids)
    with connect(args, need_token=True, why="reading a transaction's status") as node:
        statuses = [node.status(tx_id) for tx_id in ids]
    for status in statuses:
        out.status(status)
    if len(statuses) == 1:
        final_check(statuses[0], None)
    elif any(status.status == "unknown" for status in statuses):
        raise Failure("some transactions are unknown to the node")


def cmd_wait(args: argparse.Namespace, out: Output) -> None:
    ids = checked_ids(args.tx_ids)
    with connect(args, need_token=True, why="wait") as node:
        statuses = wait_with_bar(node, ids, args.timeout, out)
    for tx_id in ids:
        out.status(statuses[tx_id])
    if len(ids) == 1:
        final_check(statuses[ids[0]], args.timeout)
        return
    counts = Counter(status.status for status in statuses.values())
    if counts["rejected"]:
        raise Failure(f"{counts['rejected']} of {len(ids)} transactions were rejected", EXIT_REJECTED)
    if counts["committed"] != len(ids):
        raise Failure(
            f"{len(ids) - counts['committed']} of {len(ids)} transactions did not commit in time", EXIT_PENDING
        )


def cmd_watch(args: argparse.Namespace, out: Output) -> None:
    if not (args.blocks or args.tx or args.writes or args.governance):
        raise Failure("watch what? pass --blocks, --tx TX_ID, --writes NAMESPACE[/PREFIX] or --governance", EXIT_USAGE)
    checked_ids(args.tx)
    with connect(args, need_token=True, why="watch") as node:
        kinds = {"blocks": args.blocks, "txs": args.tx, "writes": args.writes, "governance": args.governance}
        watch = node.watch(from_height=args.from_height, **kinds)
        try:
            for count, event in enumerate(watch, 1):
                out.line(event_line(event), {"type": event.type, "height": event.height, **event.data})
                if args.count and count >= args.count:
                    return
        finally:
            watch.close()


def cmd_verify(args: argparse.Namespace, out: Output) -> None:
    [tx_id] = checked_ids([args.tx_id])
    with connect(args, need_token=True, why="verify") as node:
        verified = node.verify_proof(tx_id)
    out.line(
        f"{tx_id} verified: {verified.status} ({verified.code}) at height {verified.block_height}, "
        f"index {verified.index}; block {verified.block_hash[:16]} certified in round {verified.round} "
        f"by {verified.signers} of {len(verified.validators)} validators derived from genesis "
        f"({verified.governance_blocks} membership blocks checked)",
        {"event": "verified", **dataclasses.asdict(verified)},
    )


# --- helpers ---


def event_line(event: Any) -> str:
    data = event.data
    if event.type == "block":
        return f"block {event.height} {data.get('hash', '')[:16]} txs={data.get('tx_count')}"
    if event.type == "tx":
        return f"tx {data.get('tx_id')} {data.get('status')} at height {event.height} (code {data.get('code') or '-'})"
    if event.type == "write":
        value = json.dumps(data.get("value"), ensure_ascii=False, sort_keys=True)
        return f"write {event.height} {data.get('namespace')}/{data.get('key')} {data.get('op')} {value}"
    if event.type == "governance":
        return f"governance {event.height} {data.get('tx_type')} {json.dumps(data.get('payload'), sort_keys=True)}"
    return f"{event.type} {event.height}"


def checked_ids(tx_ids: Sequence[str]) -> list[str]:
    for tx_id in tx_ids:
        if not is_hex64(tx_id):
            raise Failure(f"{tx_id!r} is not a tx id (64 lowercase hex characters)", EXIT_USAGE)
    return list(tx_ids)


def codes_summary(codes: Any) -> str:
    counts = Counter(code for code in codes if code)
    return f" ({', '.join(f'{code}: {n}' for code, n in counts.most_common())})" if counts else ""


def progress(total: int, unit: str, out: Output) -> tqdm:
    # On stderr, and only on a terminal: scripts and --json see clean output.
    return tqdm(total=total, unit=unit, file=sys.stderr, disable=None if not out.as_json else True, leave=False)


def wait_with_bar(node: Client, tx_ids: list[str], timeout: float, out: Output) -> dict[str, TxStatus]:
    with progress(len(tx_ids), "tx", out) as bar:
        return node.wait(tx_ids, timeout=timeout, on_final=lambda _status: bar.update(1))


def connect(args: argparse.Namespace, *, need_key: bool = False, need_token: bool = False, why: str = "") -> Client:
    url = getattr(args, "node", None) or os.environ.get("CONSORTIUM_NODE")
    if not url:
        raise Failure("no node: pass --node URL (e.g. http://127.0.0.1:9001) or set CONSORTIUM_NODE", EXIT_USAGE)
    token = getattr(args, "token", None) or os.environ.get("CONSORTIUM_TOKEN") or None
    if need_token and not token:
        raise Failure(f"{why} needs an API token: pass --token or set CONSORTIUM_TOKEN", EXIT_USAGE)
    key_path = getattr(args, "key", None) or os.environ.get("CONSORTIUM_KEY")
    if need_key and not key_path:
        raise Failure("signing needs your key file: pass --key FILE or set CONSORTIUM_KEY", EXIT_USAGE)
    chain_id = getattr(args, "chain_id", None) or os.environ.get("CONSORTIUM_CHAIN_ID") or None
    if need_key and chain_id is None and not token:
        raise Failure("no chain id: pass --chain-id CHAIN, or --token to read it from the node's /genesis", EXIT_USAGE)
    genesis = getattr(args, "genesis", None)
    return Client(
        url, token=token, key=Path(key_path) if need_key and key_path else None, chain_id=chain_id, genesis=genesis
    )


# --- arguments ---


class OneLineParser(argparse.ArgumentParser):
    """Usage errors as one line on stderr, like every other failure (exit status 2)."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"consortium: {' '.join(message.split())} (see {self.prog} --help)\n")


def common_options(suppress: bool) -> argparse.ArgumentParser:
    """--node, --token, --key, --chain-id and --json, accepted before or after the command."""
    default = argparse.SUPPRESS if suppress else None
    parent = argparse.ArgumentParser(add_help=False)
    parent.add_argument("--node", default=default, help="the node's URL, e.g. http://127.0.0.1:9001 (CONSORTIUM_NODE)")
    parent.add_argument("--token", default=default, help="API token for reads, wait, watch, verify (CONSORTIUM_TOKEN)")
    parent.add_argument("--key", default=default, help="your private key file, mode 0600 (CONSORTIUM_KEY)")
    parent.add_argument(
        "--chain-id", default=default, help="the chain id (CONSORTIUM_CHAIN_ID); read from /genesis if absent"
    )
    parent.add_argument(
        "--json", action="store_true", default=argparse.SUPPRESS if suppress else False, help="JSON output"
    )
    return parent


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog="consortium", description="A Consortium member's client.", parents=[common_options(False)]
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    common = [common_options(True)]

    def command(name: str, help_text: str, parent: Any = sub) -> argparse.ArgumentParser:
        return parent.add_parser(name, help=help_text, parents=common, description=help_text)

    def sending(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
        p.add_argument("--nonce", type=int, help="a fixed nonce in [0, 2^53-1] (default: random)")
        waiting(p, "--wait")
        p.add_argument("--wait", action="store_true", help="wait until committed (exit 0) or rejected (exit 3)")
        return p

    def waiting(p: argparse.ArgumentParser, what: str) -> None:
        p.add_argument(
            "--timeout", type=float, default=DEFAULT_TIMEOUT, help=f"seconds {what} waits ({DEFAULT_TIMEOUT:g})"
        )

    p = command("keygen", "write a new private key file (mode 0600) and print its public key")
    p.add_argument("file", type=Path)
    p.set_defaults(run=cmd_keygen)

    p = sending(command("put", "state.put: write a JSON value under NAMESPACE/KEY"))
    p.add_argument("namespace", metavar="NAMESPACE")
    p.add_argument("state_key", metavar="KEY")
    p.add_argument("value", metavar="JSON", help="a JSON value without floats, e.g. '{\"temp_c\": 4}'")
    p.set_defaults(run=cmd_put)

    p = sending(command("delete", "state.delete: delete NAMESPACE/KEY"))
    p.add_argument("namespace", metavar="NAMESPACE")
    p.add_argument("state_key", metavar="KEY")
    p.set_defaults(run=cmd_delete)

    p = sending(command("submit", "sign and send any payload (a JSON file, - for stdin) of the given type"))
    p.add_argument("payload_file", type=Path, metavar="PAYLOAD_FILE")
    p.add_argument("--type", required=True, choices=TX_TYPES)
    p.set_defaults(run=cmd_submit)

    p = command("batch", 'sign and send every line of a JSONL file ({"type", "payload"} or a full body)')
    p.add_argument("file", type=Path, metavar="FILE")
    p.add_argument("--wait", action="store_true", help="wait until every transaction ends")
    waiting(p, "--wait")
    p.set_defaults(run=cmd_batch)

    p = command("status", "show the status of transactions")
    p.add_argument("tx_ids", nargs="+", metavar="TX_ID")
    p.set_defaults(run=cmd_status)

    p = command("wait", "wait until transactions are committed or rejected (one event socket)")
    p.add_argument("tx_ids", nargs="+", metavar="TX_ID")
    waiting(p, "wait")
    p.set_defaults(run=cmd_wait)

    p = command("watch", "print live events: blocks, transactions, writes, governance")
    p.add_argument("--blocks", action="store_true", help="every new block")
    p.add_argument("--tx", action="append", default=[], metavar="TX_ID", help="a transaction's status (repeatable)")
    p.add_argument(
        "--writes", action="append", default=[], metavar="NS[/PREFIX]", help="writes to a namespace or key prefix"
    )
    p.add_argument("--governance", action="store_true", help="membership and governance transactions")
    p.add_argument("--from-height", type=int, help="replay from this height, then go live")
    p.add_argument("--count", type=int, help="stop after this many events")
    p.set_defaults(run=cmd_watch)

    p = command("verify", "check a transaction's inclusion proof and commit certificate from the genesis file alone")
    p.add_argument("tx_id", metavar="TX_ID")
    p.add_argument("--genesis", type=Path, help="the chain's genesis file (default: the node's, pinned on first use)")
    p.set_defaults(run=cmd_verify)

    member = command("member", "member add / member revoke (an admin key of your organisation)")
    member_sub = member.add_subparsers(dest="member_action", required=True, metavar="ACTION")
    p = sending(command("add", "member.add: add a key to your organisation", member_sub))
    p.add_argument("pubkey", metavar="PUBKEY")
    p.add_argument("--roles", required=True, help=f"comma-separated, from {','.join(ROLES)}")
    p.add_argument("--label", default="", help="a name for the key, at most 64 characters")
    p = sending(command("revoke", "member.revoke: revoke a key of your organisation", member_sub))
    p.add_argument("pubkey", metavar="PUBKEY")
    member.set_defaults(run=cmd_member)

    gov = command("gov", "gov propose / gov vote (an admin key)")
    gov_sub = gov.add_subparsers(dest="gov_action", required=True, metavar="ACTION")
    p = sending(command("propose", "gov.propose: propose an organisation change (counts as your yes)", gov_sub))
    p.add_argument("proposal_id", metavar="PROPOSAL_ID")
    p.add_argument("act", metavar="ACTION", choices=ACTIONS, help=" | ".join(ACTIONS))
    org = p.add_mutually_exclusive_group(required=True)
    org.add_argument("--org-file", type=Path, help="org.add: JSON file {org_id, name, admins, peers}")
    org.add_argument("--org-id", help="org.suspend and org.remove: the organisation")
    p = sending(command("vote", "gov.vote: vote on an open proposal", gov_sub))
    p.add_argument("proposal_id", metavar="PROPOSAL_ID")
    p.add_argument("choice", choices=("yes", "no"))
    gov.set_defaults(run=cmd_gov)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    out = Output(bool(getattr(args, "json", False)))
    try:
        args.run(args, out)
    except Failure as exc:
        return fail(str(exc), exc.exit_code)
    except ConsortiumError as exc:
        return fail(f"{exc.code}: {exc}" if not str(exc).startswith(("node refused", exc.code)) else str(exc))
    except KeyboardInterrupt:
        return fail("interrupted")
    except BrokenPipeError:
        return EXIT_ERROR
    return 0


def fail(message: str, code: int = EXIT_ERROR) -> int:
    print(f"consortium: {' '.join(message.split())}", file=sys.stderr, flush=True)
    return code


if __name__ == "__main__":
    sys.exit(main())
