"""Run as a separate process on a fresh database: import an export, verify it, and export it again.

    python -m tests.ops.restore_node EXPORT REEXPORT

Prints {"import": ..., "verify": ...} (each command's output) as JSON, so
test_export_import can compare the re-export with the original byte for byte.
"""

from __future__ import annotations

import json
import sys
from io import StringIO

import django


def main(export: str, reexport: str) -> None:
    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    outputs = {}
    for name, args in (
        ("import", ["importchain", export, "--no-progress"]),
        ("verify", ["verifychain", "--no-progress"]),
        ("export", ["exportchain", reexport, "--no-progress"]),
    ):
        out = StringIO()
        call_command(*args, stdout=out, stderr=StringIO())
        outputs[name] = out.getvalue().strip()
    print(json.dumps(outputs))


if __name__ == "__main__":
    main(*sys.argv[1:])
