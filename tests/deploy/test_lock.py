"""The hashed lock files: every third-party package, direct or not, pinned with its hashes and installed from them."""

from __future__ import annotations

import re
from importlib import metadata
from pathlib import Path

import pytest
import yaml

from tests.processes import REPO

ENTRY = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._\-]*)(?:\[[^\]]*\])?==([^\s;\\]+)")
HASH = re.compile(r"--hash=sha256:[0-9a-f]{64}")


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def lock_entries(path: Path) -> dict[str, tuple[str, list[str]]]:
    """name -> (version, its hashes) of a lock file written by `make lock`."""
    entries: dict[str, tuple[str, list[str]]] = {}
    current = ""
    for line in path.read_text().splitlines():
        if match := ENTRY.match(line):
            current = canonical(match[1])
            assert current not in entries, f"{path.name}: {current} twice"
            entries[current] = (match[2], [])
        elif line.strip().startswith("--hash=") and current:
            entries[current][1].extend(HASH.findall(line))
    return entries


def direct_requirements(path: Path) -> dict[str, str]:
    """name -> pinned version of a requirements*.txt, following its -r includes."""
    pins: dict[str, str] = {}
    for raw in path.read_text().splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        if line.startswith("-r "):
            pins.update(direct_requirements(path.parent / line[3:].strip()))
            continue
        match = ENTRY.match(line)
        assert match, f"{path.name}: not pinned to one version: {raw}"
        pins[canonical(match[1])] = match[2]
    return pins


RUNTIME = lock_entries(REPO / "requirements.lock")
WHOLE = lock_entries(REPO / "requirements-dev.lock")


@pytest.mark.parametrize(("requirements", "lock"), [("requirements.txt", RUNTIME), ("requirements-dev.txt", WHOLE)])
def test_every_direct_requirement_is_locked_at_its_pinned_version(requirements: str, lock: dict) -> None:
    pins = direct_requirements(REPO / requirements)
    assert pins
    for name, version in pins.items():
        assert name in lock, f"{name} of {requirements} is not in the lock: run make lock"
        assert lock[name][0] == version, f"{name}: {requirements} pins {version}, the lock has {lock[name][0]}"


def test_every_locked_package_has_hashes_and_the_runtime_lock_agrees_with_the_whole_tree() -> None:
    assert len(WHOLE) > len(RUNTIME) > 20  # the transitive tree, not only the direct pins
    for name, (version, hashes) in WHOLE.items():
        assert hashes, f"{name}=={version} has no hash"
    for name, (version, hashes) in RUNTIME.items():
        assert name in WHOLE, f"{name} is in the runtime lock only"
        assert WHOLE[name] == (version, hashes), f"{name}: runtime and dev locks differ"
    assert "psycopg-pool" in RUNTIME and "drf-spectacular-sidecar" in RUNTIME


def test_this_environment_was_installed_from_the_lock() -> None:
    """make setup installs the lock; a package at another version than the lock's means it did not."""
    installed = {canonical(d.metadata["Name"]): d.version for d in metadata.distributions()}
    differing = {n: (installed[n], v) for n, (v, _) in WHOLE.items() if n in installed and installed[n] != v}
    missing = sorted(set(WHOLE) - set(installed))
    assert not differing, f"installed != locked: {differing}"
    assert not missing, f"locked but not installed: {missing}"


def test_every_install_path_requires_the_hashes() -> None:
    makefile = (REPO / "Makefile").read_text()
    assert "install --quiet --require-hashes --no-deps -r requirements-dev.lock" in makefile
    assert re.search(r"^lock:", makefile, re.M) and "--generate-hashes" in makefile
    assert re.search(r"^audit:.*\n\t.*pip-audit --requirement requirements-dev.lock", makefile, re.M)
    test_target = re.search(r"^test: (.*)$", makefile, re.M)
    assert test_target and "audit" not in test_target[1]  # a new advisory must not fail every submission
    assert "make test" in (REPO / ".ci" / "run").read_text()  # CI installs through make setup
    dockerfile = (REPO / "Dockerfile").read_text()
    assert "pip install --require-hashes --no-deps --only-binary=:all: -r requirements.lock" in dockerfile
    assert "requirements.txt" not in dockerfile


def test_base_images_are_named_by_exact_version() -> None:
    services = yaml.safe_load((REPO / "docker-compose.yml").read_text())["services"]
    images = {s["image"] for s in services.values() if "build" not in s}
    assert images, services
    for image in images:
        tag = image.partition(":")[2]
        assert re.fullmatch(r"\d+\.\d+(\.\d+)?-[a-z0-9.]+", tag), f"{image}: not an exact version tag"
