import os
import sys

from django.apps import AppConfig

SERVERS = {"daphne", "uvicorn", "gunicorn", "hypercorn"}


def serving() -> bool:
    """Is this process an ASGI server (``manage.py serve``, daphne, uvicorn...)? It then runs the
    outbox relay in a thread of its own, started after setup (``outbox_relay.start``,
    docs/design.md#outbox)."""
    argv = sys.argv or [""]
    prog = os.path.basename(argv[0])
    if prog == "__main__.py":  # python -m daphne / uvicorn
        prog = os.path.basename(os.path.dirname(argv[0]))
    return prog in SERVERS or (prog == "manage.py" and argv[1:2] == ["serve"])


class RealtimeConfig(AppConfig):
    name = "django_oda_realtime"
    label = "realtime"  # the app label (tables, migrations) and the REALTIME settings stay "realtime"
    verbose_name = "Realtime"

    def ready(self) -> None:
        from . import checks, layers, metrics  # noqa: F401  (checks registers them)
        from .ops import audit
        from .ops.logging import install_redaction

        install_redaction()  # tokens out of every log, whatever the project's LOGGING
        layers.supply_default()  # CHANNEL_LAYERS from REDIS_URL when the project has none
        metrics.PREFIX  # the metrics, named with REALTIME["METRICS_PREFIX"], made here, in one thread
        from .accounts import receivers
        from .permissions import register_builtin_rooms
        from .subscriptions import register_builtin_topics

        register_builtin_rooms()
        register_builtin_topics()
        receivers.connect()
        audit.connect()
        from . import outbox, outbox_relay, worker
        from .conf import rt_settings

        # Registered only: no query here. Servers start the relay once set up (outbox_relay.start).
        worker.register("realtime.outbox", outbox.relay_job, every=rt_settings.OUTBOX_POLL_INTERVAL,
                        waker=outbox_relay.waker)
        worker.register("realtime.outbox.prune", outbox.prune_job, every=3600.0)
