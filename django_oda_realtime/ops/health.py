"""``GET /healthz`` (the process answers) and ``GET /readyz`` (its database and channel layer do).

``/readyz`` runs both checks at once, each bounded by ``REALTIME["HEALTH_TIMEOUT"]``:

- database: ``SELECT 1`` on the default connection;
- channel layer: a message sent to a probe channel and received back (a real round
  trip through Redis with channels-redis), and the process's hub not failing.

200 ``{"status": "ok", "checks": {...}}`` or 503 with ``"failing": [names]`` and
each failing check's reason (an exception class name, never a URL or secret);
503 ``"draining"`` from the moment the process begins its shutdown drain.
The probe channel is made once per layer and event loop and reused: on the pub/sub
layer every new channel is a Redis subscription, which a probe every few seconds
must not leak.
"""
import asyncio
import uuid
import weakref

from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from django.db import connection
from django.http import HttpRequest, JsonResponse

from ..conf import rt_settings
from ..exceptions import HubNotReceiving, NoChannelLayer
from ..hub import current_hub
from ..server import drain

PROBE_PREFIX = "realtime-ready."
OK = "ok"


def healthz(request: HttpRequest) -> JsonResponse:
    """The process is up and serving HTTP."""
    return JsonResponse({"status": OK})


def _select_one() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()


async def check_database() -> None:
    await sync_to_async(_select_one)()


class _Probe:
    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.lock = asyncio.Lock()
        self.channel: str | None = None


_probes: "weakref.WeakKeyDictionary[object, _Probe]" = weakref.WeakKeyDictionary()


async def check_channel_layer() -> None:
    """Raise unless a message makes the round trip through the channel layer."""
    layer = get_channel_layer()
    if layer is None:
        raise NoChannelLayer()
    loop = asyncio.get_running_loop()
    probe = _probes.get(layer)
    if probe is None or probe.loop is not loop:
        probe = _probes[layer] = _Probe(loop)
    async with probe.lock:
        try:
            if probe.channel is None:
                probe.channel = await layer.new_channel(prefix=PROBE_PREFIX)
            nonce = uuid.uuid4().hex
            await layer.send(probe.channel, {"type": "realtime.ready", "nonce": nonce})
            while (await layer.receive(probe.channel)).get("nonce") != nonce:
                pass  # a reply to an earlier probe that timed out
        except BaseException:
            probe.channel = None  # a cancelled receive may have dropped the subscription
            raise
    hub = current_hub()
    if hub is not None and not hub.healthy:
        raise HubNotReceiving()


CHECKS = {"database": check_database, "channel_layer": check_channel_layer}


async def _run(check) -> str:
    try:
        async with asyncio.timeout(rt_settings.HEALTH_TIMEOUT):
            await check()
    except TimeoutError:
        return "timeout"
    except Exception as e:
        return f"error: {type(e).__name__}"
    return OK


async def readyz(request: HttpRequest) -> JsonResponse:
    """200 when the database and the channel layer answer, else 503 naming what failed.

    A draining process (SIGTERM, django_oda_realtime/server/drain.py) answers 503 ``draining`` at once, without checks.
    """
    if drain.is_draining():
        return JsonResponse({"status": "draining", "failing": ["draining"], "checks": {}}, status=503)
    results = await asyncio.gather(*(_run(check) for check in CHECKS.values()))
    checks = dict(zip(CHECKS, results))
    failing = [name for name, result in checks.items() if result != OK]
    if failing:
        return JsonResponse({"status": "unavailable", "failing": failing, "checks": checks}, status=503)
    return JsonResponse({"status": OK, "checks": checks})


__all__ = ["healthz", "readyz", "check_database", "check_channel_layer"]
