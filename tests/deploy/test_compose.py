"""docker-compose.yml and the Dockerfile, checked without a Docker engine.

The compose file must be valid under the Compose Specification's JSON schema
(tests/deploy/compose-spec.json, see tests/deploy/README.md) and must agree
with the consortium its init service creates: the init command is parsed by
the real `devnet` command, the homes and genesis it describes are created
here, and every genesis peer url must name a node service that listens and
publishes on that port, with its own home volume, database and channel prefix.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import jsonschema
import pytest
import yaml

from devnet.launcher import Devnet
from devnet.management.commands.devnet import Command as DevnetCommand

REPO = Path(__file__).resolve().parents[2]
SCHEMA = Path(__file__).with_name("compose-spec.json")
NODE_HOME_ROOT = "/var/lib/consortium"


def interpolate(value: Any) -> Any:
    """Compose's ${VAR:-default} with nothing set, as a fresh `docker compose up` sees it."""
    if isinstance(value, str):
        return re.sub(r"\$\{(\w+):?-([^}]*)\}", lambda m: m.group(2), value)
    if isinstance(value, list):
        return [interpolate(item) for item in value]
    if isinstance(value, dict):
        return {key: interpolate(item) for key, item in value.items()}
    return value


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((REPO / "docker-compose.yml").read_text())  # merges <<: anchors
    return loaded


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    result: dict[str, dict[str, Any]] = interpolate(compose["services"])
    return result


def test_compose_file_is_valid_under_the_compose_specification(compose: dict[str, Any]) -> None:
    # Durations are Compose's own ("5s"), not the schema's ISO 8601 format: no format checks.
    validator = jsonschema.Draft201909Validator(json.loads(SCHEMA.read_text()))
    errors = [f"{error.json_path}: {error.message}" for error in validator.iter_errors(compose)]
    assert errors == []
    broken = {**compose, "services": {**compose["services"], "node1": {**compose["services"]["node1"], "port": 1}}}
    assert not validator.is_valid(broken)  # the schema does reject what compose would


def test_services_dependencies_healthchecks_and_volumes(compose: dict[str, Any], services: dict[str, Any]) -> None:
    assert set(services) == {"postgres", "redis", "init", "node1", "node2", "node3", "node4"}
    for name in ("postgres", "redis"):
        assert services[name]["healthcheck"]["test"][0] == "CMD"
        assert services[name]["volumes"], f"{name} keeps its data in a volume"
    assert services["init"]["depends_on"] == {"postgres": {"condition": "service_healthy"}}
    declared = set(compose["volumes"])
    for name, service in services.items():
        for target in service.get("depends_on", {}):
            assert target in services, f"{name} depends on unknown {target}"
        for mount in service.get("volumes", []):
            assert mount.split(":")[0] in declared, f"{name} mounts an undeclared volume: {mount}"
        if name.startswith("node"):
            assert service["depends_on"] == {
                "init": {"condition": "service_completed_successfully"},
                "postgres": {"condition": "service_healthy"},
                "redis": {"condition": "service_healthy"},
            }
            assert service["build"] == "." and service["image"] == services["init"]["image"]


def test_nodes_agree_with_the_consortium_the_init_service_creates(services: dict[str, Any], tmp_path: Path) -> None:
    command = services["init"]["command"]
    assert command[:4] == ["python", "manage.py", "devnet", "--prepare-only"]
    options = DevnetCommand().create_parser("manage.py", "devnet").parse_args(command[3:])
    assert (options.prepare_only, options.orgs, options.base_port) == (True, 4, 9001)
    assert str(options.dir) == NODE_HOME_ROOT

    # The same consortium, created here: homes, keys and one genesis.
    devnet = Devnet(tmp_path / "devnet", orgs=options.orgs, base_port=options.base_port, peer_host=options.peer_host)
    devnet.create_homes()
    genesis = json.loads((devnet.root / "genesis.json").read_text())
    devnet.database_url = services["init"]["environment"]["DATABASE_URL"]
    init_mounts = set(services["init"]["volumes"])
    peer_urls = {org["org_id"]: [peer["url"] for peer in org["peers"]] for org in genesis["orgs"]}
    prefixes = set()

    for number, node in enumerate(devnet.nodes, start=1):
        [url] = peer_urls[node.org_id]
        parts = urlsplit(url)
        assert (parts.scheme, parts.path, parts.port) == ("ws", "/ws/peer/", 9000 + number)
        service = services[parts.hostname or ""]  # the peer url names the node's service
        env = service["environment"]
        home = f"{NODE_HOME_ROOT}/{node.home.name}"
        assert env["PORT"] == str(parts.port)  # runnode --bind 0.0.0.0:$PORT (docker/entrypoint.sh)
        assert service["ports"] == [f"127.0.0.1:{parts.port}:{parts.port}"]
        assert env["CONSORTIUM_HOME"] == home and env["DJANGO_SECRET_KEY_FILE"] == f"{home}/secret_key"
        [mount] = service["volumes"]
        assert mount == f"{node.org_id}:{home}" and mount in init_mounts  # init writes the home the node reads
        assert env["DATABASE_URL"] == devnet._node_database_url(node)  # the database init created and migrated
        assert env["REDIS_URL"] == "redis://redis:6379/0"
        prefixes.add(env["CONSORTIUM_CHANNEL_PREFIX"])
    assert len(prefixes) == len(devnet.nodes)  # one Redis, but no node hears another's events


def test_dockerfile_declares_a_pinned_base_a_non_root_user_hashed_installs_and_a_healthcheck() -> None:
    # Read as text: no Docker engine here, so this checks what the Dockerfile says, not that it builds.
    dockerfile = (REPO / "Dockerfile").read_text()
    instructions = [line.split(None, 1) for line in re.sub(r"\\\n", " ", dockerfile).splitlines()]
    instructions = [parts for parts in instructions if parts and not parts[0].startswith("#")]
    by_name: dict[str, list[str]] = {}
    for name, *rest in instructions:
        by_name.setdefault(name, []).append(rest[0] if rest else "")

    [base] = by_name["FROM"]
    assert re.fullmatch(r"python:3\.11\.\d+-slim-\w+", base), f"base image not by exact version: {base}"
    assert by_name["USER"] == ["consortium"]
    assert any("--require-hashes --no-deps --only-binary=:all: -r requirements.lock" in run for run in by_name["RUN"])
    assert any("collectstatic --noinput" in run for run in by_name["RUN"])
    assert by_name["EXPOSE"] == ["9001"]
    [healthcheck] = by_name["HEALTHCHECK"]
    assert "/healthz" in healthcheck
    assert by_name["ENTRYPOINT"] == ['["/app/docker/entrypoint.sh"]']

    entrypoint = REPO / "docker" / "entrypoint.sh"
    assert os.access(entrypoint, os.X_OK)
    script = entrypoint.read_text()
    assert script.index("manage.py migrate") < script.index("manage.py runnode")
    for line in (REPO / "requirements.txt").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            assert re.fullmatch(r"[\w.\-\[\],]+==[\w.]+", line.strip()), f"unpinned: {line}"
    assert {".git", ".venv", "var"} <= set((REPO / ".dockerignore").read_text().split())
