"""The client's address, for per-address limits and logs: the peer, or behind trusted proxies
the nearest address in ``X-Forwarded-For`` that is not one of them.

``REALTIME["TRUSTED_PROXIES"]`` lists the proxies' addresses or networks (``["127.0.0.1",
"10.0.0.0/8"]``; the environment's ``REALTIME_TRUSTED_PROXIES`` may be a comma-separated string).
Empty (the default): the header is ignored, since any client can send it. The header is read
right to left and only while each hop is trusted, so a client that sends ``X-Forwarded-For:
6.6.6.6`` through the proxy is still seen at its own address (docs/security.md).
"""
from functools import lru_cache
import ipaddress

from ..conf import rt_settings
from .headers import header_values

UNKNOWN = "unknown"


@lru_cache(maxsize=8)
def _networks(spec: tuple[str, ...]) -> tuple:
    return tuple(ipaddress.ip_network(item, strict=False) for item in spec)


def trusted_networks() -> tuple:
    """The ``TRUSTED_PROXIES`` setting as networks (ValueError names a malformed entry)."""
    value = rt_settings.TRUSTED_PROXIES or ()
    if isinstance(value, str):
        value = value.split(",")
    return _networks(tuple(item.strip() for item in value if str(item).strip()))


def _is_trusted(address: str, networks: tuple) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in net for net in networks)


def resolve(peer: str | None, forwarded_for: list[str]) -> str:
    """The client address from the TCP peer and the ``X-Forwarded-For`` header values, in order."""
    address = peer or UNKNOWN
    networks = trusted_networks()
    if not networks or not _is_trusted(address, networks):
        return address
    hops = [hop.strip() for value in forwarded_for for hop in value.split(",") if hop.strip()]
    for hop in reversed(hops):
        try:
            ipaddress.ip_address(hop)
        except ValueError:
            return address  # a malformed hop: nothing left of it can be believed
        address = hop
        if not _is_trusted(hop, networks):
            return hop
    return address


def client_address(scope: dict) -> str:
    """The client address of an ASGI scope (HTTP or WebSocket)."""
    client = scope.get("client")
    peer = client[0] if client else None
    forwarded = header_values(scope, b"x-forwarded-for")
    return resolve(peer, forwarded)


def request_address(request) -> str:
    """The client address of a Django request."""
    header = request.META.get("HTTP_X_FORWARDED_FOR")
    return resolve(request.META.get("REMOTE_ADDR"), [header] if header else [])


__all__ = ["client_address", "request_address", "resolve", "trusted_networks"]
