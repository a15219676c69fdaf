"""Peak memory of serving under hostile images: sends bombs by header, images at the pixel limit,
truncated and random files to a running server and reports each worker's peak RSS (VmHWM) before and
after. Run against `./dev demo` (or any server on loopback):

    .venv/bin/python bench/serving/hostile_rss.py --url http://127.0.0.1:8000 --model demo-classifier
"""

from __future__ import annotations

import argparse
import io
import os
import random
import struct
import subprocess
import zlib

import numpy as np
import requests
from PIL import Image


def png_header(width: int, height: int) -> bytes:
    chunk = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    ihdr = struct.pack(">I", len(chunk)) + b"IHDR" + chunk + struct.pack(">I", zlib.crc32(b"IHDR" + chunk))
    return b"\x89PNG\r\n\x1a\n" + ihdr + b"\x00\x00\x00\x00IEND\xaeB`\x82"


def jpeg(width: int, height: int) -> bytes:
    buffer = io.BytesIO()
    pixels = np.random.default_rng(width).integers(0, 255, (height, width, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()


def workers() -> list[int]:
    """The server's processes: `python -m controlplane.serve` and every process under it."""
    found = subprocess.run(
        ["pgrep", "-f", "controlplane.serve"], capture_output=True, text=True
    ).stdout.split()
    pids, queue = [], [int(p) for p in found]
    while queue:
        pid = queue.pop()
        pids.append(pid)
        queue += [
            int(c)
            for c in subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout.split()
        ]
    return sorted(set(pids) - {os.getpid()})


def peak_kib(pid: int) -> int:
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", default="http://127.0.0.1:8000")
    parser.add_argument("--model", default="demo-classifier")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    if not args.url.startswith(("http://127.", "http://localhost")):
        raise SystemExit("loopback only")
    pids = workers()
    before = {pid: peak_kib(pid) for pid in pids}
    big = jpeg(6000, 6000)  # 36 MP, under the default 40 MP limit
    bodies = [png_header(100_000, 100_000), png_header(2**31 - 1, 2**31 - 1), big, big[: len(big) // 2],
              os.urandom(1 << 20), b"", jpeg(4032, 3024)]  # fmt: skip
    statuses: dict[int, int] = {}
    for _ in range(args.rounds):
        random.shuffle(bodies)
        for body in bodies:
            r = requests.post(f"{args.url}/v1/models/{args.model}/predict", data=body, timeout=120)
            statuses[r.status_code] = statuses.get(r.status_code, 0) + 1
    after = {pid: peak_kib(pid) for pid in pids}
    print(f"answers: {dict(sorted(statuses.items()))}")
    for pid in pids:
        print(f"pid {pid}: peak RSS {before[pid] / 1024:.0f} MiB before, {after[pid] / 1024:.0f} MiB after")


if __name__ == "__main__":
    main()
