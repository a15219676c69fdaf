"""Set the test provider's data: `python -m tests.oidc_provider.seed client ID SECRET REDIRECT_URI` registers
the control plane; `... user NAME PASSWORD GROUP...` makes (or changes) a user and sets their groups."""

import os
import sys

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.oidc_provider.settings")

import django  # noqa: E402

django.setup()

from django.contrib.auth.models import Group, User  # noqa: E402
from oauth2_provider.models import Application  # noqa: E402


def main(what: str, *args: str) -> None:
    if what == "client":
        client_id, secret, redirect_uri = args
        Application.objects.update_or_create(
            client_id=client_id,
            defaults=dict(
                name="control plane", client_secret=secret, redirect_uris=redirect_uri,
                client_type=Application.CLIENT_CONFIDENTIAL,
                authorization_grant_type=Application.GRANT_AUTHORIZATION_CODE,
                algorithm=Application.RS256_ALGORITHM, skip_authorization=True,
            ),
        )  # fmt: skip
    elif what == "user":
        name, password, *groups = args
        user, _ = User.objects.get_or_create(username=name, defaults={"email": f"{name}@example.com"})
        user.set_password(password)
        user.save()
        user.groups.set([Group.objects.get_or_create(name=g)[0] for g in groups])
    else:
        raise SystemExit(f"unknown: {what}")


if __name__ == "__main__":
    main(*sys.argv[1:])
