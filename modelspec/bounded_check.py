"""The check of a model file from outside (an upload, an import): onnx_runtime.model_check run in a child
process capped in memory and wall time, so a hostile graph exhausts the child, never the web worker.

The child is `python -m modelspec.bounded_check` (a fresh interpreter, never a fork of a threaded worker
holding onnxruntime's thread pools). It imports numpy, onnx and onnxruntime — no Django — caps its own
address space (RLIMIT_AS, which needs no privileges and no cgroup delegation, works the same in a
container, on a laptop and in CI, and makes an oversized allocation fail at once instead of after it has
filled memory), reads the file on stdin and writes one JSON answer. The parent kills it at the time limit
and always reaps it."""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import math
import os
import resource
import signal
import subprocess
import sys
import tempfile
import threading
from collections import OrderedDict
from dataclasses import asdict
from pathlib import Path
from typing import Any

from core.exceptions import ServiceUnavailable

from . import onnx_runtime
from .onnx_runtime import InvalidModel, ModelCheck

log = logging.getLogger(__name__)

CHILD_MODULE = "modelspec.bounded_check"
MAX_MESSAGE = 2000  # characters of a refusal passed on (onnx's messages can quote a whole graph)
_PASSED_KEPT = 64  # checks passed, remembered per process
_OUT_OF_MEMORY = ("failed to allocate memory", "bad_alloc", "bad allocation", "cannot allocate memory")
_CRASHES = (signal.SIGSEGV, signal.SIGBUS, signal.SIGABRT)
_PR_SET_PDEATHSIG = 1
_OUTCOMES = {"check": "passed", "refused": "refused", "out_of_memory": "out of memory"}

_passed: OrderedDict[tuple[str, str], ModelCheck] = OrderedDict()
_passed_lock = threading.Lock()


def _memory_message(memory_mb: int) -> str:
    return f"the model's check needed more than {memory_mb} MB of memory (MODEL_CHECK_MEMORY_MB)"


def _time_message(timeout_seconds: float) -> str:
    return f"the model's check took longer than {timeout_seconds:g} s (MODEL_CHECK_TIMEOUT_SECONDS)"


def model_check_bounded(
    *,
    model_bytes: bytes,
    input_size: tuple[int, int],
    layout: str,
    num_labels: int | None,
    output: str,
    memory_mb: int,
    timeout_seconds: float,
    concurrency: int = 2,
    detection: dict[str, Any] | None = None,
) -> ModelCheck:
    """onnx_runtime.model_check in a child process of at most `memory_mb` of address space that is killed
    after `timeout_seconds`; exceeding either is InvalidModel naming the limit. A file that passed with the
    same metadata and limits is not checked again in this process (the check is deterministic: one run on
    zeros), so a retried registration does not pay for a second child."""
    if not model_bytes:
        raise InvalidModel("the file is empty")  # as model_check says it, without starting a child
    spec: dict[str, Any] = {
        "input_size": list(input_size),
        "layout": layout,
        "num_labels": num_labels,
        "output": output,
        "detection": detection,
        "memory_mb": memory_mb,
        "timeout_seconds": timeout_seconds,
    }
    key = (hashlib.sha256(model_bytes).hexdigest(), json.dumps(spec, sort_keys=True))
    with _passed_lock:
        if key in _passed:
            _passed.move_to_end(key)
            return _passed[key]
    slots = _slots(concurrency)
    if not slots.acquire(timeout=timeout_seconds):
        raise ChecksBusy(
            f"{concurrency} model checks are running in this process (MODEL_CHECK_CONCURRENCY); try again",
            extra={"retry_after": 5},
        )
    try:
        answered = _child_run(model_bytes, spec)
    finally:
        slots.release()
    check = _answer_read(*answered, memory_mb=memory_mb, timeout_seconds=timeout_seconds)
    with _passed_lock:
        _passed[key] = check
        while len(_passed) > _PASSED_KEPT:
            _passed.popitem(last=False)
    return check


class ChecksBusy(ServiceUnavailable):
    code = "checks_busy"


_slot_lock = threading.Lock()
_slot_pool: tuple[int, threading.BoundedSemaphore] | None = None


def _slots(concurrency: int) -> threading.BoundedSemaphore:
    """At most `concurrency` children per process at once: each may take MODEL_CHECK_MEMORY_MB, so N
    registrations arriving together would otherwise ask N times that of the machine. A registration
    waits for a slot as long as one check may take, then gets 503 checks_busy."""
    global _slot_pool
    with _slot_lock:
        if _slot_pool is None or _slot_pool[0] != concurrency:
            _slot_pool = (concurrency, threading.BoundedSemaphore(max(1, concurrency)))
        return _slot_pool[1]


def _child_env() -> dict[str, str]:
    """Only what the interpreter needs: the worker's secrets (database, MLflow, cloud credentials) stay
    out of the process that reads the untrusted file. One thread for every maths library, as the check's
    session has."""
    root = str(Path(__file__).resolve().parent.parent)
    return {
        "PATH": os.environ.get("PATH", os.defpath),
        "PYTHONPATH": os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH")) if p),
        "LANG": "C.UTF-8",
        "OMP_NUM_THREADS": "1",
        "OPENBLAS_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
    }


def _child_run(model_bytes: bytes, spec: dict[str, Any]) -> tuple[dict[str, Any] | None, int | None, str]:
    """Start the child, hand it the file, wait at most the time limit: (its answer, its exit status, the
    end of what it logged). The status is None when it was killed at the time limit. It is reaped
    whatever happens (no zombie), and killed with its whole process group if still running (no orphan)."""
    timeout = float(spec["timeout_seconds"])
    with tempfile.TemporaryFile() as errors:  # a file, not a pipe: a chatty child cannot fill our memory
        child = subprocess.Popen(
            [sys.executable, "-m", CHILD_MODULE, json.dumps({**spec, "parent_pid": os.getpid()})],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=errors,
            env=_child_env(),
            start_new_session=True,  # its own process group, killed as one; a Ctrl-C on the server misses it
        )
        out, status = b"", None
        try:
            out, _ = child.communicate(model_bytes, timeout=timeout)
            status = child.returncode
        except subprocess.TimeoutExpired:
            pass
        finally:
            if child.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(child.pid, signal.SIGKILL)
            child.wait()
            for stream in (child.stdin, child.stdout):
                with contextlib.suppress(OSError):
                    stream.close()  # type: ignore[union-attr]
        errors.seek(max(0, errors.seek(0, os.SEEK_END) - 4000))
        logged = errors.read().decode(errors="replace")
    answer = None
    with contextlib.suppress(ValueError):
        answer = json.loads(out) if out else None
    return answer, status, logged


def _answer_read(
    answer: dict[str, Any] | None, status: int | None, logged: str, *, memory_mb: int, timeout_seconds: float
) -> ModelCheck:
    if status is None:
        raise InvalidModel(_time_message(timeout_seconds))
    if answer is not None:
        log.info(
            "model check %s; the child's peaks: %.0f MB resident, %.0f MB of address space (the cap)",
            _OUTCOMES.get(next(iter(answer)), "failed"),
            answer.get("peak_rss_mb", math.nan),
            answer.get("peak_address_space_mb", math.nan),
        )
        if "check" in answer:
            found = answer["check"]
            return ModelCheck(
                **{
                    **found,
                    "input_shape": tuple(found["input_shape"]),
                    "output_shape": tuple(found["output_shape"]),
                }
            )
        if "refused" in answer:
            raise InvalidModel(answer["refused"])
        if "out_of_memory" in answer:
            raise InvalidModel(_memory_message(memory_mb))
        raise RuntimeError(f"the model check failed: {answer.get('failed')}")
    log.warning("model check: the child ended with status %s and no answer; it logged: %s", status, logged)
    if status < 0:
        try:
            ended_by = signal.Signals(-status)
        except ValueError:  # a signal Python has no name for
            raise InvalidModel(f"the model's check was ended by signal {-status}") from None
        if ended_by == signal.SIGXCPU:  # the CPU-time backstop (below) came first
            raise InvalidModel(_time_message(timeout_seconds))
        if ended_by == signal.SIGKILL:  # the kernel's OOM killer, or a cgroup's
            raise InvalidModel(_memory_message(memory_mb))
        if ended_by in _CRASHES:
            raise InvalidModel(
                f"the model's check crashed ({ended_by.name}); most likely it needed more than {memory_mb} MB "
                "of memory (MODEL_CHECK_MEMORY_MB)"
            )
        raise InvalidModel(f"the model's check was ended by {ended_by.name}")
    if "MemoryError" in logged:  # the interpreter itself ran out, where no handler could answer
        raise InvalidModel(_memory_message(memory_mb))
    raise RuntimeError(f"the model check process failed (exit status {status}): {logged[-1000:]}")


# --- the child -----------------------------------------------------------------------------------


def _out_of_memory(exc: BaseException | None) -> bool:
    """An allocation refused under the cap: Python's MemoryError, or onnxruntime's own words for it
    (its arena's "Failed to allocate memory", a C++ std::bad_alloc), anywhere in the exception's chain."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, MemoryError) or any(words in str(exc).lower() for words in _OUT_OF_MEMORY):
            return True
        exc = exc.__cause__ or exc.__context__
    return False


def _follow_parent(parent_pid: int) -> None:
    """Die with the web worker: a worker killed mid-check (a server timeout, a deploy) leaves no check
    running on. Linux only; elsewhere the CPU-time limit still ends a busy child."""
    if sys.platform.startswith("linux"):
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent_pid:  # the parent died before prctl: nobody waits for this answer
        os._exit(1)


def _limits_set(spec: dict[str, Any]) -> None:
    address_space = int(spec["memory_mb"]) * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (address_space, address_space))
    # A backstop should the parent not kill it (it always does); CPU time, so a sleeping child is not hit.
    cpu = math.ceil(float(spec["timeout_seconds"])) + 5
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 5))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))  # no core file of a 2 GB process


def _peaks() -> dict[str, float]:
    """The child's peak resident and address-space sizes in MB (what the cap counts), for the log. Read
    from /proc: getrusage's ru_maxrss survives exec and would report the web worker's peak."""
    peaks = {}
    with contextlib.suppress(OSError), open("/proc/self/status") as status:
        for line in status:
            name, _, value = line.partition(":")
            if name in ("VmHWM", "VmPeak"):
                peaks["peak_rss_mb" if name == "VmHWM" else "peak_address_space_mb"] = (
                    int(value.split()[0]) / 1024
                )
    return peaks


def _child_main() -> None:
    answer_to = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)  # whatever a library prints goes to the log, never into the answer
    spec = json.loads(sys.argv[1])
    _follow_parent(spec["parent_pid"])
    _limits_set(spec)  # after the imports; the cap counts the idle interpreter's own ~200 MB too
    answer: dict[str, Any]
    try:
        check = onnx_runtime.model_check(
            model_bytes=sys.stdin.buffer.read(),
            input_size=tuple(spec["input_size"]),
            layout=spec["layout"],
            num_labels=spec["num_labels"],
            output=spec["output"],
            detection=spec.get("detection"),
        )
        answer = {"check": asdict(check)}
    except BaseException as exc:  # noqa: BLE001 - every ending is an answer
        if _out_of_memory(exc):
            answer = {"out_of_memory": str(exc)[:MAX_MESSAGE]}
        elif isinstance(exc, InvalidModel):
            answer = {"refused": exc.message[:MAX_MESSAGE]}
        else:
            answer = {"failed": f"{type(exc).__name__}: {exc}"[:MAX_MESSAGE]}
    answer.update(_peaks())
    answer_to.write(json.dumps(answer))
    answer_to.flush()


if __name__ == "__main__":
    _child_main()
