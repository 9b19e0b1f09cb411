"""One writer at a time inside a process, for SQLite.

SQLite lets one connection write at a time; the others wait in its busy
handler, which sleeps in growing steps (1, 2, 5, 10 ms …) before retrying.
The engine's block commits and the API's pool inserts live in one process,
so they queue on a plain lock instead and each starts the moment the last
one ends. PostgreSQL has row-level locking and needs none of this.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator

from django.db import connection, transaction

_sqlite_writer = threading.Lock()


@contextlib.contextmanager
def write_transaction() -> Iterator[None]:
    """transaction.atomic(), serialised within the process on SQLite."""
    if connection.vendor != "sqlite":
        with transaction.atomic():
            yield
        return
    with _sqlite_writer, transaction.atomic():
        yield
