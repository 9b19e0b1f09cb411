"""The running node's home, for code that needs it outside the engine.

`runnode` loads the home once (`set_current_home`) before it serves any
request; views, consumers and services then read it with `current_home()`
instead of re-reading key files on every request. Outside a running node
(tests, other management commands) nothing is set and `current_home()`
raises, so a missing home is never mistaken for "no org_key".
"""

from __future__ import annotations

from django.conf import settings

from common.errors import OperatorError
from consortium_protocol.errors import ProtocolError
from consortium_protocol.keys import read_key_file
from node.home import NodeHome

_current: NodeHome | None = None


class NoHomeLoaded(OperatorError, RuntimeError):
    """This process serves no node: nothing called set_current_home (runnode does)."""


def set_current_home(home: NodeHome | None) -> None:
    """Set (or with None, clear) the home of this process; tests may set their own."""
    global _current  # one process serves one node
    _current = home


def current_home() -> NodeHome:
    if _current is None:
        raise NoHomeLoaded("no node home is loaded in this process; it is set by runnode")
    return _current


def node_public_key() -> str | None:
    """This node's public key: from the loaded home, else from the home folder's node_key file."""
    try:
        return current_home().node_key.public_key
    except NoHomeLoaded:
        return _node_key_from_settings()


def _node_key_from_settings() -> str | None:
    try:
        return read_key_file(settings.HOME_DIR / "node_key").public_key
    except ProtocolError:  # no home on this machine (or a key file we may not trust): say so with null
        return None
