"""The ASGI application in one line of your ``asgi.py`` (docs/install.md).

``realtime_application(django_app)`` wraps Django's HTTP application: ``/ws/`` (native protocol) and
``/socket.io/`` (Socket.IO 4: WebSocket and long polling) through the JWT middleware to the add-on's
consumers, everything else to ``django_app``. ``get_asgi_application()`` is Django's own followed by
that, for an ``asgi.py`` that has nothing else to wire. Both need the app registry: call them after
``DJANGO_SETTINGS_MODULE`` is set, as startproject's ``asgi.py`` does.
"""
import django.core.asgi


def realtime_application(django_app, *, websocket_urlpatterns=(), serve_static: bool | None = None):
    """Django's ``django_app`` with the add-on's sockets in front.

    ``websocket_urlpatterns``: your own consumers (matched before the add-on's fallback; ``/ws/``
    and ``/socket.io/`` stay the add-on's). ``serve_static``: serve ``/static/`` from the apps
    (``ASGIStaticFilesHandler``); default: when ``DEBUG`` is on and staticfiles is installed, as
    ``runserver`` does. This project's ``SERVE_STATIC`` setting decides when set.
    """
    from django.apps import apps
    from django.conf import settings

    from .ops.logging import install_redaction
    from .routing import application_for

    # get_asgi_application() ran django.setup() again: LOGGING was applied anew (new handlers, without
    # the filter ready() gave the first ones), the apps were not made ready again.
    install_redaction()
    if serve_static is None:
        serve_static = getattr(settings, "SERVE_STATIC", settings.DEBUG)
    if serve_static and apps.is_installed("django.contrib.staticfiles"):
        from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler

        django_app = ASGIStaticFilesHandler(django_app)
    return application_for(django_app, extra_websocket_urlpatterns=websocket_urlpatterns)


def get_asgi_application(**options):
    """``django.core.asgi.get_asgi_application()`` with the add-on's sockets (``realtime_application``)."""
    return realtime_application(django.core.asgi.get_asgi_application(), **options)
