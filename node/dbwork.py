"""Database work on the node's long-lived threads: the one place that drops stale connections.

Django closes a request's connection when the request ends; a thread that
lives as long as the process has no request, so before each piece of
database work it must drop a connection that the database closed, that
failed, or that outlived CONN_MAX_AGE (`close_old_connections`), or it would
fail on the first query after a database restart. The engine thread marks
each of its database reads and writes with `fresh_connection`; work the
asyncio host runs on a worker thread of its own goes through `on_worker`,
which hands the connection back when the work is done.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import ParamSpec, TypeVar

from django.db import close_old_connections

P = ParamSpec("P")
R = TypeVar("R")


def fresh_connection(work: Callable[P, R]) -> Callable[P, R]:
    """`work`, run after dropping a stale connection of this thread."""

    @functools.wraps(work)
    def run(*args: P.args, **kwargs: P.kwargs) -> R:
        close_old_connections()
        return work(*args, **kwargs)

    return run


def on_worker(work: Callable[P, R]) -> Callable[P, R]:
    """`work` for a pooled worker thread: its connection is given back (or dropped) when it is done."""

    @functools.wraps(work)
    def run(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return work(*args, **kwargs)
        finally:
            close_old_connections()

    return run
