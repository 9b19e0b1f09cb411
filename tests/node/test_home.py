from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from consortium_protocol.keys import SigningKey, write_key_file
from node.home import HomeError, NodeHome, load_home, parse_bind

URL = "ws://127.0.0.1:9001/ws/peer/"


def org(org_id: str, admin: SigningKey, node: SigningKey, url: str = URL) -> dict[str, Any]:
    return {
        "org_id": org_id,
        "name": org_id.upper(),
        "admins": [admin.public_key],
        "members": [],
        "peers": [{"node_key": node.public_key, "url": url, "validator": True}],
    }


def write_genesis(home: Path, orgs: list[dict[str, Any]]) -> None:
    genesis = {"chain_id": "testnet", "genesis_time_ms": 0, "policy": {"admission": "majority"}, "orgs": orgs}
    (home / "genesis.json").write_text(json.dumps(genesis, indent=2))


@pytest.fixture
def keys() -> dict[str, SigningKey]:
    return {name: SigningKey.generate() for name in ("node", "org", "other_node", "other_admin")}


@pytest.fixture
def home(tmp_path: Path, keys: dict[str, SigningKey]) -> Path:
    """A valid home of org1's node, in a two-organisation genesis."""
    home = tmp_path / "home"
    home.mkdir()
    write_genesis(
        home,
        [
            org("org1", keys["org"], keys["node"]),
            org("org2", keys["other_admin"], keys["other_node"], "ws://10.0.0.2:9002/ws/peer/"),
        ],
    )
    write_key_file(home / "node_key", keys["node"])
    write_key_file(home / "org_key", keys["org"])
    return home


def refusal(path: Path, **kwargs: Any) -> str:
    with pytest.raises(HomeError) as info:
        load_home(path, **kwargs)
    assert "\n" not in info.value.message
    return info.value.message


def test_valid_home_loads_genesis_keys_org_and_listen_address(home: Path, keys: dict[str, SigningKey]) -> None:
    loaded = load_home(home)
    assert loaded.chain_id == "testnet"
    assert loaded.genesis_text == (home / "genesis.json").read_bytes()
    assert loaded.node_key.public_key == keys["node"].public_key
    assert loaded.org_key is not None and loaded.org_key.public_key == keys["org"].public_key
    assert (loaded.org_id, loaded.peer_url, loaded.host, loaded.port) == ("org1", URL, "127.0.0.1", 9001)
    assert loaded.in_genesis and loaded.warnings == ()


def test_bind_overrides_the_peer_url_address(home: Path) -> None:
    loaded = load_home(home, bind=("0.0.0.0", 9100))
    assert (loaded.host, loaded.port, loaded.org_id) == ("0.0.0.0", 9100, "org1")


def test_home_repr_shows_public_keys_only(home: Path, keys: dict[str, SigningKey]) -> None:
    text = repr(load_home(home))
    assert keys["node"].public_key in text
    assert keys["node"].seed.hex() not in text and keys["org"].seed.hex() not in text


def test_org_key_is_optional(home: Path) -> None:
    (home / "org_key").unlink()
    assert load_home(home).org_key is None


def test_missing_home_is_refused_with_initnode_hint(tmp_path: Path) -> None:
    message = refusal(tmp_path / "nowhere")
    assert "does not exist" in message and "initnode" in message


def test_home_that_is_a_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    assert "not a directory" in refusal(tmp_path / "file")


def test_unreadable_home_is_refused(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Permissions cannot hide a folder from root (CI runs as root), so the
    # operating system's refusal is simulated where the home is listed.
    real_scandir = os.scandir

    def refuse(path):  # type: ignore[no-untyped-def]
        if Path(path) == home:
            raise PermissionError(13, "Permission denied", str(path))
        return real_scandir(path)

    monkeypatch.setattr("node.home.os.scandir", refuse)
    assert "cannot be read: Permission denied" in refusal(home)


def test_missing_genesis_is_refused(home: Path) -> None:
    (home / "genesis.json").unlink()
    assert "genesis.json is missing" in refusal(home)


def test_unparseable_genesis_is_refused_naming_the_problem(home: Path) -> None:
    (home / "genesis.json").write_text('{"chain_id": 1.5')
    message = refusal(home)
    assert "not a valid genesis" in message and "JSON" in message


def test_invalid_genesis_is_refused_naming_the_field(home: Path) -> None:
    genesis = json.loads((home / "genesis.json").read_text())
    genesis["policy"] = {"admission": "anyone"}
    (home / "genesis.json").write_text(json.dumps(genesis))
    assert "policy" in refusal(home)


def test_missing_node_key_is_refused(home: Path) -> None:
    (home / "node_key").unlink()
    message = refusal(home)
    assert "node_key does not exist" in message and "initnode" in message


def test_node_key_readable_by_others_is_refused_with_chmod_hint(home: Path) -> None:
    (home / "node_key").chmod(0o644)
    assert f"chmod 600 {home / 'node_key'}" in refusal(home)


def test_org_key_readable_by_group_is_refused(home: Path) -> None:
    (home / "org_key").chmod(0o640)
    assert "chmod 600" in refusal(home)


def test_key_file_with_bad_content_is_refused_without_echoing_it(home: Path) -> None:
    (home / "node_key").write_text("not-a-key-secret-content\n")
    message = refusal(home)
    assert "64 lowercase hex" in message and "secret-content" not in message


def test_node_key_not_in_genesis_needs_bind(home: Path) -> None:
    (home / "node_key").unlink()
    write_key_file(home / "node_key", SigningKey.generate())
    assert "--bind" in refusal(home)


def test_node_of_a_joining_org_loads_with_bind_and_no_org(home: Path) -> None:
    (home / "node_key").unlink()
    write_key_file(home / "node_key", SigningKey.generate())
    loaded = load_home(home, bind=("127.0.0.1", 9200))
    assert (loaded.org_id, loaded.peer_url, loaded.port, loaded.in_genesis) == (None, None, 9200, False)


def test_org_key_that_is_no_admin_is_a_warning_not_a_refusal(home: Path) -> None:
    (home / "org_key").unlink()
    write_key_file(home / "org_key", SigningKey.generate())
    loaded: NodeHome = load_home(home)
    assert len(loaded.warnings) == 1 and "not an admin key" in loaded.warnings[0]


def test_org_key_of_another_org_is_a_warning(home: Path, keys: dict[str, SigningKey]) -> None:
    (home / "org_key").unlink()
    write_key_file(home / "org_key", keys["other_admin"])
    assert "admin of org2" in load_home(home).warnings[0]


@pytest.mark.parametrize(
    ("text", "expected"),
    [("127.0.0.1:9001", ("127.0.0.1", 9001)), ("[::1]:9002", ("::1", 9002)), ("node.example:80", ("node.example", 80))],
)
def test_parse_bind_reads_host_and_port(text: str, expected: tuple[str, int]) -> None:
    assert parse_bind(text) == expected


@pytest.mark.parametrize("text", ["9001", ":9001", "host:", "host:port", "host:70000"])
def test_parse_bind_refuses_anything_but_host_and_port(text: str) -> None:
    with pytest.raises(HomeError, match="HOST:PORT"):
        parse_bind(text)
