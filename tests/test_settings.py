"""Settings come from the environment: the database URL picks the backend, DEBUG off demands secrets."""

import os
import subprocess
import sys

import pytest
from django.db import connection


@pytest.mark.django_db
def test_database_backend_follows_database_url():
    url = os.environ.get("DATABASE_URL", "")
    expected = "postgresql" if url.startswith("postgres") else "sqlite"
    assert connection.vendor == expected
    if expected == "postgresql":  # an unreachable server fails a read in seconds (docs/serving.md)
        connection.ensure_connection()
        dsn = connection.connection.info.dsn
        assert "connect_timeout=3" in dsn and "tcp_user_timeout=10000" in dsn, dsn


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"DEBUG": "false"}, "SECRET_KEY must be set"),
        ({"DEBUG": "false", "SECRET_KEY": "x" * 50}, "ALLOWED_HOSTS must be set"),
        (
            {"DEBUG": "false", "SECRET_KEY": "x" * 50, "ALLOWED_HOSTS": "cp.example.com"},
            "CELERY_BROKER_URL must be set",
        ),
    ],
)
def test_debug_off_without_secrets_refuses_to_start(env, message, tmp_path):
    clean = {
        k: v
        for k, v in os.environ.items()
        if k not in {"SECRET_KEY", "ALLOWED_HOSTS", "DEBUG", "CELERY_BROKER_URL"}
    }
    result = subprocess.run(
        [sys.executable, "-c", "import django; django.setup()"],
        env={
            **clean,
            **env,
            "DJANGO_SETTINGS_MODULE": "controlplane.settings",
            "CONTROLPLANE_VAR_DIR": str(tmp_path),
        },
        capture_output=True,
        text=True,
    )
    assert result.returncode != 0 and message in result.stderr


def test_debug_off_with_secrets_starts(tmp_path):
    env = {
        **os.environ,
        "DEBUG": "false",
        "SECRET_KEY": "x" * 50,
        "ALLOWED_HOSTS": "cp.example.com",
        "CELERY_BROKER_URL": "redis://127.0.0.1:6379/0",
        "DJANGO_SETTINGS_MODULE": "controlplane.settings",
        "CONTROLPLANE_VAR_DIR": str(tmp_path),
    }
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            "import django; django.setup(); from django.conf import settings; print(settings.DEBUG)",
        ],
        env=env,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"
