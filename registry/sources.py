"""Where a version's weights may come from when they are not uploaded: the rule on `source_uri`.

Accepted: MLflow URIs resolved against the configured tracking and registry stores (`runs:/`,
`models:/<name>/<version>`, `models:/<name>@<alias>`, and `mlflow-artifacts:/` when the tracking store
is a server), object-store URIs whose scheme settings name (MODEL_IMPORT_OBJECT_STORES, none by default),
and local paths only inside the import folder settings name (MODEL_IMPORT_DIR, none by default; links
resolved before the check). Anything else is refused with the same 400 whether or not it exists, and
nothing is read beyond the upload limit."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import unquote, urlparse

from django.conf import settings

from core.exceptions import BadRequest, NotFound, PayloadTooLarge

from . import mlflow_gateway
from .mlflow_gateway import FetchedModel

MAX_URI = 2000
MAX_LISTED = 1000


class SourceRefused(BadRequest):
    code = "source_refused"


def _accepted() -> str:
    kinds = ["runs:/<run_id>/<path>", "models:/<name>/<version>", "models:/<name>@<alias>"]
    if _tracking_server():
        kinds.append("mlflow-artifacts:/<path>")
    kinds += [f"{scheme}://<bucket>/<key>" for scheme in settings.MODEL_IMPORT_OBJECT_STORES]
    if settings.MODEL_IMPORT_DIR:
        kinds.append("a path inside the import folder")
    return ", ".join(kinds)


def _tracking_server() -> bool:
    return settings.MLFLOW_TRACKING_URI.startswith(("http://", "https://"))


def _refused() -> SourceRefused:
    return SourceRefused(f"source_uri must be one of: {_accepted()}")


def model_from_source(uri: str) -> FetchedModel:
    """The .onnx file a source URI names, read if the rule allows it, never beyond the upload limit."""
    limit = settings.MODEL_UPLOAD_MAX_BYTES
    if len(uri) > MAX_URI or any(c in uri for c in "\x00\\\r\n") or ".." in uri.split("/"):
        raise _refused()
    scheme = urlparse(uri).scheme.lower()
    if scheme in ("runs", "models") or (scheme == "mlflow-artifacts" and _tracking_server()):
        return mlflow_gateway.model_file_fetch(uri=uri, max_bytes=limit)
    if scheme and scheme in settings.MODEL_IMPORT_OBJECT_STORES:
        return mlflow_gateway.model_file_fetch(uri=uri, max_bytes=limit)
    if scheme == "file" or (not scheme and uri.startswith("/")):
        return _local(unquote(urlparse(uri).path) if scheme == "file" else uri, limit)
    raise _refused()


def _local(raw: str, limit: int) -> FetchedModel:
    """A file in the import folder, or the one .onnx file in a folder inside it."""
    folder = settings.MODEL_IMPORT_DIR
    if not folder:
        raise _refused()
    root = Path(folder).resolve()
    path = Path(raw).resolve()  # links resolved before the check
    if not path.is_relative_to(root):
        raise _refused()
    if path.is_dir():
        found = []
        for listed, candidate in enumerate(path.rglob("*")):
            if listed >= MAX_LISTED:
                raise BadRequest(f"{raw} holds more than {MAX_LISTED} files; point at the .onnx file")
            if (
                candidate.suffix == ".onnx"
                and candidate.resolve().is_relative_to(root)
                and candidate.is_file()
            ):
                found.append(candidate)
        if len(found) != 1:
            raise BadRequest(f"{raw} holds {len(found)} .onnx files; point at exactly one")
        path = found[0].resolve()
    if not path.is_file():
        raise NotFound(f"{raw}: no such file in the import folder")
    if path.stat().st_size > limit:
        raise PayloadTooLarge(f"the model is over the limit of {limit:,} bytes")
    with path.open("rb") as handle:
        data = handle.read(limit + 1)
    if len(data) > limit:
        raise PayloadTooLarge(f"the model is over the limit of {limit:,} bytes")
    return FetchedModel(data=data, run_id=None)
