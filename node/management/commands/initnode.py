"""Create a node's home: its keys and, optionally, its genesis file.

    python manage.py initnode DIR --org-id ORG [--name NAME] [--url URL]
        [--chain-id CHAIN | --genesis FILE] [--writer]

Writes `node_key` and `org_key` (and with --writer a `member_key` holding the
writer role) with mode 0600, and `fragment.json`: this organisation's part of
a genesis file, for `makegenesis`. With --chain-id it also writes a complete
one-organisation `genesis.json`, so a single-organisation chain runs at once;
with --genesis it copies an existing genesis file byte for byte (a node
joining an existing chain). Only public keys are printed.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from consortium_protocol.genesis import GenesisError, check_genesis, parse_genesis_text
from consortium_protocol.keys import SigningKey, write_key_file
from node.home import GENESIS_FILE, MEMBER_KEY_FILE, NODE_KEY_FILE, ORG_KEY_FILE

FRAGMENT_FILE = "fragment.json"
DEFAULT_URL = "ws://127.0.0.1:9001/ws/peer/"
POLICY = {"admission": "majority"}


def genesis_json(genesis: dict[str, Any]) -> bytes:
    """The bytes of a genesis file: sorted and indented, so operators can read and diff it."""
    return (json.dumps(genesis, indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode("utf-8")


def one_org_genesis(chain_id: str, orgs: list[dict[str, Any]], time_ms: int | None = None) -> dict[str, Any]:
    when = int(time.time() * 1000) if time_ms is None else time_ms
    return {"chain_id": chain_id, "genesis_time_ms": when, "policy": POLICY, "orgs": orgs}


class Command(BaseCommand):
    help = "Create a node's home folder: node_key, org_key and optionally genesis.json."
    # No database or app checks needed to write files; this also keeps the
    # command usable while a database is not configured yet.
    requires_system_checks: list[str] = []

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("dir", type=Path, help="the node's home folder (created if missing)")
        parser.add_argument("--org-id", required=True, help="this node's organisation id")
        parser.add_argument("--name", help="the organisation's display name (default: the org id)")
        parser.add_argument("--url", default=DEFAULT_URL, help=f"this node's peer url (default {DEFAULT_URL})")
        source = parser.add_mutually_exclusive_group()
        source.add_argument("--chain-id", help="also write a one-organisation genesis.json for this chain")
        source.add_argument("--genesis", type=Path, help="copy this existing genesis file (joining node)")
        parser.add_argument("--writer", action="store_true", help="also create a member_key with the writer role")

    def handle(self, *args: Any, **options: Any) -> None:
        home: Path = options["dir"].resolve()
        keys = {NODE_KEY_FILE: SigningKey.generate(), ORG_KEY_FILE: SigningKey.generate()}
        if options["writer"]:
            keys[MEMBER_KEY_FILE] = SigningKey.generate()
        fragment = self._fragment(options, keys)
        genesis_bytes = self._genesis_bytes(options, fragment)
        self._refuse_existing(home, [*keys, FRAGMENT_FILE, *([GENESIS_FILE] if genesis_bytes else [])])
        self._write(home, keys, fragment, genesis_bytes)
        self._report(home, keys, fragment, options, genesis_bytes)

    def _fragment(self, options: dict[str, Any], keys: dict[str, SigningKey]) -> dict[str, Any]:
        member = keys.get(MEMBER_KEY_FILE)
        fragment = {
            "org_id": options["org_id"],
            "name": options["name"] or options["org_id"],
            "admins": [keys[ORG_KEY_FILE].public_key],
            "members": [{"key": member.public_key, "roles": ["writer"], "label": "writer"}] if member else [],
            "peers": [{"node_key": keys[NODE_KEY_FILE].public_key, "url": options["url"], "validator": True}],
        }
        # Check the fragment (and chain id) as a one-org genesis before anything
        # is written, so a bad org id or url never leaves a half-made home.
        try:
            check_genesis(one_org_genesis(options["chain_id"] or "check", [fragment]))
        except GenesisError as exc:
            raise CommandError(exc.detail.replace("orgs[0].", "")) from None
        return fragment

    def _genesis_bytes(self, options: dict[str, Any], fragment: dict[str, Any]) -> bytes | None:
        if options["chain_id"]:
            return genesis_json(one_org_genesis(options["chain_id"], [fragment]))
        if options["genesis"]:
            return read_genesis_file(options["genesis"])
        return None

    def _refuse_existing(self, home: Path, names: list[str]) -> None:
        if home.exists() and not home.is_dir():
            raise CommandError(f"{home} exists and is not a directory")
        existing = [name for name in names if (home / name).exists()]
        if existing:
            raise CommandError(f"{home} already holds {', '.join(existing)}; refusing to overwrite a node's files")

    def _write(self, home: Path, keys: dict[str, SigningKey], fragment: dict[str, Any], genesis: bytes | None) -> None:
        # 0700: the folder holds private keys, so nobody else may list it.
        home.mkdir(parents=True, exist_ok=True, mode=0o700)
        for name, key in keys.items():
            write_key_file(home / name, key)
        (home / FRAGMENT_FILE).write_bytes(genesis_json(fragment))
        if genesis is not None:
            (home / GENESIS_FILE).write_bytes(genesis)

    def _report(
        self,
        home: Path,
        keys: dict[str, SigningKey],
        fragment: dict[str, Any],
        options: dict[str, Any],
        genesis: bytes | None,
    ) -> None:
        self.stdout.write(f"home        {home}")
        for name, key in keys.items():
            self.stdout.write(f"{name:<11} {key.public_key}")
        if options["chain_id"]:
            self.stdout.write(f"genesis     {home / GENESIS_FILE} (chain {options['chain_id']}, this node a validator)")
        elif genesis is not None:
            self.stdout.write(
                f"genesis     {home / GENESIS_FILE} copied from {options['genesis']}; this organisation joins "
                "through an org.add proposal, and runnode needs --bind HOST:PORT until then"
            )
        else:
            self.stdout.write(f"genesis     none yet: give {home / FRAGMENT_FILE} to whoever runs makegenesis")
        self.stdout.write(f"fragment    {home / FRAGMENT_FILE}")
        self.stdout.write(json.dumps(fragment, indent=2, sort_keys=True))


def read_genesis_file(path: Path) -> bytes:
    """The bytes of a valid genesis file, or CommandError naming the problem."""
    try:
        text = path.read_bytes()
    except OSError as exc:
        raise CommandError(f"{path} cannot be read: {exc.strerror}") from None
    try:
        parse_genesis_text(text)
    except GenesisError as exc:
        raise CommandError(f"{path} is not a valid genesis: {exc.detail}") from None
    return text
