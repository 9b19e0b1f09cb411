"""The member's command-line client: sign transactions and send them to a node.

    python manage.py tx keygen FILE
    python manage.py tx put NAMESPACE KEY VALUE_JSON --key FILE --node URL [--wait]
    python manage.py tx delete NAMESPACE KEY --key FILE --node URL
    python manage.py tx member-add PUBKEY --roles writer,reader --label L --key ADMIN_KEY --node URL
    python manage.py tx member-revoke PUBKEY --key ADMIN_KEY --node URL
    python manage.py tx propose PROPOSAL_ID org.add --org-file ORG.json --key ADMIN_KEY --node URL
    python manage.py tx propose PROPOSAL_ID org.suspend|org.remove --org-id ORG --key ADMIN_KEY --node URL
    python manage.py tx vote PROPOSAL_ID yes|no --key ADMIN_KEY --node URL
    python manage.py tx submit PAYLOAD_FILE --type TYPE --key FILE --node URL
    python manage.py tx batch FILE.jsonl --key FILE --node URL [--wait]
    python manage.py tx status TX_ID --node URL --token T [--wait]

Submitting needs no account: the signature is the credential. Every body
names the chain, though, and reading the chain id from the node is a GET,
which needs an API token. So a member without a token passes `--chain-id`
(their organisation's admin knows it); with `--token` (or CONSORTIUM_TOKEN)
it is read from `/api/v1/status`. `--wait` and `tx status` read the
transaction's status, so they need a token too. CONSORTIUM_NODE,
CONSORTIUM_CHAIN_ID and CONSORTIUM_TOKEN stand in for --node, --chain-id
and --token.

Exit status: 0 when the transactions were accepted (with --wait: committed),
1 otherwise, with one line on stderr saying why. Private keys are never
printed.
"""

from __future__ import annotations

import os
import sys
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from consortium_protocol.hashing import is_hex64
from consortium_protocol.keys import KeyFileError, SigningKey, read_key_file, write_key_file
from consortium_protocol.transactions import ACTIONS, ROLES, TX_TYPES
from ledger import client
from ledger.client import ClientError, Node

DEFAULT_WAIT = 30.0
SHOWN_ERRORS = 20


class Command(BaseCommand):
    help = "Sign transactions with a member key and send them to a node (see docs/member-guide.md)."
    # A client needs neither the database nor the app checks.
    requires_system_checks: list[str] = []

    def add_arguments(self, parser: CommandParser) -> None:
        actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
        keygen = actions.add_parser("keygen", help="write a new private key file (mode 0600); print its public key")
        keygen.add_argument("file", type=Path)
        add_put(actions.add_parser("put", help="state.put: write a JSON value under NAMESPACE/KEY"))
        add_delete(actions.add_parser("delete", help="state.delete: delete NAMESPACE/KEY"))
        add_member_add(actions.add_parser("member-add", help="member.add: add a key to your organisation (admin)"))
        add_member_revoke(actions.add_parser("member-revoke", help="member.revoke: revoke a member key (admin)"))
        add_propose(actions.add_parser("propose", help="gov.propose: propose an organisation change (admin)"))
        add_vote(actions.add_parser("vote", help="gov.vote: vote on an open proposal (admin)"))
        add_submit(actions.add_parser("submit", help="sign and send any payload of the given type"))
        add_batch(actions.add_parser("batch", help="sign and send every line of a JSONL file"))
        add_status(actions.add_parser("status", help="show (or wait for) a transaction's status"))

    def handle(self, *args: Any, **options: Any) -> None:
        handlers: dict[str, Callable[[dict[str, Any]], None]] = {
            "keygen": self.keygen,
            "put": self.put,
            "delete": self.delete,
            "member-add": self.member_add,
            "member-revoke": self.member_revoke,
            "propose": self.propose,
            "vote": self.vote,
            "submit": self.submit,
            "batch": self.batch,
            "status": self.status,
        }
        try:
            handlers[options["action"]](options)
        except ClientError as exc:
            raise CommandError(str(exc)) from None
        except KeyboardInterrupt:
            # A submitted transaction stays pooled; its tx_id was printed before any wait.
            raise CommandError("interrupted") from None

    # --- subcommands ---

    def keygen(self, options: dict[str, Any]) -> None:
        path: Path = options["file"]
        key = SigningKey.generate()
        try:
            write_key_file(path, key)
        except FileExistsError:
            raise CommandError(f"{path} already exists; refusing to overwrite a key file") from None
        except OSError as exc:
            raise CommandError(f"{path} cannot be written: {exc.strerror}") from None
        self.stdout.write(key.public_key)

    def put(self, options: dict[str, Any]) -> None:
        value = client.parse_value(options["value"])
        self.send(options, "state.put", client.state_put(options["namespace"], options["state_key"], value))

    def delete(self, options: dict[str, Any]) -> None:
        self.send(options, "state.delete", client.state_delete(options["namespace"], options["state_key"]))

    def member_add(self, options: dict[str, Any]) -> None:
        roles = [role.strip() for role in options["roles"].split(",") if role.strip()]
        self.send(options, "member.add", client.member_add(options["pubkey"], roles, options["label"]))

    def member_revoke(self, options: dict[str, Any]) -> None:
        self.send(options, "member.revoke", client.member_revoke(options["pubkey"]))

    def propose(self, options: dict[str, Any]) -> None:
        self.send(options, "gov.propose", client.gov_propose(options["proposal_id"], options["act"], org_of(options)))

    def vote(self, options: dict[str, Any]) -> None:
        self.send(options, "gov.vote", client.gov_vote(options["proposal_id"], options["choice"] == "yes"))

    def submit(self, options: dict[str, Any]) -> None:
        self.send(options, options["type"], read_payload(options["payload_file"]))

    def batch(self, options: dict[str, Any]) -> None:
        key, node = load_key(options["key"]), node_of(options, need_token=options["wait"], why="--wait")
        chain_id = chain_id_of(options, node)
        lines = client.sign_lines(read_lines(options["file"]), key, chain_id, str(options["file"]))
        report = client.send_batch(node, lines)
        self.print_batch(len(lines), report)
        records = client.wait_for(node, report.pooled, options["timeout"]) if options["wait"] else {}
        if records:
            self.print_outcomes(records)
        fail_batch(report, records)

    def status(self, options: dict[str, Any]) -> None:
        tx_id = options["tx_id"]
        if not is_hex64(tx_id):
            raise CommandError(f"{tx_id!r} is not a tx_id (64 lowercase hex characters)")
        node = node_of(options, need_token=True, why="reading a transaction's status")
        if options["wait"]:
            record = client.wait_for(node, [tx_id], options["timeout"])[tx_id]
        else:
            record = node.transaction(tx_id)
        self.report_final(tx_id, record, options["timeout"] if options["wait"] else None)

    # --- shared steps ---

    def send(self, options: dict[str, Any], tx_type: str, payload: dict[str, Any]) -> None:
        """Sign one transaction, submit it, print its tx_id and status, and wait if asked."""
        key, node = load_key(options["key"]), node_of(options, need_token=options["wait"], why="--wait")
        chain_id = chain_id_of(options, node)
        tx = client.sign_tx(key, chain_id=chain_id, tx_type=tx_type, payload=payload, nonce=options["nonce"])
        status, created = node.submit(tx)
        self.stdout.write(f"{tx.tx_id} {status}" + ("" if created else " (already known)"))
        self.stdout.flush()  # the tx_id must show before a long --wait, even through a pipe
        if options["wait"]:
            record = client.wait_for(node, [tx.tx_id], options["timeout"])[tx.tx_id]
            self.report_final(tx.tx_id, record, options["timeout"])

    def report_final(self, tx_id: str, record: dict[str, Any] | None, waited: float | None) -> None:
        self.stdout.write(client.status_line(tx_id, record))
        if record is None:
            raise CommandError(f"the node does not know transaction {tx_id}")
        if record["status"] == "rejected":
            raise CommandError(f"transaction rejected with code {record.get('code') or '-'}")
        if record["status"] != "committed":
            raise CommandError(
                f"transaction still {record['status']}" + (f" after {waited:g} s" if waited is not None else "")
            )

    def print_batch(self, total: int, report: client.BatchReport) -> None:
        self.stdout.write(f"sent       {total}")
        self.stdout.write(f"accepted   {len(report.accepted)}")
        self.stdout.write(f"duplicates {len(report.duplicates)}")
        self.stdout.write(f"errors     {len(report.errors)}{codes_summary(code for _, code, _ in report.errors)}")
        for line, code, detail in report.errors[:SHOWN_ERRORS]:
            self.stdout.write(f"  line {line}: {code}: {detail}")
        if len(report.errors) > SHOWN_ERRORS:
            self.stdout.write(f"  ... and {len(report.errors) - SHOWN_ERRORS} more")

    def print_outcomes(self, records: dict[str, dict[str, Any] | None]) -> None:
        statuses = Counter((record or {}).get("status", "unknown") for record in records.values())
        rejected = (r.get("code") or "-" for r in records.values() if r and r.get("status") == "rejected")
        self.stdout.write(f"committed  {statuses['committed']}")
        self.stdout.write(f"rejected   {statuses['rejected']}{codes_summary(rejected)}")
        pending = len(records) - statuses["committed"] - statuses["rejected"]
        self.stdout.write(f"pending    {pending}")


# --- arguments ---


def add_signing_options(parser: CommandParser) -> None:
    parser.add_argument("--key", type=Path, required=True, help="your private key file (mode 0600)")
    parser.add_argument("--node", help="the node's URL, e.g. http://127.0.0.1:9001 (or CONSORTIUM_NODE)")
    parser.add_argument("--chain-id", help="the chain id (or CONSORTIUM_CHAIN_ID); read from the node with a token")
    parser.add_argument("--token", help="API token for reads (or CONSORTIUM_TOKEN)")
    parser.add_argument("--nonce", type=int, help="a fixed nonce in [0, 2^53-1] (default: random)")
    add_wait_options(parser)


def add_wait_options(parser: CommandParser) -> None:
    parser.add_argument("--wait", action="store_true", help="wait until committed or rejected (needs a token)")
    parser.add_argument("--timeout", type=float, default=DEFAULT_WAIT, help=f"seconds --wait waits ({DEFAULT_WAIT:g})")


def add_put(parser: CommandParser) -> None:
    parser.add_argument("namespace", metavar="NAMESPACE")
    parser.add_argument("state_key", metavar="KEY")
    parser.add_argument("value", metavar="VALUE_JSON", help="a JSON value without floats, e.g. '{\"temp_c\": 4}'")
    add_signing_options(parser)


def add_delete(parser: CommandParser) -> None:
    parser.add_argument("namespace", metavar="NAMESPACE")
    parser.add_argument("state_key", metavar="KEY")
    add_signing_options(parser)


def add_member_add(parser: CommandParser) -> None:
    parser.add_argument("pubkey", help="the new member's public key (64 hex)")
    parser.add_argument("--roles", required=True, help=f"comma-separated, from {','.join(ROLES)}")
    parser.add_argument("--label", default="", help="a name for the key, at most 64 characters")
    add_signing_options(parser)


def add_member_revoke(parser: CommandParser) -> None:
    parser.add_argument("pubkey", help="the member's public key (64 hex)")
    add_signing_options(parser)


def add_propose(parser: CommandParser) -> None:
    parser.add_argument("proposal_id")
    parser.add_argument("act", metavar="ACTION", choices=ACTIONS, help=" | ".join(ACTIONS))
    org = parser.add_mutually_exclusive_group(required=True)
    org.add_argument("--org-file", type=Path, help="org.add: JSON file {org_id, name, admins, peers}")
    org.add_argument("--org-id", help="org.suspend and org.remove: the organisation")
    add_signing_options(parser)


def add_vote(parser: CommandParser) -> None:
    parser.add_argument("proposal_id")
    parser.add_argument("choice", choices=("yes", "no"))
    add_signing_options(parser)


def add_submit(parser: CommandParser) -> None:
    parser.add_argument("payload_file", type=Path, metavar="PAYLOAD_FILE", help="a JSON payload object (- for stdin)")
    parser.add_argument("--type", required=True, choices=TX_TYPES)
    add_signing_options(parser)


def add_batch(parser: CommandParser) -> None:
    parser.add_argument("file", type=Path, metavar="FILE.jsonl", help='one {"type", "payload"} or full body a line')
    parser.add_argument("--key", type=Path, required=True, help="your private key file (mode 0600)")
    parser.add_argument("--node", help="the node's URL (or CONSORTIUM_NODE)")
    parser.add_argument("--chain-id", help="the chain id (or CONSORTIUM_CHAIN_ID); read from the node with a token")
    parser.add_argument("--token", help="API token for reads (or CONSORTIUM_TOKEN)")
    add_wait_options(parser)


def add_status(parser: CommandParser) -> None:
    parser.add_argument("tx_id")
    parser.add_argument("--node", help="the node's URL (or CONSORTIUM_NODE)")
    parser.add_argument("--token", help="API token (or CONSORTIUM_TOKEN)")
    add_wait_options(parser)


# --- option helpers ---


def load_key(path: Path) -> SigningKey:
    try:
        return read_key_file(path)
    except KeyFileError as exc:
        raise CommandError(exc.detail) from None


def node_of(options: dict[str, Any], *, need_token: bool, why: str) -> Node:
    url = options["node"] or os.environ.get("CONSORTIUM_NODE")
    if not url:
        raise CommandError("no node: pass --node URL (e.g. http://127.0.0.1:9001) or set CONSORTIUM_NODE")
    token = options["token"] or os.environ.get("CONSORTIUM_TOKEN") or None
    if need_token and not token:
        raise CommandError(f"{why} needs an API token: pass --token or set CONSORTIUM_TOKEN")
    return Node(client.node_base_url(url), token)


def chain_id_of(options: dict[str, Any], node: Node) -> str:
    chain_id = options["chain_id"] or os.environ.get("CONSORTIUM_CHAIN_ID")
    if chain_id:
        return chain_id
    if node.token:
        return node.chain_id()
    raise CommandError(
        "no chain id: pass --chain-id CHAIN (your organisation's admin knows it), or an API token "
        "(--token or CONSORTIUM_TOKEN) to read it from the node"
    )


def org_of(options: dict[str, Any]) -> dict[str, Any]:
    action = options["act"]
    if action == "org.add":
        if options["org_file"] is None:
            raise CommandError("org.add needs --org-file with {org_id, name, admins, peers}")
        return client.read_json_file(options["org_file"], "org file")
    if options["org_id"] is None:
        raise CommandError(f"{action} needs --org-id")
    return {"org_id": options["org_id"]}


def read_payload(path: Path) -> dict[str, Any]:
    if str(path) == "-":
        return client.parse_object(sys.stdin.read(), "the payload on stdin")
    return client.read_json_file(path, "payload file")


def read_lines(path: Path) -> list[str]:
    try:
        return path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise CommandError(f"{path} cannot be read: {getattr(exc, 'strerror', None) or exc}") from None


def codes_summary(codes: Any) -> str:
    counts = Counter(codes)
    return f" ({', '.join(f'{code}: {n}' for code, n in counts.most_common())})" if counts else ""


def fail_batch(report: client.BatchReport, records: dict[str, dict[str, Any] | None]) -> None:
    total = len(report.pooled) + len(report.errors)
    if report.errors:
        raise CommandError(f"{len(report.errors)} of {total} transactions were refused by the node")
    unfinished = [tx_id for tx_id, record in records.items() if not record or record.get("status") != "committed"]
    if unfinished:
        raise CommandError(f"{len(unfinished)} of {total} transactions did not commit")
