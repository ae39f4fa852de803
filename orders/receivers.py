"""``order_changed`` -> one ``order:updated`` to ``orders:all`` and ``orders:customer:{id}``.

``post_save`` of an order routes every save (service, admin, shell, Shopify) to
``services.record_save``, so each change is one event whatever wrote it.
"""
from django.db.models.signals import post_save
from django.dispatch import receiver

from django_oda_realtime import publish

from . import events, services, signals
from .models import Order


@receiver(post_save, sender=Order, dispatch_uid="orders.order_saved")
def order_saved(sender, instance: Order, created=False, raw=False, **kwargs) -> None:
    if raw:
        return  # fixtures: no events
    services.record_save(instance, created=created)


@receiver(signals.order_changed, dispatch_uid="orders.publish_updated")
def publish_updated(sender, order, changes, user, note, created, **kwargs) -> None:
    data = events.updated_payload(order, changes, user_id=getattr(user, "pk", None), note=note, created=created)
    publish(events.ORDER_UPDATED, data, events.order_rooms(order))
