"""Path converters shared by the site's URL modules (registered once, on import)."""

from __future__ import annotations

from django.urls import register_converter

DB_INT_MAX = 2**63 - 1  # the largest value of a 64-bit integer column, on PostgreSQL and SQLite


class DatabaseIntConverter:
    """A non-negative integer that a database column can hold (a block height, a row id).

    Beyond that range there can be no such row: the URL does not match, so it
    answers 404, instead of the query failing on the database (a 500).
    """

    regex = r"[0-9]{1,19}"

    def to_python(self, value: str) -> int:
        number = int(value)
        if number > DB_INT_MAX:
            raise ValueError(f"{value} is beyond the database's range")
        return number

    def to_url(self, value: int) -> str:
        return str(int(value))


register_converter(DatabaseIntConverter, "dbint")
