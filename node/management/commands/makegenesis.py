"""Assemble organisations' fragments into one validated genesis file.

    python manage.py makegenesis --chain-id ID FRAGMENT.json [...] --out genesis.json

Each fragment is an organisation as `initnode` writes it (`fragment.json`:
org_id, name, admins, members, peers). The result is checked like any node
checks it at start-up; distribute the very same file to every node (the
printed SHA-256 lets operators compare their copies).
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from consortium_protocol.canonical import loads_strict
from consortium_protocol.errors import ProtocolError
from consortium_protocol.genesis import GenesisError, check_genesis
from node.management.commands.initnode import genesis_json, one_org_genesis


class Command(BaseCommand):
    help = "Assemble organisation fragments (from initnode) into a validated genesis.json."
    requires_system_checks: list[str] = []

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("fragments", nargs="+", type=Path, help="fragment.json files, one per organisation")
        parser.add_argument("--chain-id", required=True)
        parser.add_argument("--out", required=True, type=Path, help="where to write the genesis file")
        parser.add_argument("--time-ms", type=int, help="genesis_time_ms (default: now)")
        parser.add_argument("--force", action="store_true", help="overwrite --out if it exists")

    def handle(self, *args: Any, **options: Any) -> None:
        out: Path = options["out"]
        if out.exists() and not options["force"]:
            # A genesis already handed to nodes must not silently change.
            raise CommandError(f"{out} already exists; pass --force to replace it")
        paths: list[Path] = options["fragments"]
        orgs = [read_fragment(path) for path in paths]
        genesis = one_org_genesis(options["chain_id"], orgs, options["time_ms"])
        try:
            check_genesis(genesis)
        except GenesisError as exc:
            raise CommandError(f"the assembled genesis is invalid: {name_fragments(exc.detail, paths)}") from None
        data = genesis_json(genesis)
        out.write_bytes(data)
        validators = sum(peer["validator"] for org in orgs for peer in org["peers"])
        self.stdout.write(
            f"wrote {out}: chain {genesis['chain_id']}, {len(orgs)} organisations, {validators} validators, "
            f"sha256 {hashlib.sha256(data).hexdigest()}"
        )


def name_fragments(detail: str, paths: list[Path]) -> str:
    """Replace `orgs[i]` in a genesis error with the fragment file it came from."""
    return re.sub(r"orgs\[(\d+)\]", lambda m: str(paths[int(m.group(1))]), detail)


def read_fragment(path: Path) -> dict[str, Any]:
    try:
        fragment = loads_strict(path.read_bytes())
    except OSError as exc:
        raise CommandError(f"{path} cannot be read: {exc.strerror}") from None
    except ProtocolError as exc:
        raise CommandError(f"{path} is not a valid fragment: {exc.detail}") from None
    if not isinstance(fragment, dict):
        raise CommandError(f"{path} is not a fragment: expected an object with org_id, name, admins, members, peers")
    return fragment
