"""The predict endpoint in the OpenAPI schema. It is a plain Django view on the hot path (serving.endpoints),
outside DRF, so drf-spectacular cannot see it: this postprocessing hook (SPECTACULAR_SETTINGS) adds it,
with both tasks' answers — a classifier's label and top-k, a detector's boxes — and an example of each."""

from __future__ import annotations

from typing import Any

_BOX = {
    "type": "object",
    "description": "In the uploaded image's pixels (EXIF orientation and the resize undone), x to the right, y down",
    "properties": {k: {"type": "number"} for k in ("x1", "y1", "x2", "y2")},
    "required": ["x1", "y1", "x2", "y2"],
}
_ENVELOPE = {
    "prediction_id": {"type": "string", "description": "names this answer for feedback (signed, not stored)"},
    "latency_ms": {"type": "number"},
    "model_version": {"type": "integer"},
    "stage": {"type": "string", "enum": ["production", "canary", "staging", "pinned"]},
    "source": {"type": "string", "enum": ["live", "tester", "replay", "shadow"]},
    "timestamp": {"type": "string", "format": "date-time"},
    "cached": {"type": "boolean", "description": "answered from the duplicate-input cache"},
}
SCHEMAS: dict[str, Any] = {
    "ClassificationAnswer": {
        "type": "object",
        "description": "A classifier's answer (metadata task: classification)",
        "properties": {
            "label": {"type": "string"},
            "confidence": {"type": "number", "minimum": 0, "maximum": 1},
            "top_k": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "index": {"type": "integer"},
                        "label": {"type": "string"},
                        "confidence": {"type": "number"},
                    },
                },
            },
            **_ENVELOPE,
        },
        "required": ["label", "confidence", "top_k", "prediction_id", "model_version", "stage", "timestamp"],
    },
    "DetectionAnswer": {
        "type": "object",
        "description": "A detector's answer (metadata task: detection): its boxes at or above min_confidence, "
        "highest confidence first",
        "properties": {
            "detections": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "label": {"type": "string"},
                        "class_index": {"type": "integer"},
                        "confidence": {"type": "number", "minimum": 0, "maximum": 1},
                        "box": _BOX,
                    },
                    "required": ["label", "class_index", "confidence", "box"],
                },
            },
            "count": {"type": "integer", "description": "how many boxes `detections` holds"},
            "min_confidence": {
                "type": "number",
                "description": "the cut applied (the request's, else the model's)",
            },
            "image": {
                "type": "object",
                "description": "the uploaded image's upright size, the space the boxes are in",
                "properties": {"width": {"type": "integer"}, "height": {"type": "integer"}},
            },
            **_ENVELOPE,
        },
        "required": [
            "detections",
            "count",
            "min_confidence",
            "image",
            "prediction_id",
            "model_version",
            "stage",
        ],
    },
}
_EXAMPLE_ENVELOPE = {
    "prediction_id": "AAAAAQAA…:Xr7…", "latency_ms": 4.1, "model_version": 1, "stage": "production",
    "source": "live", "timestamp": "2026-12-07T15:20:49.461Z", "cached": False,
}  # fmt: skip
EXAMPLES = {
    "classifier": {
        "summary": "A classifier",
        "value": {
            "label": "tiger cat", "confidence": 0.396,
            "top_k": [{"index": 282, "label": "tiger cat", "confidence": 0.396}], **_EXAMPLE_ENVELOPE,
        },
    },
    "detector": {
        "summary": "A detector (the demo's face detector on scikit-image's astronaut)",
        "value": {
            "detections": [
                {"label": "face", "class_index": 0, "confidence": 0.92,
                 "box": {"x1": 179.2, "y1": 82.4, "x2": 274.0, "y2": 177.3}},
            ],
            "count": 1, "min_confidence": 0.5, "image": {"width": 512, "height": 512}, **_EXAMPLE_ENVELOPE,
        },
    },
}  # fmt: skip
_ERROR = {"$ref": "#/components/schemas/PredictError"}


def _parameter(name: str, where: str, schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {
        "name": name,
        "in": where,
        "required": where == "path",
        "schema": schema,
        "description": description,
    }


PATH: dict[str, Any] = {
    "post": {
        "operationId": "predict",
        "summary": "A prediction: the live version's answer to one image",
        "description": "The image as the raw body (any Content-Type) or the multipart field `file`. A classifier "
        "answers a label and its top-k; a detector answers boxes. Tokens are not needed: put the endpoint "
        'behind your own gateway. Errors are JSON `{"error": {"code", "message"}}` (docs/serving.md).',
        "tags": ["serving"],
        "security": [],
        "parameters": [
            _parameter("name", "path", {"type": "string"}, "the registered model"),
            _parameter(
                "version", "query", {"type": "integer", "minimum": 0}, "pin a version (its stage: pinned)"
            ),
            _parameter("stage", "query", {"type": "string", "enum": ["production", "canary"]}, "pin a stage"),
            _parameter(
                "min_confidence",
                "query",
                {"type": "number", "minimum": 0, "maximum": 1},
                "a detector's cut for this request (default: the version's `detection.min_confidence`); "
                "below its `score_threshold` no further box appears",
            ),
            _parameter("X-Routing-Key", "header", {"type": "string"}, "makes a client sticky to one version"),
        ],  # fmt: skip
        "requestBody": {
            "required": True,
            "content": {
                "image/*": {"schema": {"type": "string", "format": "binary"}},
                "multipart/form-data": {
                    "schema": {
                        "type": "object",
                        "properties": {"file": {"type": "string", "format": "binary"}},
                    }
                },
            },
        },
        "responses": {
            "200": {
                "description": "The answer of the task the version does",
                "content": {
                    "application/json": {
                        "schema": {
                            "oneOf": [
                                {"$ref": "#/components/schemas/ClassificationAnswer"},
                                {"$ref": "#/components/schemas/DetectionAnswer"},
                            ]
                        },
                        "examples": EXAMPLES,
                    }
                },
            },
            **{
                status: {"description": why, "content": {"application/json": {"schema": _ERROR}}}
                for status, why in (
                    ("400", "not an image, a corrupt one, or a bad parameter (code names which)"),
                    ("404", "no such model"),
                    ("413", "the body or the image's pixels are over the limits"),
                    ("415", "an image mode that is not converted"),
                    ("503", "no version live, or the model is loading (Retry-After)"),
                )
            },
        },
    }
}


def predict_endpoint(result: dict[str, Any], generator: Any, request: Any, public: bool) -> dict[str, Any]:
    """drf-spectacular postprocessing hook: add the predict endpoint and its answers."""
    schemas = result.setdefault("components", {}).setdefault("schemas", {})
    schemas.update(SCHEMAS)
    schemas["PredictError"] = {
        "type": "object",
        "properties": {
            "error": {
                "type": "object",
                "properties": {"code": {"type": "string"}, "message": {"type": "string"}},
                "required": ["code", "message"],
            }
        },
    }
    result.setdefault("paths", {})["/v1/models/{name}/predict"] = PATH
    return result
