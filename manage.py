#!/usr/bin/env python
"""Django's command-line utility for administrative tasks."""

import os
import sys
from pathlib import Path

# The chain protocol shared with the member's client lives in that package's
# source folder; this checkout's copy comes first, so each checkout runs its own.
sys.path.insert(0, str(Path(__file__).resolve().parent / "clients" / "python" / "src"))

# Commands that never serve a page or sign a session: a member's client, and the
# tools that write a node's files. They need no secret key, so a placeholder
# stands in when none is configured; runnode and the rest still require one.
OFFLINE_COMMANDS = {"tx", "initnode", "makegenesis", "devnet"}


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    if len(sys.argv) > 1 and sys.argv[1] in OFFLINE_COMMANDS:
        os.environ.setdefault("DJANGO_SECRET_KEY", "offline-command-placeholder-never-used-to-sign")
    from django.core.exceptions import ImproperlyConfigured
    from django.core.management import execute_from_command_line

    try:
        execute_from_command_line(sys.argv)
    except ImproperlyConfigured as exc:
        # A configuration mistake is the operator's to fix: one line, no traceback.
        sys.exit(f"configuration error: {exc}")


if __name__ == "__main__":
    main()
