"""The image's entry point: `python -m controlplane.container ROLE [ARGS…]` becomes the role's process
(exec), so that process is PID 1 and handles SIGTERM itself (granian and Celery both shut down gracefully
on it: requests and tasks in flight finish).

Roles:
  web, serving   the server (controlplane.serve) on 0.0.0.0:$PORT; one image, two deployments — the web
                 one for the dashboard and API, the serving one scaled for predictions
  worker         a Celery worker ($CELERY_CONCURRENCY processes, default 2)
  beat           Celery beat: exactly one per installation
  migrate        the database migrations (a one-shot job before a rollout)
  demo-setup     demo users and models, the demo model from the image
  check          the health check: exit 0 when /readyz on $PORT answers 200 (a real inference on every
                 live production version); `check --live` asks /healthz (the process answers at all)
"""

from __future__ import annotations

import os
import sys
import urllib.error
import urllib.request


def _check(argv: list[str]) -> int:
    path = "/healthz" if "--live" in argv else "/readyz"
    url = f"http://127.0.0.1:{os.environ.get('PORT', '8000')}{path}"
    try:
        with urllib.request.urlopen(
            url, timeout=float(os.environ.get("CHECK_TIMEOUT_SECONDS", "4"))
        ) as answer:
            return 0 if answer.status == 200 else 1
    except (urllib.error.URLError, OSError) as exc:
        print(f"{path}: {exc}", file=sys.stderr)
        return 1


def command(role: str, args: list[str]) -> list[str]:
    python = sys.executable
    var = os.environ.get("CONTROLPLANE_VAR_DIR", "/var/lib/controlplane")
    server = [
        python,
        "-m",
        "controlplane.serve",
        "--host",
        "0.0.0.0",
        "--port",
        os.environ.get("PORT", "8000"),
    ]
    celery = [python, "-m", "celery", "-A", "controlplane"]
    commands = {
        "web": server,
        "serving": server,
        "worker": [
            *celery,
            "worker",
            "--loglevel",
            "INFO",
            "--concurrency",
            os.environ.get("CELERY_CONCURRENCY", "2"),
        ],
        "beat": [*celery, "beat", "--loglevel", "INFO", "--schedule", f"{var}/celerybeat-schedule"],
        "migrate": [python, "manage.py", "migrate", "--noinput"],
        "demo-setup": [python, "manage.py", "demo_setup"],
    }
    if role not in commands:
        raise SystemExit(f"unknown role {role!r}; one of: {', '.join([*commands, 'check'])}")
    return [*commands[role], *args]


def main(argv: list[str]) -> None:
    role, args = (argv[0], argv[1:]) if argv else ("web", [])
    if role == "check":
        raise SystemExit(_check(args))
    argv_ = command(role, args)
    os.execv(argv_[0], argv_)


if __name__ == "__main__":
    main(sys.argv[1:])
