"""ASGI entry point: HTTP through Django, WebSockets through the realtime add-on."""
import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "oda_realtime.settings")
django_asgi_app = get_asgi_application()

from django.conf import settings  # noqa: E402
from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler  # noqa: E402

from django_oda_realtime.routing import application_for  # noqa: E402  (needs the app registry)

if settings.SERVE_STATIC:
    django_asgi_app = ASGIStaticFilesHandler(django_asgi_app)

application = application_for(django_asgi_app)
