from django.core.management.base import BaseCommand

from registry import selectors, services


class Command(BaseCommand):
    help = "Compare recorded stages with MLflow aliases; --fix points MLflow back at what the history says."

    def add_arguments(self, parser):
        parser.add_argument("--fix", action="store_true")

    def handle(self, *args, fix: bool = False, **options):
        for model in selectors.model_state_list():
            diffs = services.model_reconcile(model_name=model.name, fix=fix)
            for d in diffs:
                verb = "fixed" if fix else "differs"
                self.stdout.write(f"{model.name} {d.stage}: ours v{d.ours} mlflow v{d.mlflow} ({verb})")
            if not diffs:
                self.stdout.write(f"{model.name}: in agreement")
