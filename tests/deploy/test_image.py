"""The image (deploy/Dockerfile), run for real with podman: migrations and demo data from the baked model
(nothing downloaded), the server as PID 1 and not root, a health check that runs an inference, a real
photo answered, memory under the documented limit and the limit enforced, SIGTERM handled gracefully.
`./dev test` builds the image first (deploy/image build)."""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

import pytest
import requests

from tests.helpers import free_port
from tests.processes import ROOT, wait_for

pytestmark = [pytest.mark.slow, pytest.mark.image]

IMAGE = os.environ.get("CVCP_IMAGE", "localhost/cv-controlplane:latest")
MEMORY_LIMIT = "1g"  # docs/deploy.md, "Sizing": one serving container with the demo model's three versions
MEMORY_LIMIT_BYTES = 1024**3


def podman(*args: str, check: bool = True, timeout: float = 600) -> subprocess.CompletedProcess:
    done = subprocess.run(  # from a folder of its own: conmon leaves an "oom" file in its working directory
        [str(ROOT / "deploy" / "image"), "podman", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=tempfile.gettempdir(),
    )
    if check:
        assert done.returncode == 0, f"podman {' '.join(args)}: {done.stderr[-2000:]}"
    return done


@pytest.fixture(scope="module")
def image() -> str:
    if shutil.which("podman") is None:
        pytest.skip("podman is not installed (./dev test installs it and builds the image)")
    if podman("image", "exists", IMAGE, check=False).returncode != 0:
        pytest.fail(f"{IMAGE} is not built: run deploy/image build (./dev test does)")
    return IMAGE


@pytest.fixture
def state(tmp_path) -> Path:
    """The volume: owned by the image's user, as an orchestrator's fsGroup would make it."""
    folder = tmp_path / "state"
    folder.mkdir()
    os.chown(folder, 10001, 10001)
    return folder


def env_args(state: Path) -> list[str]:
    env = {
        "SECRET_KEY": "image-test-" + uuid.uuid4().hex,
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "CELERY_BROKER_URL": "sqla+sqlite:////var/lib/controlplane/broker.sqlite3",
    }
    return ["-v", f"{state}:/var/lib/controlplane:Z", *[f"--env={k}={v}" for k, v in env.items()]]


def cat_photo() -> bytes:
    from serving.reference_photos import base_photos

    buffer = io.BytesIO()
    base_photos()["chelsea"].save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()


def rss_bytes(container: str) -> int:
    """The resident memory of every process in the container, summed."""
    out = podman("exec", container, "sh", "-c", "cat /proc/[0-9]*/status").stdout
    return sum(int(kb) * 1024 for kb in re.findall(r"^VmRSS:\s+(\d+) kB", out, flags=re.M))


def test_the_image_serves_the_baked_model_within_its_memory_limit(image, state):
    setup = podman("run", "--rm", "--network=none", *env_args(state), image, "migrate")
    assert "Applying registry" in setup.stdout
    demo = podman("run", "--rm", "--network=none", *env_args(state), image, "demo-setup")
    assert "reusing the exported demo model in /opt/demo-model" in demo.stdout, demo.stdout[-2000:]

    name, port = f"cvcp-test-{uuid.uuid4().hex[:8]}", free_port()
    podman(
        "run", "-d", "--name", name, f"--memory={MEMORY_LIMIT}", "--memory-swap", MEMORY_LIMIT,
        "-p", f"127.0.0.1:{port}:8000", *env_args(state), image,
    )  # fmt: skip
    try:
        wait_for(  # the entry point became the server: PID 1, so SIGTERM reaches it
            lambda: "controlplane.serve" in podman("exec", name, "cat", "/proc/1/cmdline").stdout,
            timeout=30,
            what="the server is PID 1",
        )
        assert podman("exec", name, "id", "-u").stdout.strip() == "10001"
        # The image's HEALTHCHECK (a real inference through /readyz) turns healthy.
        wait_for(
            lambda: podman("healthcheck", "run", name, check=False).returncode == 0,
            timeout=120,
            what="the container's health check passed",
            interval=2,
        )
        ready = requests.get(f"http://127.0.0.1:{port}/readyz", timeout=10).json()
        assert ready["status"] == "ready" and ready["models"]["imagenet-effnet-lite0"]["ready"]

        photo = cat_photo()
        answers = [
            requests.post(
                f"http://127.0.0.1:{port}/v1/models/imagenet-effnet-lite0/predict?stage=production",
                data=photo,
                headers={"Content-Type": "image/jpeg"},
                timeout=30,
            )
            for _ in range(20)
        ]
        assert {a.status_code for a in answers} == {200}
        answer = answers[0].json()
        assert "cat" in answer["label"] and answer["model_version"] == 2, answer

        used = rss_bytes(name)
        stats = json.loads(podman("inspect", name).stdout)[0]
        assert stats["HostConfig"]["Memory"] == MEMORY_LIMIT_BYTES
        assert used < 0.8 * MEMORY_LIMIT_BYTES, f"RSS {used / 2**20:.0f} MiB of {MEMORY_LIMIT}"
        print(f"\nimage: RSS {used / 2**20:.0f} MiB under a {MEMORY_LIMIT} limit")

        # SIGTERM (podman stop) ends the server gracefully, well before podman's kill.
        started = time.monotonic()
        podman("stop", "--time", "30", name)
        took = time.monotonic() - started
        state_ = json.loads(podman("inspect", name).stdout)[0]["State"]
        assert took < 15 and state_["ExitCode"] == 0, (took, state_)
    finally:
        podman("rm", "-f", name, check=False)


def test_the_memory_limit_is_enforced(image):
    """A process inside a container run with --memory that allocates past it is killed (137)."""
    over = podman(
        "run", "--rm", "--network=none", "--memory=256m", "--memory-swap=256m", "--entrypoint", "python", image,
        "-c", "b = bytearray(600 * 2**20); b[::4096] = b'x' * len(b[::4096]); print('survived')",
        check=False,
    )  # fmt: skip
    assert over.returncode == 137 and "survived" not in over.stdout, (over.returncode, over.stderr[-500:])
