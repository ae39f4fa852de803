"""Security-relevant events in the log (docs/observability.md): failed logins, with the username
tried and the client's address (``clientaddr``), never the password.

Django sends ``user_login_failed`` from ``authenticate()`` for every login path: the JWT login
(``/api/auth/token/``), the admin, DRF's session login.
"""
import logging

from django.contrib.auth import get_user_model
from django.contrib.auth.signals import user_login_failed

from ..server.clientaddr import request_address

logger = logging.getLogger("realtime.audit")
MAX_USERNAME = 150  # Django's own limit; a longer "username" is logged cut short


def on_login_failed(sender, credentials: dict, request=None, **kwargs) -> None:
    username = credentials.get(get_user_model().USERNAME_FIELD)
    username = str(username)[:MAX_USERNAME] if username is not None else None
    client = request_address(request) if request is not None and hasattr(request, "META") else None
    logger.warning("Login failed for %r from %s", username, client or "-",
                   extra={"action": "login_failed", "username": username, "client": client})


def connect() -> None:
    user_login_failed.connect(on_login_failed, dispatch_uid="django_oda_realtime.ops.audit.login_failed")


__all__ = ["connect", "on_login_failed"]
