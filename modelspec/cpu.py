"""The CPU's instruction sets that decide what INT8 is worth: onnxruntime's INT8 kernels pay off with
VNNI (AVX-512 VNNI, AVX-VNNI) or AMX; on AVX2 alone an INT8 model can answer slower than its fp32 source
(measured here: 0.49× the fp32 latency on a VNNI host, 1.12× on an AVX2-only one)."""

from __future__ import annotations

import functools
import platform
from collections.abc import Mapping
from pathlib import Path

# /proc/cpuinfo flag → the name we report
FLAGS = {"avx2": "avx2", "avx512f": "avx512", "avx512_vnni": "vnni", "avx_vnni": "vnni", "amx_int8": "amx"}
KINDS = ("avx2", "avx512", "vnni", "amx")


@functools.cache
def host_cpu() -> dict[str, object]:
    """{"model": …, "avx2": bool, "avx512": bool, "vnni": bool, "amx": bool, "kind": "vnni" | …}."""
    model, flags = platform.processor(), set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name" and not model:
                model = value.strip()
            elif key.strip() == "flags":
                flags = set(value.split())
                break
    except OSError:
        pass
    found = {name: False for name in KINDS}
    for flag, name in FLAGS.items():
        if flag in flags:
            found[name] = True
    return {"model": model[:200], **found, "kind": kind(found)}


def kind(found: Mapping[str, object]) -> str:
    """The best INT8 path the CPU has: "amx", "vnni", "avx512", "avx2" or "other"."""
    for name in ("amx", "vnni", "avx512", "avx2"):
        if found.get(name):
            return name
    return "other"
