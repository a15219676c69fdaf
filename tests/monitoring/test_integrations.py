"""Alertmanager in, Prometheus rules and a Grafana dashboard out."""

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from django.core.management import call_command
from knox.models import AuthToken
from rest_framework.test import APIClient

from monitoring import baselines
from monitoring.models import Alert, AlertRule
from serving import metrics

pytestmark = pytest.mark.django_db
ROOT = Path(__file__).resolve().parents[2]


def payload(status="firing", fingerprint="abc123", **labels):
    return {
        "version": "4",
        "status": status,
        "alerts": [
            {
                "status": status,
                "labels": {
                    "alertname": "CvcpSlowP95",
                    "model": "cats",
                    "version": "1",
                    "severity": "critical",
                    **labels,
                },
                "annotations": {"summary": "P95 latency of cats v1 is over 500 ms"},
                "startsAt": "2026-11-25T10:00:00Z",
                "endsAt": "2026-11-25T10:30:00Z" if status == "resolved" else None,
                "fingerprint": fingerprint,
            }
        ],
    }


def operator_client(users):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {AuthToken.objects.create(users['operator'])[1]}")
    return client


def test_alertmanager_firing_then_resolved(users):
    client = operator_client(users)
    first = client.post("/api/v1/alertmanager", payload(), format="json")
    assert first.status_code == 200 and first.json()["received"] == 1
    alert = Alert.objects.get(external_key="abc123")
    assert (alert.state, alert.severity, alert.version, alert.title) == (
        "firing",
        "critical",
        1,
        "P95 latency of cats v1 is over 500 ms",
    )
    client.post("/api/v1/alertmanager", payload(), format="json")  # Alertmanager repeats itself
    assert Alert.objects.filter(external_key="abc123").count() == 1
    client.post("/api/v1/alertmanager", payload("resolved"), format="json")
    alert.refresh_from_db()
    assert alert.state == "resolved" and [e.action for e in alert.events.all()] == ["firing", "resolved"]


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"version": "4", "status": "firing", "alerts": []},
        {
            "version": "4",
            "status": "firing",
            "alerts": [{"status": "firing", "labels": {}, "startsAt": "x", "fingerprint": "f"}],
        },
        "not json at all",
    ],
)
def test_malformed_alertmanager_payloads_are_400_json(users, body):
    client = operator_client(users)
    if isinstance(body, str):
        response = client.post("/api/v1/alertmanager", body, content_type="application/json")
    else:
        response = client.post("/api/v1/alertmanager", body, format="json")
    assert response.status_code == 400 and set(response.json()["error"]) >= {"code", "message"}
    assert Alert.objects.count() == 0


def test_alertmanager_needs_an_operator(users):
    client = APIClient()
    client.force_authenticate(users["viewer"])
    assert client.post("/api/v1/alertmanager", payload(), format="json").status_code == 403


def test_exported_rules_pass_promtool(model_with_versions, tmp_path):
    baselines.baseline_from_reference(model_name="cats", version=1)
    AlertRule.objects.create(
        model="cats", name="confidence fell", signal="confidence", method="mean_drop", threshold=0.05
    )
    out = tmp_path / "rules.yml"
    call_command("export_alert_rules", out=str(out))
    text = out.read_text()
    assert "CvcpHighErrorRate" in text and "CvcpMeanShift_" in text
    promtool = shutil.which("promtool")
    assert promtool, "promtool is missing: install Debian's prometheus package (./dev test does)"
    result = subprocess.run([promtool, "check", "rules", str(out)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_grafana_dashboard_uses_only_metrics_we_export():
    dashboard = json.loads((ROOT / "deploy" / "grafana" / "cvcp-serving.json").read_text())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    assert len(exprs) >= 10
    exported = {
        m._name
        for m in [*vars(metrics).values(), *metrics.answer_signals.values()]  # the tasks' answer signals
        if hasattr(m, "_name") and str(m._name).startswith("cvcp_")
    }
    for name in {
        re.sub(r"_(bucket|sum|count|total)$", "", n) for e in exprs for n in re.findall(r"cvcp_[a-z_]+", e)
    }:
        assert name in exported, name
