"""The WSGI application: Django, with raw-body predict requests answered in front of it
(serving.endpoints.PredictFastPath)."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "controlplane.settings")
django_application = get_wsgi_application()

from serving.endpoints import PredictFastPath  # noqa: E402 - needs Django set up

application = PredictFastPath(django_application)
