"""INT8 as a feature: "quantize this version" calibrates on the reference images and the model's stored
production inputs, checks the INT8 model against its source on every sample image and stored input
(top-1 agreement overall and where the source is confident, latency ratio measured side by side), and
registers it as a new version with that report as its run's metrics. A Celery task runs it
(tasks.run_quantization) as a background job (releases.jobs); pages and the API start it and follow its
progress."""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, Any

import numpy as np
from django.conf import settings

from core import roles
from core.exceptions import ApplicationError, BadRequest
from core.roles import Permission
from modelspec import onnx_runtime
from modelspec.cpu import host_cpu
from modelspec.metadata import ModelMetadata
from modelspec.tasks import task_for
from monitoring.collection import serving_cpu_kinds
from registry import selectors as registry_selectors
from registry import services as registry_services
from registry.evidence import AMBER, OK, Finding, VersionInfo
from registry.exceptions import TransitionRefused
from registry.models import ModelState
from serving import inference, sample_store
from serving import reference_photos as samples
from serving.preprocessing import ImageRejected

from . import jobs
from .models import QuantizationRun

if TYPE_CHECKING:
    from django.contrib.auth.models import User

QUANTIZED_FROM = "cp.quantized_from"  # the tag an INT8 version carries: the version it was made from
CONFIDENT = 0.5  # "confident": the source's top-1 probability above this
LATENCY_ROUNDS = 3


def quantization_start(*, model_name: str, version: int, actor: User) -> QuantizationRun:
    """Queue an INT8 build of `version` (the caller enqueues the task). A build already queued or running
    for the version is returned instead of a second one; an INT8 version is not quantized again."""
    roles.role_check(user=actor, permission=Permission.REGISTER, model_name=model_name)
    model = registry_selectors.model_state_get(name=model_name)
    row = registry_selectors.version_row(model=model, version=version)  # 404 for an unknown version
    source = row.info.tags.get(QUANTIZED_FROM)
    if source:
        raise TransitionRefused(f"v{version} is already the INT8 build of v{source}", code="already_int8")
    run, _ = jobs.job_start(
        QuantizationRun,
        identity={"model": model_name, "version": version},
        fields=lambda: {"started_by": actor},
    )
    return run


def quantization_latest(*, model_name: str, version: int) -> QuantizationRun | None:
    return QuantizationRun.objects.filter(model=model_name, version=version).first()


def quantization_execute(*, run_id: int) -> QuantizationRun:
    """Run a queued build (the Celery task's body); safe to run again: a finished run is left alone."""
    run, claimed = jobs.job_claim(QuantizationRun, job_id=run_id)
    if not claimed:
        return run
    try:
        result = _build_and_register(run)
    except ApplicationError as exc:
        jobs.job_failed(run, error=exc.message)
        return run
    except Exception as exc:  # noqa: BLE001 - the run says why it stopped; the worker goes on
        jobs.job_failed(run, error=f"{type(exc).__name__}: {exc}")
        return run
    jobs.job_done(run, result=result, new_version=result["new_version"], step="done")
    return run


def _inputs(run: QuantizationRun) -> list[tuple[bytes, bool]]:
    """Every sample image and up to QUANTIZE_STORED_SAMPLES stored production inputs, each with whether it
    calibrates: the reference images and the stored inputs do; all of them check the INT8 model."""
    reference = {s.name for s in samples.reference_set()}
    stored = [
        sample_store.sample_bytes(s)
        for s in sample_store.samples_for_replay(model=run.model, limit=settings.QUANTIZE_STORED_SAMPLES)
    ]
    return [(s.data, s.name in reference) for s in samples.sample_set()] + [(data, True) for data in stored]


def _build_and_register(run: QuantizationRun) -> dict[str, Any]:
    """Load the source, prepare every image once, quantize, compare, register; each a step of the run."""
    actor = run.started_by
    if actor is None:
        raise TransitionRefused("the account that asked for this build is gone", code="no_actor")
    jobs.job_progress(run, step="loading the source version")
    fp32 = registry_selectors.version_file(name=run.model, version=run.version)
    metadata = registry_selectors.version_metadata(name=run.model, version=run.version)
    prepared = _prepare(run, metadata, _inputs(run))
    calibration = [tensor for tensor, calibrates in prepared if calibrates]
    evaluation = [tensor for tensor, _ in prepared]
    int8 = _quantize(run, fp32, calibration, head_in_float=task_for(metadata).named_outputs)
    jobs.job_progress(
        run, step="comparing INT8 with the source image by image, then timing both", total=len(evaluation)
    )
    report = onnx_runtime.agreement_report(
        fp32, int8, evaluation, confident=CONFIDENT, rounds=LATENCY_ROUNDS, metadata=metadata,
        progress=lambda done: jobs.job_progress(run, done=done, every=8),
    )  # fmt: skip
    jobs.job_progress(run, step="registering the INT8 version")
    new_version = _register(run, actor, metadata, int8, report, calibrated=len(calibration))
    return {
        "new_version": new_version,
        "method": onnx_runtime.INT8_METHOD,
        "calibration_images": len(calibration),
        "images": report.images,
        "agreement": report.agreement,
        "agreement_name": task_for(metadata).agreement_name,
        "confident_images": report.confident,
        "agreement_confident": report.agreement_confident,
        "latency_ms": {"source": report.source_ms, "int8": report.int8_ms},
        "latency_ratio": report.latency_ratio,
        "bytes": {"source": len(fp32), "int8": len(int8)},
        "sha256": hashlib.sha256(int8).hexdigest(),
        "cpu": host_cpu(),  # INT8 pays with VNNI or AMX: the ratio above holds on CPUs of this kind
    }


def _prepare(
    run: QuantizationRun, metadata: ModelMetadata, images: list[tuple[bytes, bool]]
) -> list[tuple[np.ndarray, bool]]:
    """Each image as the version's input tensor, prepared once for both calibration and comparison."""
    jobs.job_progress(run, step="preparing the images", total=len(images))
    prepared: list[tuple[np.ndarray, bool]] = []
    for data, calibrates in images:
        try:
            prepared.append((inference.prepare_input(data, metadata).tensor, calibrates))
        except (ImageRejected, BadRequest):
            pass  # a stored input this version cannot read is neither calibration data nor evidence
        jobs.job_progress(run, done=run.done + 1, every=8)
    return prepared


def _quantize(
    run: QuantizationRun, fp32: bytes, calibration: list[np.ndarray], *, head_in_float: bool
) -> bytes:
    """The INT8 model, its progress the layers whose bias has been corrected; a detector's decoding and
    suppression stay in float (onnx_runtime.quantize_int8)."""
    # Calibration reports nothing while it runs: no count (total 0), so the bar shows work without a
    # measure, until the layer-by-layer bias correction counts its layers.
    jobs.job_progress(
        run, step="quantizing: calibrating on the images, then correcting each layer's bias", total=0
    )

    def corrected(done: int, total: int) -> None:
        jobs.job_progress(
            run,
            done=done,
            total=total,
            step="quantizing: correcting each layer's bias" if done == 1 else None,
        )

    int8 = onnx_runtime.quantize_int8(fp32, calibration, progress=corrected, head_in_float=head_in_float)
    jobs.job_progress(run, done=run.total)  # a model without convolutions to correct
    return int8


def _register(
    run: QuantizationRun,
    actor: User,
    metadata: ModelMetadata,
    int8: bytes,
    report: onnx_runtime.AgreementReport,
    *,
    calibrated: int,
) -> int:
    """Register the INT8 build as a new version: tagged with its source, its report as the run's metrics
    (int8_top1_agreement for a classifier, int8_box_f1 for a detector)."""
    task = task_for(metadata)
    key = "box_f1" if task.named_outputs else "top1_agreement"
    registered = registry_services.version_register(
        model_name=run.model,
        actor=actor,
        metadata=metadata,
        onnx_file=int8,
        description=(
            f"INT8 of v{run.version} ({onnx_runtime.INT8_METHOD}): {task.agreement_name.lower()} "
            f"{report.agreement:.1%} on {report.images} images ({report.agreement_confident:.1%} on the "
            f"{report.confident} the source is confident about), latency ×{report.latency_ratio:.2f}"
        ),
        tags={
            QUANTIZED_FROM: str(run.version),
            "cp.quantization": onnx_runtime.INT8_METHOD,
            "cp.measured_on_cpu": str(host_cpu()["kind"]),
        },
        params={"quantized_from": str(run.version), "quantization": onnx_runtime.INT8_METHOD},
        metrics={
            f"int8_{key}": report.agreement,
            f"int8_{key}_confident": report.agreement_confident,
            "int8_latency_ratio": report.latency_ratio,
            "int8_evaluated_images": float(report.images),
            "int8_calibration_images": float(calibrated),
        },
    )
    return registered.version.version


def quantization_findings(model: ModelState, version: int, info: VersionInfo | None = None) -> list[Finding]:
    """An INT8 version's build as approval evidence (registry.evidence provider): amber when it was measured
    slower than its source, or on a CPU of another kind than the serving hosts' (INT8 pays with VNNI or
    AMX; on AVX2 alone it can answer slower than fp32: modelspec/cpu.py). `info`: the version as the
    evidence read it — its tags say whether it is an INT8 build, so MLflow is asked at most for its run."""
    if info is not None and not info.tags.get(QUANTIZED_FROM):
        return []
    try:
        info, run = registry_selectors.version_with_run(name=model.name, version=version, info=info)
    except ApplicationError:
        return []
    source = info.tags.get(QUANTIZED_FROM)
    if not source:
        return []
    metrics = run.metrics if run else {}
    ratio = metrics.get("int8_latency_ratio")
    measured_on = info.tags.get("cp.measured_on_cpu", "")
    serving = serving_cpu_kinds()
    agreement = metrics.get("int8_box_f1", metrics.get("int8_top1_agreement"))
    told = f"INT8 of v{source}" + (f", agreement {agreement:.1%}" if agreement is not None else "")
    problems = []
    if ratio is not None and ratio > 1:
        problems.append(f"measured ×{ratio:.2f} the latency of v{source}: slower than its source")
    if measured_on and measured_on not in serving:
        problems.append(
            f"measured on a {measured_on} CPU; the serving hosts are {', '.join(serving)}, where the ratio may "
            "not hold (INT8 pays with VNNI or AMX)"
        )
    if problems:
        return [Finding("int8", "INT8 build", AMBER, f"{told}; " + "; ".join(problems), numbers=metrics)]
    speed = f", latency ×{ratio:.2f} on a {measured_on or 'unrecorded'} CPU" if ratio is not None else ""
    return [Finding("int8", "INT8 build", OK, told + speed, numbers=metrics)]
