"""Run a process at a fraction of its speed: a SIGSTOP/SIGCONT duty cycle, in a thread.

    with DutyCycle(pid, run_s=0.025, stop_s=0.075):   # a quarter speed
        ...                                            # load the network meanwhile

Each cycle lets the process (and its children, if any: a `runnode` has none
today, but a signal to the pid alone would leave a child running) run for
`run_s` and stops it for `stop_s`. Leaving the block, on error too, resumes
them all. This is a slow machine as the process sees it: its timers fire
late, its sockets fill while it is stopped, its peers see it answer in bursts.

With `burn=True` a busy-loop process runs exactly while the node is stopped.
On one shared machine a stopped node would otherwise hand its CPU share to
the others, so the "slow" network would get faster; the burner keeps that
share taken, as a slow node on its own machine would.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from pathlib import Path
from types import TracebackType


def process_tree(pid: int) -> list[int]:
    """`pid` and its descendants, from /proc (every thread's children)."""
    found = [pid]
    for parent in found:
        for task in Path(f"/proc/{parent}/task").glob("*"):
            try:
                found += [int(child) for child in (task / "children").read_text().split()]
            except OSError:
                continue
    return found


class DutyCycle:
    def __init__(self, pid: int, run_s: float, stop_s: float, *, burn: bool = False) -> None:
        self.pid = pid
        self.run_s = run_s
        self.stop_s = stop_s
        self.burn = burn
        self.cycles = 0
        self._burner: subprocess.Popen[bytes] | None = None
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._cycle, name="duty-cycle", daemon=True)

    def __enter__(self) -> DutyCycle:
        if self.burn:
            self._burner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
            self._burner.send_signal(signal.SIGSTOP)
        self._thread.start()
        return self

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        self._done.set()
        self._thread.join()
        self._signal(signal.SIGCONT)
        if self._burner is not None:
            self._burner.kill()
            self._burner.wait()

    def _cycle(self) -> None:
        try:
            while not self._done.wait(self.run_s):
                self._signal(signal.SIGSTOP)
                self._burner_signal(signal.SIGCONT)
                self.cycles += 1
                if self._done.wait(self.stop_s):
                    break
                self._burner_signal(signal.SIGSTOP)
                self._signal(signal.SIGCONT)
        finally:
            self._burner_signal(signal.SIGSTOP)
            self._signal(signal.SIGCONT)

    def _burner_signal(self, sig: signal.Signals) -> None:
        if self._burner is not None and self._burner.poll() is None:
            self._burner.send_signal(sig)

    def _signal(self, sig: signal.Signals) -> None:
        for pid in process_tree(self.pid):
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                continue
