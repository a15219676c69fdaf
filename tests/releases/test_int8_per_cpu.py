"""INT8 honest per CPU: serving says which instruction sets its hosts have in /metrics, collection notes
the serving hosts' kinds, and an INT8 version's approval evidence warns when it was measured slower than
its source or on a CPU of another kind than the serving hosts'."""

import pytest
from django.core.cache import caches
from prometheus_client import REGISTRY

from modelspec.cpu import host_cpu
from monitoring import collection
from registry import evidence, selectors
from tests.factories import register, to_production

pytestmark = pytest.mark.django_db(transaction=True)  # the collection test scrapes a live server


def int8_finding(name: str, version: int):
    model = selectors.model_state_get(name=name)
    found = [f for f in evidence.version_evidence(model=model, version=version).findings if f.kind == "int8"]
    return found[0] if found else None


def test_metrics_name_the_hosts_instruction_sets(client):
    text = client.get("/metrics").content.decode()
    cpu = host_cpu()
    line = next(line for line in text.splitlines() if line.startswith("cvcp_host_cpu_info{"))
    assert f'kind="{cpu["kind"]}"' in line and f'vnni="{"true" if cpu["vnni"] else "false"}"' in line
    assert line.endswith(" 1.0")


def test_an_int8_version_measured_slower_or_on_another_cpu_is_flagged(users):
    register("cats", users["engineer"], seed=1)
    to_production("cats", 1, users)
    here = str(host_cpu()["kind"])
    caches["default"].delete(collection.SERVING_CPUS_KEY)
    register(
        "cats", users["engineer"], seed=2, tags={"cp.quantized_from": "1", "cp.measured_on_cpu": here},
        metrics={"int8_latency_ratio": 0.49, "int8_top1_agreement": 0.99},
    )  # fmt: skip
    fine = int8_finding("cats", 2)
    assert fine.flag == evidence.OK and "×0.49" in fine.summary and "99.0%" in fine.summary

    register(
        "cats", users["engineer"], seed=3, tags={"cp.quantized_from": "1", "cp.measured_on_cpu": here},
        metrics={"int8_latency_ratio": 1.12, "int8_top1_agreement": 0.99},
    )  # fmt: skip
    slower = int8_finding("cats", 3)
    assert slower.flag == evidence.AMBER and "slower than its source" in slower.summary

    # The serving hosts (as the last collection saw them in cvcp_host_cpu_info) are of another kind.
    other = "avx2" if here != "avx2" else "vnni"
    caches["default"].set(collection.SERVING_CPUS_KEY, [other])
    elsewhere = int8_finding("cats", 2)
    assert elsewhere.flag == evidence.AMBER and f"serving hosts are {other}" in elsewhere.summary
    assert int8_finding("cats", 1) is None  # not an INT8 build: nothing to say


def test_collection_notes_the_serving_hosts_kinds(users, client, settings, live_server):
    settings.PROMETHEUS_URL = ""
    settings.SERVING_METRICS_URLS = [f"{live_server.url}/metrics"]
    caches["default"].delete(collection.SERVING_CPUS_KEY)
    collection.collect()
    assert collection.serving_cpu_kinds() == [str(host_cpu()["kind"])]
    assert caches["default"].get(collection.SERVING_CPUS_KEY) == [str(host_cpu()["kind"])]


def mlflow_reads(operation: str) -> float:
    return REGISTRY.get_sample_value("cvcp_mlflow_calls_total", {"operation": operation}) or 0.0


def test_the_int8_check_takes_the_tags_the_evidence_read_instead_of_reading_the_version_again(users):
    register("cats", users["engineer"], seed=1)
    to_production("cats", 1, users)
    register("cats", users["engineer"], seed=2)  # a plain fp32 candidate
    register(
        "cats", users["engineer"], seed=3, tags={"cp.quantized_from": "1"}, metrics={"int8_latency_ratio": 0.5}
    )  # fmt: skip
    model = selectors.model_state_get(name="cats")
    for version, int8 in ((2, False), (3, True)):
        before = {op: mlflow_reads(op) for op in ("get_model_version", "search_runs")}
        found = evidence.version_evidence(model=model, version=version)
        asked = {op: mlflow_reads(op) - n for op, n in before.items()}
        assert asked["get_model_version"] == 2, (version, asked)  # the candidate and production, once each
        assert [f.kind for f in found.findings if f.kind == "int8"] == (["int8"] if int8 else [])
        if not int8:
            assert asked["search_runs"] == 0  # not an INT8 build: its run is not read either
