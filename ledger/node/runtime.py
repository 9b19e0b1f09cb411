"""The running node's home, for code that needs it outside the engine.

`runnode` loads the home once (`set_current_home`) before it serves any
request; views, consumers and services then read it with `current_home()`
instead of re-reading key files on every request. Outside a running node
(tests, other management commands) nothing is set and `current_home()`
raises, so a missing home is never mistaken for "no org_key".
"""

from __future__ import annotations

from ledger.node.home import NodeHome

_current: NodeHome | None = None


class NoHomeLoaded(RuntimeError):
    pass


def set_current_home(home: NodeHome | None) -> None:
    """Set (or with None, clear) the home of this process; tests may set their own."""
    global _current  # one process serves one node
    _current = home


def current_home() -> NodeHome:
    if _current is None:
        raise NoHomeLoaded("no node home is loaded in this process; it is set by runnode")
    return _current
