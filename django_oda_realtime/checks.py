"""System checks of the add-on (``manage.py check``; docs/install.md, *Checks*).

realtime.E001  ``REALTIME`` is not a dict
realtime.E002  an unknown ``REALTIME`` key (with the closest known name)
realtime.E003  a ``REALTIME`` value of the wrong type or out of range
realtime.E010  ``CHANNEL_LAYERS`` set without a ``default`` layer: every socket would close (4012)
realtime.W011  (``--deploy``) the in-memory channel layer: one process only, ``manage.py shell`` and
               workers publish to nobody; set ``REDIS_URL``
realtime.W020  the logout view is routed but ``rest_framework_simplejwt.token_blacklist`` is not
               installed: logout still revokes every token of the user, but rotated refresh
               tokens (``BLACKLIST_AFTER_ROTATION``) are not blacklisted

The add-on's views name their authentication classes themselves (JWT first), so they do not depend
on DRF's ``DEFAULT_AUTHENTICATION_CLASSES``.
"""
from difflib import get_close_matches
import ipaddress
import numbers
import re

from django.conf import settings
from django.core.checks import Error, Tags, Warning, register

from .conf import DEFAULTS
from .isolation import PREFIX_RE

METRIC_PREFIX_RE = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")
# Settings that may be None (off / derived) besides their type.
OPTIONAL = {"PRESENCE_REDIS_URL", "PRESENCE_PREFIX", "REDIS_PREFIX", "METRICS_TOKEN",
            "SOCKETIO_MAX_PENDING_PER_ADDRESS", "SOCKETIO_MAX_PENDING"}
OPTIONAL_INT = {"SOCKETIO_MAX_PENDING_PER_ADDRESS", "SOCKETIO_MAX_PENDING"}
# Whole numbers for which 0 makes no sense (RESUME_MAX_BUFFERED 0 would close every resume that sees one live event).
AT_LEAST_ONE = {"RESUME_MAX_BUFFERED", "REDIS_POOL_SIZE"}  # 0 would mean "no limit" to redis-py


def _problem(name: str, value) -> str | None:
    """Why ``value`` is not valid for ``name``, or None."""
    default = DEFAULTS[name]
    if value is None and name in OPTIONAL:
        return None
    if name in OPTIONAL_INT or (isinstance(default, int) and not isinstance(default, bool)):
        least = 1 if name in AT_LEAST_ONE else 0
        if isinstance(value, bool) or not isinstance(value, int) or value < least:
            return f"a whole number >= {least}"
    elif isinstance(default, bool):
        if not isinstance(value, bool):
            return "True or False"
    elif isinstance(default, float):
        if isinstance(value, bool) or not isinstance(value, numbers.Real) or value < 0:
            return "a number of seconds >= 0"
    elif name == "TRUSTED_PROXIES":
        items = value.split(",") if isinstance(value, str) else value
        if not isinstance(items, (list, tuple)):
            return "a list of addresses or networks"
        try:
            for item in items:
                if str(item).strip():
                    ipaddress.ip_network(str(item).strip(), strict=False)
        except ValueError as e:
            return f"a list of addresses or networks ({e})"
    elif isinstance(default, list):
        if not isinstance(value, (list, tuple)) or not all(isinstance(item, str) for item in value):
            return "a list of strings"
    elif name == "REDIS_PREFIX":
        if not isinstance(value, str) or not PREFIX_RE.match(value):
            return "1-40 characters of [A-Za-z0-9._-]"
    elif name == "METRICS_PREFIX":
        if not isinstance(value, str) or not (value == "" or METRIC_PREFIX_RE.match(value)):
            return "a Prometheus name prefix ([a-zA-Z_:][a-zA-Z0-9_:]*)"
    elif not isinstance(value, str) or (name == "BROADCAST_ROOM" and not value):
        return "a non-empty string" if name == "BROADCAST_ROOM" else "a string"
    return None


@register(Tags.compatibility)
def check_settings(app_configs=None, **kwargs):
    user = getattr(settings, "REALTIME", {})
    if user is None:
        return []
    if not isinstance(user, dict):
        return [Error(f"REALTIME must be a dict, not {type(user).__name__}.", id="realtime.E001")]
    messages = []
    for name, value in user.items():
        if name not in DEFAULTS:
            close = get_close_matches(str(name), DEFAULTS, n=1)
            messages.append(Error(
                f"Unknown REALTIME setting {name!r}.",
                hint=f"Did you mean {close[0]!r}?" if close else "See docs/install.md for the settings.",
                id="realtime.E002"))
            continue
        expected = _problem(name, value)
        if expected:
            messages.append(Error(f"REALTIME[{name!r}] must be {expected}, not {value!r}.", id="realtime.E003"))
    return messages


def _default_layer() -> dict | None:
    layers = getattr(settings, "CHANNEL_LAYERS", None)
    return layers.get("default") if isinstance(layers, dict) else None


@register(Tags.compatibility)
def check_channel_layer(app_configs=None, **kwargs):
    if _default_layer() is None:
        return [Error(
            "CHANNEL_LAYERS has no 'default' layer: every socket of the add-on would be closed (4012).",
            hint="Remove CHANNEL_LAYERS to get the add-on's default (REDIS_URL, else in memory), or add a "
                 "'default' entry.",
            id="realtime.E010")]
    return []


@register(Tags.compatibility, deploy=True)
def check_channel_layer_deploy(app_configs=None, **kwargs):
    from .layers import IN_MEMORY

    layer = _default_layer()
    if layer and layer.get("BACKEND") == IN_MEMORY and not settings.DEBUG:
        return [Warning(
            "The in-memory channel layer serves one process only: events published by other processes "
            "(manage.py shell, workers, a second server) reach no socket.",
            hint="Set REDIS_URL (and install django-oda-realtime[redis]) or configure CHANNEL_LAYERS.",
            id="realtime.W011")]
    return []


def _routes_view(resolver, view_class) -> bool:
    for pattern in resolver.url_patterns:
        if hasattr(pattern, "url_patterns"):
            if _routes_view(pattern, view_class):
                return True
        elif getattr(pattern.callback, "view_class", None) is view_class:
            return True
    return False


@register(Tags.urls)
def check_logout_blacklist(app_configs=None, **kwargs):
    from django.apps import apps
    from django.urls import get_resolver

    from .accounts.views import LogoutView

    if apps.is_installed("rest_framework_simplejwt.token_blacklist") or not _routes_view(get_resolver(), LogoutView):
        return []
    return [Warning(
        "The logout view is routed but rest_framework_simplejwt.token_blacklist is not installed: logout "
        "revokes the user's tokens, but refresh tokens are not blacklisted after rotation.",
        hint='Add "rest_framework_simplejwt.token_blacklist" to INSTALLED_APPS and migrate.',
        id="realtime.W020")]
