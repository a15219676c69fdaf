"""The OpenAPI schema changes only by additions: every path, operation, parameter, response, property
and enum value a client could rely on at the baseline is still there, and nothing a client sends has
become required. The baseline (tests/openapi-baseline.json) is the schema as published on 2026-12-07;
replace it only on purpose, with a note in the changelog of what clients must change."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from drf_spectacular.generators import SchemaGenerator

BASELINE = Path(__file__).with_name("openapi-baseline.json")
METHODS = ("get", "put", "post", "patch", "delete")


class Comparison:
    def __init__(self, old: dict, new: dict) -> None:
        self.old, self.new = old, new
        self.breaks: list[str] = []
        self._seen: set[tuple[str, str, str]] = set()

    def _resolve(self, doc: dict, schema: dict) -> tuple[str, dict]:
        ref = schema.get("$ref", "")
        if ref:
            name = ref.rsplit("/", 1)[-1]
            return name, doc["components"]["schemas"].get(name, {})
        return "", schema

    def schema(self, old: dict, new: dict, where: str, *, sent: bool) -> None:
        """`sent`: the client sends this (a request body), else the client reads it (a response)."""
        old_name, old = self._resolve(self.old, old)
        new_name, new = self._resolve(self.new, new)
        if old_name:
            key = (old_name, new_name, "sent" if sent else "read")
            if key in self._seen:
                return
            self._seen.add(key)
        if not new and old:
            self.breaks.append(f"{where}: schema {old_name or '(inline)'} is gone")
            return
        if old.get("type") != new.get("type"):
            self.breaks.append(f"{where}: type {old.get('type')} became {new.get('type')}")
        if set(old.get("enum", [])) - set(new.get("enum", [])):
            self.breaks.append(
                f"{where}: enum lost {sorted(set(old['enum']) - set(new.get('enum', [])), key=str)}"
            )
        old_required, new_required = set(old.get("required", [])), set(new.get("required", []))
        if sent and new_required - old_required:
            self.breaks.append(f"{where}: clients must now send {sorted(new_required - old_required)}")
        if not sent and old_required - new_required:
            self.breaks.append(f"{where}: answers may now lack {sorted(old_required - new_required)}")
        for prop, old_prop in old.get("properties", {}).items():
            new_prop = new.get("properties", {}).get(prop)
            if new_prop is None:
                self.breaks.append(f"{where}: property {prop!r} is gone")
            else:
                self.schema(old_prop, new_prop, f"{where}.{prop}", sent=sent)
        if "items" in old:
            self.schema(old["items"], new.get("items", {}), f"{where}[]", sent=sent)
        for combinator in ("allOf", "oneOf", "anyOf"):
            for i, (a, b) in enumerate(zip(old.get(combinator, []), new.get(combinator, []), strict=False)):
                self.schema(a, b, f"{where}.{combinator}[{i}]", sent=sent)

    def operation(self, old: dict, new: dict, where: str) -> None:
        if old.get("operationId") != new.get("operationId"):
            self.breaks.append(
                f"{where}: operationId {old.get('operationId')} became {new.get('operationId')}"
            )
        new_params = {(p["name"], p["in"]): p for p in new.get("parameters", [])}
        for param in old.get("parameters", []):
            found = new_params.get((param["name"], param["in"]))
            if found is None:
                self.breaks.append(f"{where}: parameter {param['name']} ({param['in']}) is gone")
            elif found.get("required") and not param.get("required"):
                self.breaks.append(f"{where}: parameter {param['name']} became required")
        for name, param in new_params.items():
            if param.get("required") and name not in {
                (p["name"], p["in"]) for p in old.get("parameters", [])
            }:
                self.breaks.append(f"{where}: new required parameter {name[0]}")
        old_body, new_body = old.get("requestBody"), new.get("requestBody")
        if new_body and new_body.get("required") and not old_body:
            self.breaks.append(f"{where}: a request body became required")
        if old_body and new_body:
            for media, content in old_body.get("content", {}).items():
                if media not in new_body.get("content", {}):
                    self.breaks.append(f"{where}: request body no longer accepts {media}")
                else:
                    self.schema(
                        content["schema"], new_body["content"][media]["schema"], f"{where} body", sent=True
                    )
        for status, response in old.get("responses", {}).items():
            found = new.get("responses", {}).get(status)
            if found is None:
                self.breaks.append(f"{where}: response {status} is gone")
                continue
            for media, content in response.get("content", {}).items():
                if media not in found.get("content", {}):
                    self.breaks.append(f"{where} {status}: no longer answers {media}")
                elif "schema" in content:
                    self.schema(
                        content["schema"],
                        found["content"][media].get("schema", {}),
                        f"{where} {status}",
                        sent=False,
                    )

    def run(self) -> list[str]:
        for path, old_item in self.old["paths"].items():
            new_item = self.new["paths"].get(path)
            if new_item is None:
                self.breaks.append(f"{path} is gone")
                continue
            for method in METHODS:
                if method in old_item:
                    if method not in new_item:
                        self.breaks.append(f"{method.upper()} {path} is gone")
                    else:
                        self.operation(old_item[method], new_item[method], f"{method.upper()} {path}")
        return self.breaks


def current_schema() -> dict[str, Any]:
    return json.loads(json.dumps(SchemaGenerator().get_schema(request=None, public=True), default=str))


def test_the_schema_changes_only_by_additions():
    assert Comparison(json.loads(BASELINE.read_text()), current_schema()).run() == []


def test_the_comparison_sees_what_breaks_clients():
    """The check itself: removals, a new required field in a body, a lost enum value, a lost answer field."""
    old = json.loads(BASELINE.read_text())
    new = json.loads(BASELINE.read_text())
    del new["paths"]["/api/v1/me"]
    schemas = new["components"]["schemas"]
    schemas["WeightInputRequest"].setdefault("required", []).append("surprise")
    schemas["StageEnum"]["enum"] = schemas["StageEnum"]["enum"][1:]
    del schemas["VersionOutput"]["properties"]["version"]
    breaks = "\n".join(Comparison(old, new).run())
    assert "/api/v1/me is gone" in breaks
    assert "clients must now send ['surprise']" in breaks
    assert "enum lost" in breaks
    assert "property 'version' is gone" in breaks
    assert Comparison(old, json.loads(BASELINE.read_text())).run() == []
