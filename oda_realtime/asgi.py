"""ASGI entry point: HTTP through Django, WebSockets through the realtime add-on."""
import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "oda_realtime.settings")
django_asgi_app = get_asgi_application()

from realtime.routing import application_for  # noqa: E402  (needs the app registry)

application = application_for(django_asgi_app)
