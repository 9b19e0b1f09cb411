"""Production settings pass `manage.py check --deploy` with no warnings at all."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


SERVER_URL = os.environ.get("DATABASE_URL") or "postgres://postgres@127.0.0.1:5432/postgres"


@pytest.mark.parametrize(
    ("secret_from", "proxies", "database"),
    [("env", "0", None), ("file", "0", None), ("env", "1", None), ("file", "2", SERVER_URL)],
)
def test_production_settings_pass_the_deploy_check_without_warnings(tmp_path, secret_from, proxies, database):
    secret = secrets.token_urlsafe(50)  # 67 characters, as the check wants 50+ with variety
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "CONSORTIUM_")) and k != "DATABASE_URL"}
    env.update(CONSORTIUM_HOME=str(tmp_path), DJANGO_DEBUG="false", DJANGO_ALLOWED_HOSTS="node.example.org")
    env["CONSORTIUM_TRUSTED_PROXIES"] = proxies  # with and without trusting X-Forwarded-Proto
    if database:
        env["DATABASE_URL"] = database  # the pooled PostgreSQL settings
    if secret_from == "env":
        env["DJANGO_SECRET_KEY"] = secret
    else:
        (tmp_path / "secret").write_text(secret + "\n")
        env["DJANGO_SECRET_KEY_FILE"] = str(tmp_path / "secret")
    done = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    assert "WARNINGS" not in output and "System check identified no issues" in output
