"""The slow-node benchmark's duty cycle stops a process tree and always leaves it running."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from bench.throttle import DutyCycle, process_tree

SLEEPER = "import time; time.sleep(120)"
PARENT = f"import subprocess, sys, time; subprocess.Popen([sys.executable, '-c', {SLEEPER!r}]); time.sleep(120)"


def state(pid: int) -> str:
    """The process state letter from /proc (T: stopped)."""
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]


def until(predicate, what: str) -> None:
    deadline = time.monotonic() + 10
    while not predicate():
        assert time.monotonic() < deadline, f"{what} did not happen"
        time.sleep(0.01)


@pytest.fixture
def tree() -> Iterator[list[int]]:
    parent = subprocess.Popen([sys.executable, "-c", PARENT])
    until(lambda: len(process_tree(parent.pid)) == 2, "the child start")
    pids = process_tree(parent.pid)
    yield pids
    for pid in reversed(pids):
        subprocess.run(["kill", "-KILL", str(pid)], check=False)
    parent.wait()


def test_the_tree_holds_the_process_and_its_child(tree: list[int]) -> None:
    assert len(set(tree)) == 2


@pytest.mark.parametrize("burn", [False, True])
def test_every_process_of_the_tree_runs_again_after_the_cycle_even_on_error(tree: list[int], burn: bool) -> None:
    with pytest.raises(RuntimeError), DutyCycle(tree[0], 0.001, 0.05, burn=burn) as cycle:
        until(lambda: all(state(pid) == "T" for pid in tree), "a stop of the whole tree")
        raise RuntimeError("the load failed")
    assert cycle.cycles >= 1
    assert "T" not in [state(pid) for pid in tree]  # none left stopped
    assert cycle._burner is None or cycle._burner.poll() is not None  # the burner is gone
