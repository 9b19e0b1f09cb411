"""One engine per home and per database: the fence `runnode` takes before it starts.

Two engines with the same node key would run two consensus state machines
that can vote for different blocks in one round: a double-sign (the classic
"duplicate validator"). Two engines on one database would both write blocks.
So `runnode` takes, and holds for the life of its process:

- an exclusive `flock` on the home's signing log (`signing_log.jsonl`,
  created empty if missing): a second `runnode` on the same home refuses;
- on PostgreSQL, the session advisory lock `ENGINE_LOCK_KEY` on a dedicated
  connection of its own, outside Django and any pool: one key per database,
  so a second `runnode` on the same database refuses even with another home.

Both end with the process, however it ends (the kernel drops the flock, the
server ends the session and its lock), so a node killed with -9 restarts
without any cleanup. Each refusal is one line for the operator.

The advisory lock lives only as long as its session: if the server ends it
(a restart, a terminated backend, a lost network), another engine could
take the database. So a watcher thread asks the session every few seconds
and, once it is gone, stops the node at once (exit code 70, like an engine
failure) for its supervisor to restart it, which takes the lock anew or
refuses.
"""

from __future__ import annotations

import fcntl
import hashlib
import logging
import os
import threading
from dataclasses import dataclass, field
from typing import Any

import psycopg
from django.db import connections

from node.home import NodeHome
from node.server import NodeRefused
from node.signlog import LOG_FILE

logger = logging.getLogger(__name__)

# Advisory locks are scoped to a database, so one fixed key fences each database.
ENGINE_LOCK_KEY = int.from_bytes(hashlib.sha256(b"consortium engine").digest()[:8], "big", signed=True)
WATCH_SECONDS = 5.0
LOST_LOCK_EXIT = 70


@dataclass
class EngineFence:
    """What `runnode` holds while it runs; `release()` is for tests, a process simply exits."""

    home_fd: int
    database: psycopg.Connection[Any] | None
    _released: threading.Event = field(default_factory=threading.Event)

    def watch(self, interval: float = WATCH_SECONDS) -> None:
        """Stop the process if the database session holding the advisory lock ends."""
        if self.database is not None:
            watcher = threading.Thread(target=self._watch, args=(self.database, interval), name="fence", daemon=True)
            watcher.start()

    def _watch(self, database: psycopg.Connection[Any], interval: float) -> None:
        while not self._released.wait(interval):
            try:
                database.execute("SELECT 1")
            except psycopg.Error as exc:
                if self._released.is_set():
                    return
                first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
                logger.critical("lost the database's engine lock (%s); the node exits to be restarted", first_line)
                logging.shutdown()
                os._exit(LOST_LOCK_EXIT)

    def release(self) -> None:
        self._released.set()
        if self.database is not None:
            self.database.close()
            self.database = None
        if self.home_fd >= 0:
            os.close(self.home_fd)
            self.home_fd = -1


def fence_engine(home: NodeHome, alias: str = "default") -> EngineFence:
    """Take both locks, or raise NodeRefused saying which one another process holds."""
    home_fd = lock_home(home)
    try:
        database = lock_database(alias)
    except BaseException:
        os.close(home_fd)
        raise
    return EngineFence(home_fd, database)


def lock_home(home: NodeHome) -> int:
    path = home.path / LOG_FILE
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise NodeRefused(f"another runnode already runs on this home ({path} is locked by it)") from None
    return fd


def lock_database(alias: str = "default") -> psycopg.Connection[Any] | None:
    """The advisory lock on a connection of its own (PostgreSQL); None on SQLite, whose file is in the home."""
    wrapper = connections[alias]
    if wrapper.vendor != "postgresql":
        return None
    params = {k: v for k, v in wrapper.get_connection_params().items() if k not in {"cursor_factory", "context"}}
    params.pop("prepare_threshold", None)
    name = params.get("dbname", "")
    try:
        conn = psycopg.connect(**params, autocommit=True, application_name="consortium engine fence")
    except psycopg.Error as exc:
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise NodeRefused(f"cannot use the database: {first_line}") from None
    row = conn.execute("SELECT pg_try_advisory_lock(%s)", (ENGINE_LOCK_KEY,)).fetchone()
    if not (row and row[0]):
        unsigned = ENGINE_LOCK_KEY & 0xFFFF_FFFF_FFFF_FFFF  # pg_locks shows a bigint key as two oids
        holder = conn.execute(
            "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted AND classid = %s::oid "
            "AND objid = %s::oid AND objsubid = 1 "
            "AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
            (unsigned >> 32, unsigned & 0xFFFF_FFFF),
        ).fetchone()
        conn.close()
        who = f" (server process {holder[0]})" if holder else ""
        raise NodeRefused(f"another engine already runs on database {name}{who}: one runnode per database")
    logger.info("engine fenced: home locked, database %s advisory lock %d held", name, ENGINE_LOCK_KEY)
    return conn
