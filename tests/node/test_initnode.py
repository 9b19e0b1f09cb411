from __future__ import annotations

import json
import stat
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from consortium_protocol.genesis import parse_genesis_text
from node.home import load_home


def initnode(*args: str) -> str:
    out = StringIO()
    call_command("initnode", *args, stdout=out)
    return out.getvalue()


def makegenesis(*args: str) -> str:
    out = StringIO()
    call_command("makegenesis", *args, stdout=out)
    return out.getvalue()


def seeds(home: Path) -> list[str]:
    return [
        (home / name).read_text().strip() for name in ("node_key", "org_key", "member_key") if (home / name).exists()
    ]


def test_initnode_creates_0600_keys_and_a_genesis_that_load_home_accepts(tmp_path: Path) -> None:
    home = tmp_path / "node1"
    initnode(str(home), "--org-id", "org1", "--chain-id", "solo", "--url", "ws://127.0.0.1:9301/ws/peer/")
    for name in ("node_key", "org_key"):
        assert stat.S_IMODE((home / name).stat().st_mode) == 0o600
    loaded = load_home(home)
    assert (loaded.chain_id, loaded.org_id, loaded.port, loaded.warnings) == ("solo", "org1", 9301, ())
    assert loaded.org_key is not None and loaded.genesis["orgs"][0]["admins"] == [loaded.org_key.public_key]
    assert loaded.genesis["orgs"][0]["peers"][0]["validator"] is True
    assert loaded.genesis["genesis_time_ms"] > 0


def test_initnode_prints_public_keys_and_fragment_but_no_private_key(tmp_path: Path) -> None:
    home = tmp_path / "node1"
    output = initnode(str(home), "--org-id", "org1", "--writer")
    fragment = json.loads(output[output.index("{") :])
    assert fragment == json.loads((home / "fragment.json").read_text())
    assert fragment["admins"][0] in output and fragment["peers"][0]["node_key"] in output
    assert fragment["members"] == [{"key": fragment["members"][0]["key"], "roles": ["writer"], "label": "writer"}]
    assert len(seeds(home)) == 3
    assert not any(seed in output for seed in seeds(home))


def test_initnode_without_chain_id_writes_no_genesis(tmp_path: Path) -> None:
    initnode(str(tmp_path / "node1"), "--org-id", "org1")
    assert not (tmp_path / "node1" / "genesis.json").exists()


def test_initnode_refuses_a_home_that_already_holds_keys(tmp_path: Path) -> None:
    home = tmp_path / "node1"
    initnode(str(home), "--org-id", "org1")
    before = seeds(home)
    with pytest.raises(CommandError, match="already holds node_key"):
        initnode(str(home), "--org-id", "org1")
    assert seeds(home) == before


def test_initnode_refuses_a_bad_org_id_before_writing_anything(tmp_path: Path) -> None:
    with pytest.raises(CommandError, match="org_id"):
        initnode(str(tmp_path / "node1"), "--org-id", "bad org!")
    assert not (tmp_path / "node1").exists()


def test_initnode_with_genesis_copies_it_byte_for_byte_for_a_joining_node(tmp_path: Path) -> None:
    initnode(str(tmp_path / "first"), "--org-id", "org1", "--chain-id", "shared")
    original = (tmp_path / "first" / "genesis.json").read_bytes()
    output = initnode(str(tmp_path / "joiner"), "--org-id", "org2", "--genesis", str(tmp_path / "first/genesis.json"))
    assert (tmp_path / "joiner" / "genesis.json").read_bytes() == original
    assert "--bind" in output
    loaded = load_home(tmp_path / "joiner", bind=("127.0.0.1", 9302))
    assert (loaded.org_id, loaded.chain_id) == (None, "shared")


def test_initnode_refuses_an_invalid_genesis_to_copy(tmp_path: Path) -> None:
    (tmp_path / "genesis.json").write_text("{}")
    with pytest.raises(CommandError, match="not a valid genesis"):
        initnode(str(tmp_path / "node1"), "--org-id", "org1", "--genesis", str(tmp_path / "genesis.json"))


def test_makegenesis_assembles_two_fragments_into_a_genesis_both_nodes_load(tmp_path: Path) -> None:
    initnode(str(tmp_path / "a"), "--org-id", "orgA", "--url", "ws://127.0.0.1:9311/ws/peer/")
    initnode(str(tmp_path / "b"), "--org-id", "orgB", "--url", "ws://127.0.0.1:9312/ws/peer/")
    out = tmp_path / "genesis.json"
    output = makegenesis(
        "--chain-id", "pair", str(tmp_path / "a/fragment.json"), str(tmp_path / "b/fragment.json"), "--out", str(out)
    )
    assert "2 organisations, 2 validators" in output
    genesis = parse_genesis_text(out.read_bytes())
    assert [o["org_id"] for o in genesis["orgs"]] == ["orgA", "orgB"]
    for name, org_id, port in (("a", "orgA", 9311), ("b", "orgB", 9312)):
        (tmp_path / name / "genesis.json").write_bytes(out.read_bytes())
        loaded = load_home(tmp_path / name)
        assert (loaded.org_id, loaded.port, loaded.warnings) == (org_id, port, ())


def test_makegenesis_names_the_fragment_behind_a_conflict(tmp_path: Path) -> None:
    initnode(str(tmp_path / "a"), "--org-id", "same")
    initnode(str(tmp_path / "b"), "--org-id", "same")
    fragments = [str(tmp_path / "a/fragment.json"), str(tmp_path / "b/fragment.json")]
    with pytest.raises(CommandError, match="org_id values must be distinct"):
        makegenesis("--chain-id", "pair", *fragments, "--out", str(tmp_path / "genesis.json"))
    (tmp_path / "b/fragment.json").write_text('{"org_id": "x"}')
    with pytest.raises(CommandError, match=r"b/fragment\.json has exactly"):
        makegenesis("--chain-id", "pair", *fragments, "--out", str(tmp_path / "genesis.json"))
    assert not (tmp_path / "genesis.json").exists()


def test_makegenesis_refuses_to_overwrite_a_genesis_without_force(tmp_path: Path) -> None:
    initnode(str(tmp_path / "a"), "--org-id", "orgA")
    (tmp_path / "genesis.json").write_text("handed out already")
    with pytest.raises(CommandError, match="--force"):
        makegenesis("--chain-id", "c", str(tmp_path / "a/fragment.json"), "--out", str(tmp_path / "genesis.json"))
    makegenesis(
        "--chain-id", "c", str(tmp_path / "a/fragment.json"), "--out", str(tmp_path / "genesis.json"), "--force"
    )
    assert parse_genesis_text((tmp_path / "genesis.json").read_bytes())["chain_id"] == "c"
