"""The HTTP access log and request ids of ``manage.py serve`` (issue #17; docs/observability.md).

``AccessLogMiddleware`` (ASGI, HTTP only) gives each request an id: the incoming
``X-Request-ID`` when it is a plausible id (1-128 characters of ``[A-Za-z0-9._:-]``,
e.g. set by the proxy), else a new one; it is echoed in the response's ``X-Request-ID``,
set in ``request_id`` (a context variable: ``RequestContextFilter`` adds it to every log
record written while the request runs) and written on the request's access log line,
a log record of ``realtime.access`` with ``method``, ``path`` (never the query string),
``status``, ``bytes``, ``duration_ms`` and ``client`` (``clientaddr``: behind trusted
proxies, the client's own address). With ``LOG_FORMAT=json`` it is one JSON line like
every other.

daphne's own access log (``serving.PathOnlyAccessLog``) then only reports WebSockets.
"""
from contextvars import ContextVar
import logging
import re
import time
import uuid

from asgiref.sync import markcoroutinefunction

from .clientaddr import client_address

logger = logging.getLogger("realtime.access")

request_id: ContextVar[str | None] = ContextVar("request_id", default=None)
_VALID_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
HEADER = b"x-request-id"


def incoming_request_id(scope: dict) -> str | None:
    """The request's own ``X-Request-ID`` if it is a plausible id, else None."""
    for name, value in scope.get("headers", ()):
        if name.lower() == HEADER:
            text = value.decode("latin-1")
            return text if _VALID_ID.fullmatch(text) else None
    return None


class AccessLogMiddleware:
    """ASGI middleware: request id and one access log record per HTTP request (module docstring)."""

    def __init__(self, app) -> None:
        self.app = app

    @markcoroutinefunction  # an ASGI 3 application: it returns a coroutine (as routing.ProtocolRouter)
    def __call__(self, scope, receive, send):
        if scope.get("type") != "http":
            return self.app(scope, receive, send)
        return self._http(scope, receive, send)

    async def _http(self, scope, receive, send) -> None:
        rid = incoming_request_id(scope) or uuid.uuid4().hex
        token = request_id.set(rid)
        started = time.monotonic()
        response = {"status": None, "bytes": 0}

        async def send_with_id(message):
            if message["type"] == "http.response.start":
                response["status"] = message["status"]
                headers = [(k, v) for k, v in message.get("headers", ()) if k.lower() != HEADER]
                message = {**message, "headers": [*headers, (HEADER, rid.encode())]}
            elif message["type"] == "http.response.body":
                response["bytes"] += len(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            status = response["status"]
            method, path = scope.get("method", "-"), scope.get("path", "")
            duration = round((time.monotonic() - started) * 1000, 1)
            client = client_address(scope)
            logger.info('%s "%s %s" %s %d %.1fms', client, method, path, status or "-", response["bytes"], duration,
                        extra={"action": "http", "request_id": rid, "client": client, "method": method, "path": path,
                               "status": status, "bytes": response["bytes"], "duration_ms": duration})
            request_id.reset(token)


class RequestContextFilter(logging.Filter):
    """Adds ``request_id`` to a record written while an HTTP request runs (unless it has one)."""

    def filter(self, record: logging.LogRecord) -> bool:
        rid = request_id.get()
        if rid is not None and not hasattr(record, "request_id"):
            record.request_id = rid
        return True


__all__ = ["AccessLogMiddleware", "RequestContextFilter", "request_id", "incoming_request_id"]
