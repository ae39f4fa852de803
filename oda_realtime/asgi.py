"""ASGI entry point: HTTP through Django, WebSockets through the realtime add-on."""
import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "oda_realtime.settings")
django_asgi_app = get_asgi_application()

from django_oda_realtime.asgi import realtime_application  # noqa: E402  (needs the app registry)

# /static/ served by the process when SERVE_STATIC (settings.py).
application = realtime_application(django_asgi_app)
