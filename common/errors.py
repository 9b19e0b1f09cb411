"""The one base of errors that a person acts on: an operator, an admin, a member at a prompt.

Each subclass names what was refused; its `message` is one sentence, shown as
it is (a command prints it and exits non-zero, a page shows it as a message),
never with a traceback.
"""

from __future__ import annotations


class OperatorError(Exception):
    """Something the node refused, said in one line for the person who asked."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message
