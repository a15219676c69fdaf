from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Export the pretrained EfficientNet-Lite0 to ONNX (fp32 + INT8), verify and measure it (needs the demo extra)."

    def add_arguments(self, parser):
        parser.add_argument("--out", default=str(settings.DEMO_MODEL_DIR))
        parser.add_argument("--force", action="store_true", help="export again even if files exist")

    def handle(self, *args, out: str, force: bool, **options):
        from serving.demo_model import build

        report = build(Path(out), progress=self.stdout.write, force=force)
        self.stdout.write(
            self.style.SUCCESS(f"fp32 vs PyTorch max abs diff {report['max_abs_diff_vs_pytorch']:.1e}")
        )
