from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand

from registry.demo import DEMO_PASSWORDS, demo_registry, demo_users


class Command(BaseCommand):
    help = (
        "Create one demo user per role and the demo models: the real EfficientNet-Lite0 (exported on first "
        "run; needs the demo extra) and a tiny CIFAR-style classifier, walked through the workflow."
    )

    def add_arguments(self, parser):
        parser.add_argument("--tiny-only", action="store_true", help="skip the real model (no torch needed)")

    def handle(self, *args, tiny_only: bool = False, **options):
        users = demo_users()
        for line in demo_registry(users):
            self.stdout.write(f"  {line}")
        if not tiny_only:
            self._real_model(users)
        from monitoring.alerts import monitoring_defaults_ensure
        from registry.models import ModelState

        for name in ModelState.objects.values_list("name", flat=True):
            monitoring_defaults_ensure(model_name=name)
        self.stdout.write("  canary plans and drift alert rules in place (edit them in /admin/)")
        self.stdout.write(self.style.SUCCESS("\nDemo users (username / password / API token):"))
        for role, (user, token) in users.items():
            self.stdout.write(f"  {user.username:<9} {DEMO_PASSWORDS[role]:<22} {token}")

    def _real_model(self, users):
        try:
            import torch  # noqa: F401
        except ImportError:
            self.stdout.write(
                self.style.WARNING(
                    "torch is not installed (pip install -e '.[demo]'): only the tiny demo model is set up"
                )
            )
            return
        from serving.demo_model import build, register_demo

        out_dir = Path(settings.VAR_DIR) / "demo-model"
        report = build(out_dir, progress=self.stdout.write)
        register_demo(users, report, out_dir, progress=self.stdout.write)
