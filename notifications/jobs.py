"""The notifications' jobs in the one background worker (docs/notifications.md, *Worker jobs*)."""
import importlib.util

# The worker is moving from the top-level ``worker`` package to ``realtime.worker``: the one line to
# switch once it has (both expose ``register(name, fn, *, every)``).
worker = importlib.import_module("realtime.worker" if importlib.util.find_spec("realtime.worker") else "worker")


def register() -> None:
    from . import inbox, webpush

    worker.register("notifications.webpush", webpush.deliver_due, every=1.0)
    worker.register("notifications.prune", inbox.prune, every=3600.0)
