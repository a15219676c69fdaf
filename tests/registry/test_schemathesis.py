"""Schemathesis against the running API (a real HTTP client, bounded in time, a fixed seed, its stateful
phase on the models it finds and makes): no server error, no answer outside the published schema.

`positive_data_acceptance` is left out: a schema-valid request can still break a workflow rule (an
override without a reason, promoting a version already live), and those refusals are 4xx by design.
Token revocation is left out too: the run would revoke the token it runs with (tested in test_credentials).
So is the predict endpoint: its 503s (no version live in the stage asked for, a version still loading)
are answers by design, and schemathesis counts every 5xx as a server error; its answers are checked
against the schema in test_openapi and it is fuzzed with hostile images in tests/serving/test_fuzz_predict."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from knox.models import AuthToken

from tests.factories import register, to_production

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def test_schemathesis_finds_no_server_error_and_no_schema_violation(live_server, users, settings, tmp_path):
    settings.API_AUTH_FAILURE_LIMIT = 10**9  # it sends bad tokens on purpose; a lock-out would end the run
    for seed in (1, 2, 3):
        register("cats", users["engineer"], seed=seed)
    to_production("cats", 1, users)
    _, token = AuthToken.objects.create(users["admin"])
    cli = shutil.which("schemathesis", path=str(Path(sys.executable).parent))
    assert cli, "schemathesis is missing: it is a dev dependency (./dev test installs it)"
    report = tmp_path / "schemathesis.txt"
    result = subprocess.run(
        [
            cli, "run", f"{live_server.url}/api/schema/", "--checks", "all",
            "--exclude-checks", "positive_data_acceptance", "--exclude-path-regex", r"tokens/\{key\}|/predict$",
            "-H", f"Authorization: Token {token}", "--seed", "20261130", "--max-examples", "8",
            "--workers", "1", "--max-time", "150", "--no-color",
        ],
        capture_output=True, text=True, timeout=400,
    )  # fmt: skip
    report.write_text(result.stdout + result.stderr)
    summary = result.stdout[-3000:]
    assert result.returncode == 0, summary
    assert "Server error" not in result.stdout and "passed" in result.stdout, summary
