"""A node's home folder (PROTOCOL.md sections 5 and 8).

The home holds `genesis.json` (identical on every node), `node_key` and an
optional `org_key`. `load_home` checks all of it up front and reports the
first problem as one line, because an operator reads it at start-up and a
node must never run half-configured.

Where the node listens: normally on the host and port of its own peer `url`
in the genesis file. A node of an organisation that joins after genesis
starts from the same genesis file, which cannot list its `node_key` yet; such
a home loads only when `bind` (`runnode --bind HOST:PORT`) says where to
listen, and then has no `org_id` or `peer_url` until an `org.add` proposal
that lists the key commits. `bind` overrides the url's host and port in every
case.

Private keys never appear in messages: `SigningKey`'s repr shows only the
public key, and messages here name keys by their public key.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from common.errors import OperatorError
from consortium_protocol.genesis import GenesisError, parse_genesis_text
from consortium_protocol.keys import KeyFileError, SigningKey, read_key_file

GENESIS_FILE = "genesis.json"
NODE_KEY_FILE = "node_key"
ORG_KEY_FILE = "org_key"
# Written by `initnode --writer`; not part of a home that runnode reads, but
# `initnode` refuses to overwrite it like the other keys.
MEMBER_KEY_FILE = "member_key"
DEFAULT_PORTS = {"ws": 80, "wss": 443}


class HomeError(OperatorError):
    """A home the node cannot run from; `message` is one line for the operator."""


@dataclass(frozen=True)
class NodeHome:
    path: Path
    genesis: dict[str, Any] = field(repr=False)
    # The bytes exactly as stored, so that every node can compare or hash the
    # very file it was given.
    genesis_text: bytes = field(repr=False)
    chain_id: str
    node_key: SigningKey
    org_key: SigningKey | None
    # The organisation whose genesis peers list node_key; None for a node of
    # an organisation that joins after genesis.
    org_id: str | None
    peer_url: str | None
    host: str
    port: int
    # Problems worth a warning but not a refusal (e.g. an org_key that is not
    # yet an admin); the caller logs them.
    warnings: tuple[str, ...] = ()

    @property
    def in_genesis(self) -> bool:
        return self.org_id is not None


def load_home(path: Path | str, *, bind: tuple[str, int] | None = None) -> NodeHome:
    """Load and check a node's home, raising HomeError with one line on any problem."""
    home = Path(path).resolve()
    _check_folder(home)
    genesis_text, genesis = _read_genesis(home / GENESIS_FILE)
    node_key = _read_key(home / NODE_KEY_FILE, "initnode creates it")
    org_key = _read_key(home / ORG_KEY_FILE) if (home / ORG_KEY_FILE).exists() else None
    org_id, peer_url = _find_peer(genesis, node_key.public_key)
    host, port = _listen_address(node_key, peer_url, bind)
    return NodeHome(
        path=home,
        genesis=genesis,
        genesis_text=genesis_text,
        chain_id=genesis["chain_id"],
        node_key=node_key,
        org_key=org_key,
        org_id=org_id,
        peer_url=peer_url,
        host=host,
        port=port,
        warnings=_org_key_warnings(genesis, org_id, org_key),
    )


def parse_bind(text: str) -> tuple[str, int]:
    """Parse `HOST:PORT` (or `[v6]:PORT`), raising HomeError on a bad value."""
    host, sep, port_text = text.rpartition(":")
    host = host.removeprefix("[").removesuffix("]")
    if not sep or not host or not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise HomeError(f"--bind {text!r} is not HOST:PORT (for example 127.0.0.1:9001)")
    return host, int(port_text)


def _check_folder(home: Path) -> None:
    if not home.exists():
        raise HomeError(f"node home {home} does not exist; create it with python manage.py initnode {home}")
    if not home.is_dir():
        raise HomeError(f"node home {home} is not a directory")
    # Reading the folder itself catches a home the node's user cannot list,
    # which would otherwise surface as a confusing 'missing file' below.
    try:
        next(os.scandir(home), None)
    except OSError as exc:
        raise HomeError(f"node home {home} cannot be read: {exc.strerror}") from None


def _read_genesis(path: Path) -> tuple[bytes, dict[str, Any]]:
    try:
        text = path.read_bytes()
    except FileNotFoundError:
        raise HomeError(
            f"{path} is missing; copy the chain's genesis file there (the same file on every node)"
        ) from None
    except OSError as exc:
        raise HomeError(f"{path} cannot be read: {exc.strerror}") from None
    try:
        return text, parse_genesis_text(text)
    except GenesisError as exc:
        raise HomeError(f"{path} is not a valid genesis: {exc.detail}") from None


def _read_key(path: Path, hint: str = "") -> SigningKey:
    try:
        return read_key_file(path)
    except KeyFileError as exc:
        # read_key_file's detail already names the file and, for a loose
        # mode, the chmod that fixes it.
        suffix = f"; {hint}" if hint and exc.code == "key_missing" else ""
        raise HomeError(f"{exc.detail}{suffix}") from None


def _find_peer(genesis: dict[str, Any], node_public: str) -> tuple[str | None, str | None]:
    for org in genesis["orgs"]:
        for peer in org["peers"]:
            if peer["node_key"] == node_public:
                return org["org_id"], peer["url"]
    return None, None


def _listen_address(node_key: SigningKey, peer_url: str | None, bind: tuple[str, int] | None) -> tuple[str, int]:
    if bind is not None:
        return bind
    if peer_url is None:
        raise HomeError(
            f"node_key {node_key.public_key[:12]}… is not a peer in genesis; a node of an organisation "
            "that joins later must be started with --bind HOST:PORT"
        )
    parts = urlsplit(peer_url)
    try:
        port = parts.port or DEFAULT_PORTS[parts.scheme]
    except ValueError:
        raise HomeError(f"peer url {peer_url} has a bad port") from None
    if not parts.hostname:
        raise HomeError(f"peer url {peer_url} has no host; start the node with --bind HOST:PORT")
    return parts.hostname, port


def _org_key_warnings(genesis: dict[str, Any], org_id: str | None, org_key: SigningKey | None) -> tuple[str, ...]:
    # Only a warning: the key may become an admin later through governance,
    # and the node runs without signing governance actions meanwhile.
    if org_key is None:
        return ()
    admin_of = [org["org_id"] for org in genesis["orgs"] if org_key.public_key in org["admins"]]
    short = org_key.public_key[:12]
    if not admin_of:
        return (f"org_key {short}… is not an admin key in genesis; it may be admitted later",)
    if org_id is not None and org_id not in admin_of:
        return (f"org_key {short}… is an admin of {admin_of[0]}, not of this node's organisation {org_id}",)
    return ()
