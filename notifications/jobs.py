"""The notifications' jobs in the one background worker (docs/notifications.md, *Worker jobs*)."""
from django_oda_realtime import worker


def register() -> None:
    from . import inbox, webpush

    worker.register("notifications.webpush", webpush.deliver_due, every=1.0)
    worker.register("notifications.prune", inbox.prune, every=3600.0)
