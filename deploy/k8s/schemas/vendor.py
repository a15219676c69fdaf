"""Vendor the JSON schemas of the custom resources our manifests use (prometheus-operator's ServiceMonitor
and PrometheusRule), so CI validates them offline. Made from the typed models of cloudcoil-models-prometheus-operator,
made strict: an object with named properties admits no others (as kubernetes-validate --strict does).

    pip install --target /tmp/cc cloudcoil-models-prometheus-operator
    PYTHONPATH=/tmp/cc python deploy/k8s/schemas/vendor.py
"""

from __future__ import annotations

import json
from importlib import metadata
from pathlib import Path
from typing import Any

from cloudcoil.models.prometheus_operator import v1

HERE = Path(__file__).resolve().parent


def strict(node: Any) -> Any:
    if isinstance(node, dict):
        node = {key: strict(value) for key, value in node.items()}
        if node.get("type") == "object" and "properties" in node and "additionalProperties" not in node:
            node["additionalProperties"] = False
        pattern = node.get("pattern")
        if isinstance(pattern, str) and "(?i)" in pattern[1:]:  # Go allows flags anywhere, Python first
            node["pattern"] = "(?i)" + pattern.replace("(?i)", "")
    elif isinstance(node, list):
        node = [strict(item) for item in node]
    return node


def main() -> None:
    version = metadata.version("cloudcoil-models-prometheus-operator")
    for model in (v1.ServiceMonitor, v1.PrometheusRule):
        schema = strict(model.model_json_schema(by_alias=True))
        schema["$comment"] = f"vendored from cloudcoil-models-prometheus-operator {version} by vendor.py"
        path = HERE / f"monitoring.coreos.com_v1_{model.__name__.lower()}.json"
        path.write_text(json.dumps(schema, indent=1, sort_keys=True) + "\n")
        print(f"{path.name}: {path.stat().st_size:,} bytes")


if __name__ == "__main__":
    main()
