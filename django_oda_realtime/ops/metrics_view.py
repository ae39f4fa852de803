"""``GET /metrics``: this process's Prometheus metrics, for staff or a bearer token.

Per-process, not prometheus-client's multiprocess mode: every daphne process keeps
its own registry in memory and answers for itself, so a deployment with several
processes scrapes each one (one target per process; Prometheus adds ``instance``).
See docs/observability.md.

Who may read: an active staff user's session (the Django admin login), or
``Authorization: Bearer <REALTIME["METRICS_TOKEN"]>`` compared in constant time.
No credentials: 401 with ``WWW-Authenticate``; wrong credentials: 403.
"""
import hmac
import os

from django.http import HttpRequest, HttpResponse
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest

from .. import metrics
from ..conf import rt_settings
from ..server.headers import bearer

UNAUTHORIZED, FORBIDDEN = 401, 403


def _bearer(request: HttpRequest) -> str | None:
    """The bearer token of the request, "" for another scheme, None without the header."""
    header = request.headers.get("Authorization")
    if header is None:
        return None
    return bearer(header) or ""


def token_matches(given: str, expected: str | None) -> bool:
    """True if ``given`` equals the configured token; an unset or empty token never matches."""
    if not expected or not given:
        return False
    return hmac.compare_digest(given.encode("utf-8"), str(expected).encode("utf-8"))


def metrics_access(request: HttpRequest) -> int | None:
    """None if the request may read the metrics, else the HTTP status to answer."""
    token = _bearer(request)
    if token is not None:
        return None if token_matches(token, rt_settings.METRICS_TOKEN) else FORBIDDEN
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return UNAUTHORIZED
    return None if (user.is_active and user.is_staff) else FORBIDDEN


def metrics_view(request: HttpRequest) -> HttpResponse:
    """The Prometheus text exposition of this process's registry."""
    status = metrics_access(request)
    if status is not None:
        response = HttpResponse(
            "Authentication required\n" if status == UNAUTHORIZED else "Forbidden\n",
            status=status, content_type="text/plain; charset=utf-8",
        )
        if status == UNAUTHORIZED:
            response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    response = HttpResponse(generate_latest(REGISTRY), content_type=CONTENT_TYPE_LATEST)
    response["Cache-Control"] = "no-store"
    return response


def _values(metric, sample_name: str) -> dict[str, float]:
    """``{first label value: sample value}`` of one metric's samples named ``sample_name``."""
    out: dict[str, float] = {}
    for family in metric.collect():
        for sample in family.samples:
            if sample.name == sample_name:
                key = next(iter(sample.labels.values()), "")
                out[key] = out.get(key, 0) + sample.value
    return out


def snapshot() -> dict:
    """This process's live numbers as JSON-ready data (for the staff dashboard)."""
    connections = {k: int(v) for k, v in _values(metrics.CONNECTIONS, metrics.PREFIX + "connections").items()}
    return {
        "pid": os.getpid(),
        "connections": connections,
        "connectionsTotal": sum(connections.values()),
        "subscriptions": {
            k: int(v) for k, v in _values(metrics.SUBSCRIPTIONS, metrics.PREFIX + "subscriptions").items() if v
        },
        "eventsReceived": _values(metrics.EVENTS_RECEIVED, metrics.PREFIX + "events_received_total"),
        "eventsPublished": _values(metrics.PUBLISHED, metrics.PREFIX + "events_published_total"),
        "deliveries": _values(metrics.DELIVERIES, metrics.PREFIX + "deliveries_total"),
    }


__all__ = ["metrics_view", "metrics_access", "token_matches", "snapshot"]
