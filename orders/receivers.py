"""``order_changed`` -> one ``order:updated`` to ``orders:all`` and ``orders:customer:{id}``."""
from django.dispatch import receiver

from realtime import publish

from . import events, signals


@receiver(signals.order_changed, dispatch_uid="orders.publish_updated")
def publish_updated(sender, order, changes, user, note, created, **kwargs) -> None:
    data = events.updated_payload(order, changes, user_id=getattr(user, "pk", None), note=note, created=created)
    publish(events.ORDER_UPDATED, data, events.order_rooms(order))
