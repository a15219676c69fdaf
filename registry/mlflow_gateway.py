"""The only module that talks to MLflow: small verbs returning frozen dataclasses, errors translated once."""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import os
import posixpath
import re
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import NamedTuple

from django.conf import settings

from core.exceptions import ApplicationError, BadRequest, NotFound, PayloadTooLarge, ServiceUnavailable

# A stopped tracking server must fail a request in seconds, not after minutes of back-off.
os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "1")
os.environ.setdefault("MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", "1")
os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "5")

import mlflow  # noqa: E402
import mlflow.onnx  # noqa: E402
import requests  # noqa: E402
from mlflow import MlflowClient  # noqa: E402
from mlflow.entities import (  # noqa: E402
    Dataset,
    DatasetInput,
    FileInfo,  # noqa: E402
    Run,
    ViewType,
)
from mlflow.entities.model_registry import ModelVersion  # noqa: E402
from mlflow.exceptions import MlflowException  # noqa: E402
from mlflow.store.artifact.artifact_repo import ArtifactRepository  # noqa: E402
from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository  # noqa: E402
from prometheus_client import Counter  # noqa: E402
from sqlalchemy.exc import SQLAlchemyError  # noqa: E402

log = logging.getLogger(__name__)

MODEL_ARTIFACT_PATH = "model"
METADATA_FILE = "controlplane.json"
TAG_PREFIX = "cp."
RUN_ID_RE = re.compile(r"[0-9a-f]{32}")  # MLflow's run ids: what may go into a search filter


class RegistryUnavailable(ServiceUnavailable):
    code = "registry_unavailable"


@dataclass(frozen=True)
class VersionInfo:
    name: str
    version: int
    source: str
    run_id: str | None
    status: str
    created: datetime | None
    description: str
    tags: dict[str, str] = field(default_factory=dict)
    aliases: tuple[str, ...] = ()

    @property
    def registered_by(self) -> str:
        return self.tags.get(f"{TAG_PREFIX}registered_by", "")

    @property
    def source_run_id(self) -> str:
        return self.tags.get(f"{TAG_PREFIX}source_run_id", "") or (self.run_id or "")

    @property
    def user_tags(self) -> dict[str, str]:
        return {k: v for k, v in self.tags.items() if not k.startswith(TAG_PREFIX)}

    @property
    def contract_tags(self) -> dict[str, str]:
        """Our own tags (the searchable part of the preprocessing metadata, checks), without the prefix."""
        return {k[len(TAG_PREFIX) :]: v for k, v in self.tags.items() if k.startswith(TAG_PREFIX)}


class DatasetRef(NamedTuple):
    name: str
    digest: str


@dataclass(frozen=True)
class RunInfo:
    run_id: str
    run_name: str
    params: dict[str, str]
    metrics: dict[str, float]
    datasets: tuple[DatasetRef, ...]
    started: datetime | None
    experiment_id: str = ""


@contextlib.contextmanager
def _translated(what: str) -> Iterator[None]:
    """Map MLflow's errors onto ours: missing → 404, bad value → 400, anything else → 503."""
    try:
        yield
    except ApplicationError:
        raise
    except FileNotFoundError as exc:
        raise NotFound(f"{what}: no such artifact") from exc
    except MlflowException as exc:
        code = getattr(exc, "error_code", "")
        if code == "RESOURCE_DOES_NOT_EXIST":
            raise NotFound(f"{what}: not found in the MLflow registry") from exc
        if code in {"INVALID_PARAMETER_VALUE", "RESOURCE_ALREADY_EXISTS"}:
            raise BadRequest(f"{what}: MLflow refused it: {exc.message}") from exc
        log.warning("MLflow failed during %s: %s", what, exc)
        raise RegistryUnavailable(
            f"The MLflow registry is unavailable ({what} failed). Nothing was changed; try again shortly."
        ) from exc
    except (OSError, requests.RequestException, SQLAlchemyError) as exc:  # refused, timed out, broken store
        log.warning("MLflow failed during %s: %r", what, exc)
        raise RegistryUnavailable(
            f"The MLflow registry is unavailable ({what} failed). Nothing was changed; try again shortly."
        ) from exc


calls = Counter(
    "cvcp_mlflow_calls",
    "Requests this process made to MLflow, by operation (what a page or job costs the registry)",
    ("operation",),
)


def _count(operation: str) -> None:
    calls.labels(operation=operation).inc()


def calls_made() -> float:
    """Requests this process has made to MLflow so far, every operation together (what a page costs:
    read before and after it)."""
    return sum(s.value for metric in calls.collect() for s in metric.samples if s.name.endswith("_total"))


@functools.cache
def _client_for(tracking_uri: str, registry_uri: str) -> MlflowClient:
    return MlflowClient(tracking_uri=tracking_uri, registry_uri=registry_uri)


def client() -> MlflowClient:
    return _client_for(settings.MLFLOW_TRACKING_URI, settings.MLFLOW_REGISTRY_URI)


def _ts(millis: int | None) -> datetime | None:
    return datetime.fromtimestamp(millis / 1000, tz=UTC) if millis else None


def _version_info(mv: ModelVersion) -> VersionInfo:
    return VersionInfo(
        name=mv.name,
        version=int(mv.version),
        source=mv.source or "",
        run_id=mv.run_id or None,
        status=str(mv.status or ""),
        created=_ts(mv.creation_timestamp),
        description=mv.description or "",
        tags=dict(mv.tags or {}),
        aliases=tuple(sorted(mv.aliases or ())),
    )


def model_ensure(*, name: str, description: str = "") -> None:
    with _translated(f"creating model {name!r}"):
        try:
            client().get_registered_model(name)
        except MlflowException as exc:
            if getattr(exc, "error_code", "") != "RESOURCE_DOES_NOT_EXIST":
                raise
            client().create_registered_model(name, description=description or None)


def alias_map(*, name: str) -> dict[str, int]:
    """Alias → version. A missing alias is absent here; MLflow answers a lookup of one with a generic error."""
    with _translated(f"reading model {name!r}"):
        _count("get_registered_model")
        model = client().get_registered_model(name)
    return {alias: int(version) for alias, version in (model.aliases or {}).items()}


def version_get(*, name: str, version: int) -> VersionInfo:
    with _translated(f"reading {name} v{version}"):
        _count("get_model_version")
        return _version_info(client().get_model_version(name, str(version)))


def version_list(*, name: str) -> list[VersionInfo]:
    """Every version, newest first, with its aliases (MLflow's search leaves them out)."""
    with _translated(f"listing versions of {name!r}"):
        _count("search_model_versions")
        found = client().search_model_versions(f"name = '{name}'", max_results=10000)
    by_version: dict[int, list[str]] = {}
    for alias, version in alias_map(name=name).items():
        by_version.setdefault(version, []).append(alias)
    versions = [
        replace(info, aliases=tuple(sorted(by_version.get(info.version, ()))))
        for info in map(_version_info, found)
    ]
    return sorted(versions, key=lambda v: v.version, reverse=True)


def models_with_tag(*, key: str, value: str | None = None) -> set[str]:
    """The models with a version tagged `key` (= `value` when given). The caller checks key and value
    (registry.selectors.model_search): MLflow's filter is a string, so they must not carry quotes."""
    query = f"tags.`{key}` = '{value}'" if value is not None else f"tags.`{key}` LIKE '%'"
    with _translated(f"searching versions tagged {key!r}"):
        _count("search_model_versions")
        return {mv.name for mv in client().search_model_versions(query, max_results=10000)}


def aliases_apply(*, name: str, changes: dict[str, int | None]) -> None:
    """Point each alias at a version (None removes it). If one step fails, undo the steps already done."""
    with _translated(f"moving aliases of {name!r}"):
        before = client().get_registered_model(name).aliases or {}
    done: list[str] = []
    try:
        with _translated(f"moving aliases of {name!r}"):
            for alias, version in changes.items():
                if version is None:
                    if alias in before:
                        client().delete_registered_model_alias(name, alias)
                else:
                    client().set_registered_model_alias(name, alias, str(version))
                done.append(alias)
    except RegistryUnavailable:
        for alias in reversed(done):
            with contextlib.suppress(Exception):
                if alias in before:
                    client().set_registered_model_alias(name, alias, str(before[alias]))
                else:
                    client().delete_registered_model_alias(name, alias)
        raise


RUNS_PER_SEARCH = 100  # run ids per search request (each one is a term of the filter)


def runs_get(*, run_ids: list[str]) -> dict[str, RunInfo]:
    """Several runs in one search per RUNS_PER_SEARCH ids (a model page with 50 versions makes one request,
    not 50), whichever experiments they belong to; a run MLflow no longer has is left out."""
    wanted = sorted({run_id for run_id in run_ids if RUN_ID_RE.fullmatch(run_id)})
    if not wanted:
        return {}
    found: dict[str, RunInfo] = {}
    with _translated("reading the versions' runs"):
        _count("search_experiments")
        experiments = [e.experiment_id for e in client().search_experiments(view_type=ViewType.ALL)]
        for start in range(0, len(wanted), RUNS_PER_SEARCH):
            chunk = wanted[start : start + RUNS_PER_SEARCH]
            _count("search_runs")
            runs = client().search_runs(
                experiment_ids=experiments,
                filter_string="attributes.run_id IN ({})".format(", ".join(f"'{r}'" for r in chunk)),
                run_view_type=ViewType.ALL,
                max_results=len(chunk),
            )
            found.update((run.info.run_id, _run_info(run)) for run in runs)
    return found


def _run_info(run: Run) -> RunInfo:
    inputs = getattr(run, "inputs", None)
    datasets = tuple(
        DatasetRef(di.dataset.name, di.dataset.digest) for di in (inputs.dataset_inputs if inputs else [])
    )
    return RunInfo(
        run_id=run.info.run_id,
        run_name=run.info.run_name or "",
        params=dict(run.data.params),
        metrics=dict(run.data.metrics),
        datasets=datasets,
        started=_ts(run.info.start_time),
        experiment_id=str(run.info.experiment_id or ""),
    )


def _experiment_id(model_name: str) -> str:
    exp_name = f"{settings.MLFLOW_EXPERIMENT_PREFIX}/{model_name}"
    exp = client().get_experiment_by_name(exp_name)
    if exp is not None:
        return exp.experiment_id
    location = None
    if settings.MLFLOW_TRACKING_URI.startswith(("sqlite:", "file:", "/")):
        location = Path(settings.MLFLOW_ARTIFACT_ROOT, model_name).resolve().as_uri()
    return client().create_experiment(exp_name, artifact_location=location)


def version_update(*, name: str, version: int, description: str | None, tags: dict[str, str | None]) -> None:
    """A version's description and its own tags (a None value deletes the tag)."""
    with _translated(f"updating {name} v{version}"):
        if description is not None:
            _count("update_model_version")
            client().update_model_version(name, str(version), description=description)
        for key, value in tags.items():
            if value is None:
                _count("delete_model_version_tag")
                client().delete_model_version_tag(name, str(version), key)
            else:
                _count("set_model_version_tag")
                client().set_model_version_tag(name, str(version), key, value)


def version_create(
    *,
    name: str,
    onnx_bytes: bytes,
    metadata: dict,
    tags: dict[str, str],
    params: dict[str, str] | None = None,
    metrics: dict[str, float] | None = None,
    dataset: tuple[str, str] | None = None,
    description: str = "",
) -> VersionInfo:
    """Log the ONNX file as an MLflow onnx-flavour model in a registration run and register it."""
    import onnx

    with _translated(f"registering a version of {name!r}"):
        model_ensure(name=name)
        c = client()
        run = c.create_run(_experiment_id(name), run_name=f"register-{name}")
        run_id = run.info.run_id
        try:
            for key, value in (params or {}).items():
                c.log_param(run_id, key, value)
            for metric, number in (metrics or {}).items():
                c.log_metric(run_id, metric, float(number))
            if dataset:
                ds = Dataset(name=dataset[0], digest=dataset[1], source_type="external", source="{}")
                c.log_inputs(run_id, datasets=[DatasetInput(dataset=ds, tags=[])])
            with tempfile.TemporaryDirectory() as tmp:
                model_dir = Path(tmp, MODEL_ARTIFACT_PATH)
                mlflow.onnx.save_model(
                    onnx.load_from_string(onnx_bytes),
                    str(model_dir),
                    metadata={"controlplane": metadata},
                    pip_requirements=[],
                    save_as_external_data=False,
                )
                (model_dir / METADATA_FILE).write_text(json.dumps(metadata, indent=2))
                c.log_artifacts(run_id, str(model_dir), MODEL_ARTIFACT_PATH)
            c.set_terminated(run_id)
            source = f"{run.info.artifact_uri}/{MODEL_ARTIFACT_PATH}"
            mv = c.create_model_version(
                name, source, run_id=run_id, tags=tags, description=description or None
            )
        except Exception:
            with contextlib.suppress(Exception):
                c.delete_run(run_id)
            raise
        return _version_info(mv)


def version_metadata(*, name: str, version: int) -> dict:
    """The preprocessing metadata stored next to the weights."""
    return metadata_of(version_get(name=name, version=version))


def metadata_of(info: VersionInfo) -> dict:
    """The preprocessing metadata of a version already read (no second registry round trip)."""
    with (
        _translated(f"reading metadata of {info.name} v{info.version}"),
        tempfile.TemporaryDirectory() as tmp,
    ):
        path = mlflow.artifacts.download_artifacts(
            artifact_uri=f"{info.source}/{METADATA_FILE}",
            dst_path=tmp,
            tracking_uri=settings.MLFLOW_TRACKING_URI,
            registry_uri=settings.MLFLOW_REGISTRY_URI,
        )
        return json.loads(Path(path).read_text())


def version_onnx_bytes(*, name: str, version: int) -> bytes:
    """The weights of one of our versions, as serving loads them."""
    with _translated(f"reading {name} v{version}"):
        root = client().get_model_version_download_uri(name, str(version))
    try:
        return _onnx_read(root, "", what=f"{name} v{version}").data
    except (NotFound, BadRequest) as exc:  # the registry has the version, its file is gone: the store's
        raise RegistryUnavailable(  # fault, not the caller's
            f"{name} v{version}: its model file is missing from the artifact store ({exc.message})"
        ) from exc


@dataclass(frozen=True)
class FetchedModel:
    data: bytes
    run_id: str | None  # the MLflow run that logged it, when the source names one: its lineage


_MODELS_URI = re.compile(
    r"^models:/(?P<name>[^/@]+)(?:/(?P<version>[0-9]{1,9})|@(?P<alias>[A-Za-z0-9_-]{1,255}))(?P<path>/.*)?$"
)
_RUNS_URI = re.compile(r"^runs:/(?P<run_id>[0-9a-fA-F]{8,64})(?P<path>/.*)?$")
MAX_LISTED = 1000  # artifacts looked at when a source names a folder


def model_file_fetch(*, uri: str, max_bytes: int) -> FetchedModel:
    """One .onnx file (or a folder holding exactly one) from an MLflow URI, read from the configured
    tracking and registry stores only, never more than max_bytes: runs:/<run>/<path>,
    models:/<name>/<version>[/path], models:/<name>@<alias>[/path], or an artifact URI MLflow reads
    itself (mlflow-artifacts:/, object stores). Which URIs a caller may give is registry.sources' rule."""
    run_id: str | None = None
    path = ""
    with _translated(f"reading {uri}"):
        if found := _MODELS_URI.match(uri):
            c = client()
            if found["version"]:
                mv = c.get_model_version(found["name"], found["version"])
            else:
                aliases = c.get_registered_model(found["name"]).aliases or {}
                if found["alias"] not in aliases:
                    raise NotFound(f"{uri}: model {found['name']!r} has no alias {found['alias']!r}")
                mv = c.get_model_version(found["name"], str(aliases[found["alias"]]))
            root, run_id = c.get_model_version_download_uri(mv.name, mv.version), mv.run_id or None
            path = (found["path"] or "").strip("/")
        elif found := _RUNS_URI.match(uri):
            run_id = client().get_run(found["run_id"]).info.run_id
            root, path = f"runs:/{run_id}", (found["path"] or "").strip("/")
        else:
            root = uri
    fetched = _onnx_read(root, path, what=uri, max_bytes=max_bytes)
    return FetchedModel(data=fetched.data, run_id=run_id)


def _onnx_read(root: str, path: str, *, what: str, max_bytes: int | None = None) -> FetchedModel:
    """Find the one .onnx file at `path` under an artifact root (the file itself, or the only one in that
    folder), check its listed size, then download that file alone and read it, bounded."""
    with _translated(f"reading {what}"):
        try:
            repo = get_artifact_repository(
                root, tracking_uri=settings.MLFLOW_TRACKING_URI, registry_uri=settings.MLFLOW_REGISTRY_URI
            )
        except (ImportError, ValueError, TypeError) as exc:  # a scheme this MLflow cannot read
            raise BadRequest(f"{what}: MLflow cannot read this location ({exc})") from exc
        file = _one_onnx(repo, path, what=what)
        if max_bytes is not None and file.file_size is not None and file.file_size > max_bytes:
            raise PayloadTooLarge(f"{what}: the model is over the limit of {max_bytes:,} bytes")
        with tempfile.TemporaryDirectory() as tmp:
            local = Path(repo.download_artifacts(file.path, dst_path=tmp))
            with local.open("rb") as handle:
                data = handle.read() if max_bytes is None else handle.read(max_bytes + 1)
    if max_bytes is not None and len(data) > max_bytes:
        raise PayloadTooLarge(f"{what}: the model is over the limit of {max_bytes:,} bytes")
    return FetchedModel(data=data, run_id=None)


def _one_onnx(repo: ArtifactRepository, path: str, *, what: str) -> FileInfo:
    if path.endswith(".onnx"):
        parent = posixpath.dirname(path)
        for info in repo.list_artifacts(parent or None):
            if info.path == path and not info.is_dir:
                return info
        raise NotFound(f"{what}: no such artifact")
    found: list[FileInfo] = []
    folders, listed = [path], 0
    while folders:
        for info in repo.list_artifacts(folders.pop() or None):
            listed += 1
            if listed > MAX_LISTED:
                raise BadRequest(f"{what} holds more than {MAX_LISTED} artifacts; point at the .onnx file")
            if info.is_dir:
                folders.append(info.path)
            elif info.path.endswith(".onnx"):
                found.append(info)
    if len(found) != 1:
        raise BadRequest(f"{what} holds {len(found)} .onnx files; point at exactly one")
    return found[0]
