from django.apps import AppConfig


class ServingConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "serving"

    def ready(self) -> None:
        from registry.hooks import stage_listener

        from .shadow import stage_changed

        # A shadow stops by itself when its version leaves staging and canary (serving/shadow.py).
        stage_listener(stage_changed)
