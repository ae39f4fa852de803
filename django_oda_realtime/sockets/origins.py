"""Which browser origins may open a socket: full origins, not just host names.

channels' ``AllowedHostsOriginValidator`` compares host names only (docs/design.md#origins:
``https://localhost`` passed on a plain-http server). Here an origin is allowed
when its scheme, host and port equal those of an entry of
``REALTIME["ALLOWED_ORIGINS"]`` or of the request's own host (same-origin).
``Origin: null`` and malformed origins are refused. A request without an
``Origin`` header is not from a browser and is allowed (tokens still apply).
"""
from urllib.parse import urlsplit

from ..conf import rt_settings
from ..server.headers import header, header_values

DEFAULT_PORTS = {"http": 80, "https": 443, "ws": 80, "wss": 443}


def parse_origin(value: str) -> tuple[str, str, int] | None:
    """(scheme, host, port) of an origin, or None if it is not a well-formed origin."""
    try:
        parts = urlsplit(value.strip())
        port = parts.port
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return None
    if parts.path not in ("", "/") or parts.query or parts.fragment or parts.username:
        return None
    return parts.scheme, parts.hostname.lower(), port or DEFAULT_PORTS[parts.scheme]


def _same_host(origin: tuple[str, str, int], scope: dict) -> bool:
    host = header(scope, b"host")
    if not host:
        return False
    secure = scope.get("scheme") in ("wss", "https")
    own = parse_origin(("https://" if secure else "http://") + host)
    return own is not None and own == origin


def origin_allowed(scope: dict) -> bool:
    """True if the socket's Origin header (if any) is allowed."""
    values = header_values(scope, b"origin")
    if not values:
        return True
    if len(values) > 1:
        return False
    allowed = rt_settings.ALLOWED_ORIGINS
    if "*" in allowed and values[0] != "null":
        return True
    origin = parse_origin(values[0])
    if origin is None:
        return False
    if _same_host(origin, scope):
        return True
    return any(parse_origin(entry) == origin for entry in allowed)
