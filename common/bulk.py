"""Bulk INSERT for the few places that write many rows at once: a block's commit and the pool's admission rounds."""

from __future__ import annotations

from django.db import connection
from django.db.models import Model

_MAX_PARAMETERS = 9000  # below SQLite's 32,766 and PostgreSQL's 65,535 bound parameters


def insert_rows(
    model: type[Model],
    columns: tuple[str, ...],
    rows: list[tuple],
    *,
    on_conflict: tuple[str, ...] = (),
    update: tuple[str, ...] = (),
) -> None:
    """Bulk INSERT of many rows in few statements; on a conflict on `on_conflict`, UPDATE `update`, or nothing.

    A block may hold thousands of transactions: model instances would cost
    more than the SQL, and row-by-row statements a round trip each. On
    PostgreSQL one statement per table takes a typed array per column
    (`unnest`), which keeps the statement short enough for psycopg to cache;
    SQLite takes multi-row VALUES in chunks. Table and column names come from
    our own models; every value is a parameter.
    """
    if not rows:
        return
    quote = connection.ops.quote_name
    head = f"INSERT INTO {quote(model._meta.db_table)} ({', '.join(quote(c) for c in columns)}) "
    tail = ""
    if on_conflict:
        assignments = ", ".join(f"{quote(c)} = EXCLUDED.{quote(c)}" for c in update)
        action = f"DO UPDATE SET {assignments}" if update else "DO NOTHING"
        tail = f" ON CONFLICT ({', '.join(quote(c) for c in on_conflict)}) {action}"
    if connection.vendor == "postgresql":
        fields = {f.column: f for f in model._meta.concrete_fields}
        arrays = ", ".join(f"%s::{fields[c].db_type(connection)}[]" for c in columns)
        statement = head + f"SELECT * FROM unnest({arrays})" + tail  # noqa: S608
        connection.ensure_connection()
        # Django's psycopg cursors bind parameters client-side, quoting every
        # value into the statement text; the driver's own cursor sends the
        # arrays as bound parameters, which is several times faster here.
        with connection.connection.cursor() as cursor:
            cursor.execute(statement, [list(col) for col in zip(*rows, strict=True)])
        return
    placeholder = "(" + ", ".join(["%s"] * len(columns)) + ")"
    per_statement = max(1, _MAX_PARAMETERS // len(columns))
    with connection.cursor() as cursor:
        for start in range(0, len(rows), per_statement):
            chunk = rows[start : start + per_statement]
            values = "VALUES " + ", ".join([placeholder] * len(chunk))
            cursor.execute(head + values + tail, [value for row in chunk for value in row])
