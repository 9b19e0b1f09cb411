"""Real nodes for the client's tests: a consortium of two organisations, each node with a reader token."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from tests.network.consortium import LocalConsortium, Member
from tests.processes import NodeLauncher, manage


def create_token(env: dict[str, str], username: str = "auditor") -> str:
    """A reader login and its REST framework token, in the node's own database."""
    user_env = {**env, "DJANGO_SUPERUSER_USERNAME": username, "DJANGO_SUPERUSER_PASSWORD": "pw-for-tests-only"}
    created = manage(["createsuperuser", "--noinput", "--email", f"{username}@example.com"], user_env)
    assert created.returncode == 0, created.stderr
    token = manage(["drf_create_token", username], env)
    assert token.returncode == 0, token.stderr
    match = re.search(r"Generated token (\w+)", token.stdout)
    assert match, token.stdout
    return match.group(1)


@dataclass
class Net:
    """Two organisations' nodes, both validators, each with an API token."""

    consortium: LocalConsortium
    tokens: list[str]

    @property
    def members(self) -> list[Member]:
        return self.consortium.members

    def url(self, index: int = 0) -> str:
        return self.members[index].url

    def home(self, index: int = 0) -> Path:
        return self.members[index].home

    def node_key(self, index: int) -> str:
        return self.members[index].node_key


def start_net(root: Path, launcher: NodeLauncher, *, node2_env: dict[str, str] | None = None) -> Net:
    """Two organisations' nodes, started, each with a reader token; node 2 may get extra settings."""
    (root / "net").mkdir()
    consortium = LocalConsortium(root / "net", launcher, orgs=2)
    tokens = [create_token(member.env) for member in consortium.members]
    consortium.members[1].env.update(node2_env or {})
    consortium.start_all()
    return Net(consortium, tokens)
