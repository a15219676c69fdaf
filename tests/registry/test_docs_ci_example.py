"""docs/api.md's CI pipeline, run as written with curl and jq against a live server: what users copy
works, and its 2 a.m. rollback is safe to repeat."""

import json
import re
import subprocess
from pathlib import Path

import pytest
from knox.models import AuthToken

from modelspec.examples import tiny_classifier_onnx
from registry.models import ModelState, PromotionEvent
from tests.factories import register, to_production

DOC = Path(__file__).resolve().parents[2] / "docs" / "api.md"
MARK = "# at 2 a.m."


def ci_script() -> str:
    text = DOC.read_text()
    section = text[text.index("## A CI pipeline in curl") :]
    return re.search(r"```bash\n(.*?)```", section, re.S).group(1)


def run(script: str, cwd: Path, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["bash", "-c", script], cwd=cwd, env=env, capture_output=True, text=True, timeout=120
    )


@pytest.mark.django_db(transaction=True)
def test_the_documented_pipeline_runs_and_its_rollback_acts_once(users, live_server, tmp_path):
    register("cats", users["engineer"], seed=1)
    register("cats", users["engineer"], seed=2)
    to_production("cats", 1, users)
    to_production("cats", 2, users)  # production v2, the rollback target v1
    (tmp_path / "model.onnx").write_bytes(tiny_classifier_onnx(size=224, seed=3))
    script = ci_script().replace("http://127.0.0.1:8000", live_server.url)
    env = {
        "PATH": "/usr/bin:/bin",
        "CONTROLPLANE_TOKEN": AuthToken.objects.create(users["engineer"])[1],
        "OPERATOR_TOKEN": AuthToken.objects.create(users["operator"])[1],
        "GITHUB_RUN_ID": "41",
        "GIT_SHA": "abc1234",
    }
    done = run(script, tmp_path, env)
    assert done.returncode == 0, done.stdout + done.stderr
    assert json.loads(done.stdout.splitlines()[-1])["event"]["to_version"] == 1
    model = ModelState.objects.get(name="cats")
    assert (model.production_version, model.canary_version) == (1, 3)
    assert model.production_requests.get(status="pending").version == 3
    assert PromotionEvent.objects.filter(action="rollback").count() == 1

    # The same rollback again — another operator who saw v2 failing, or a retry — is refused.
    prelude = script[: script.index("# 1. register")]  # the settings and the helpers
    rollback = script[script.index(MARK) :]
    retry = [line for line in rollback.splitlines()[1:] if not line.startswith("BAD=")]
    again = run("\n".join([prelude, "BAD=2", *retry]), tmp_path, env)
    assert again.returncode == 22, again.stdout + again.stderr  # curl --fail-with-body on a 4xx
    assert json.loads(again.stdout)["error"]["code"] == "stale_state"
    assert json.loads(again.stdout)["error"]["current"]["production"] == 1
    assert PromotionEvent.objects.filter(action="rollback").count() == 1
    assert ModelState.objects.get(name="cats").production_version == 1
