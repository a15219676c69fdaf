from django.apps import AppConfig


class CoreConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "core"
    verbose_name = "Access: teams and model ownership"

    def ready(self) -> None:
        from django.conf import settings

        from .oidc import role_map_parse

        role_map_parse(settings.OIDC_ROLE_MAP)  # a wrong OIDC_ROLE_MAP stops the start, not a sign-in
