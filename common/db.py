"""Database connections of the threads that live as long as the process.

Request handling borrows from the psycopg pool of the `default` alias
(settings: OPTIONS["pool"], CONN_MAX_AGE=0). The engine's thread and the
admission thread would otherwise hand their connection back and borrow it
again at every `close_old_connections()`, and could wait behind a burst of
requests for one; instead each keeps one dedicated connection, outside the
pool, for its whole life: the `default` alias's settings without the pool,
persistent. It replaces `default` in that thread only (Django keeps
connections per thread), so `transaction.atomic()`, the ORM and raw cursors
there all use it.
"""

from __future__ import annotations

import copy

from django.db import connections
from django.db.utils import load_backend


def use_dedicated_connection(alias: str = "default") -> None:
    """From now on this thread talks to the database on its own persistent connection, not the pool's."""
    current = connections[alias]
    if not current.settings_dict.get("OPTIONS", {}).get("pool"):
        return  # SQLite, or no pool configured: nothing to change
    settings_dict = copy.deepcopy(current.settings_dict)
    del settings_dict["OPTIONS"]["pool"]
    settings_dict["CONN_MAX_AGE"] = None
    current.close()
    connections[alias] = load_backend(settings_dict["ENGINE"]).DatabaseWrapper(settings_dict, alias)
