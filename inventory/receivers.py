"""Signals -> events: each receiver builds plain data and makes one ``publish`` call.

``pre_save``/``post_save`` of a level route plain saves (admin, shell) to
``services.record_plain_save``, so they emit exactly like service writes.
"""
from django.db.models.signals import post_save, pre_save
from django.dispatch import receiver

from django_oda_realtime import publish

from . import events, services, signals
from .models import InventoryLevel, Reservation

NUMBERS = ("available", "reserved", "low_stock_threshold")


@receiver(pre_save, sender=InventoryLevel, dispatch_uid="inventory.level_pre_save")
def remember_previous(sender, instance: InventoryLevel, raw=False, **kwargs) -> None:
    """Read the stored numbers before a plain save, for the event's previous values."""
    if raw or instance.pk is None:
        instance._rt_previous = None
        return
    row = InventoryLevel.objects.filter(pk=instance.pk).values_list(*NUMBERS).first()
    instance._rt_previous = services.Previous(*row) if row else None


@receiver(post_save, sender=InventoryLevel, dispatch_uid="inventory.level_post_save")
def level_saved(sender, instance: InventoryLevel, created=False, raw=False, **kwargs) -> None:
    if raw:
        return  # fixtures: no events
    if any(hasattr(getattr(instance, name), "resolve_expression") for name in NUMBERS):
        instance.refresh_from_db(fields=list(NUMBERS))  # saved with F(): the instance holds an expression
    previous = None if created else getattr(instance, "_rt_previous", None)
    services.record_plain_save(
        instance, previous, user=getattr(instance, "_changed_by", None), reason=getattr(instance, "_change_reason", "")
    )
    instance._rt_previous = None


@receiver(signals.level_changed, dispatch_uid="inventory.publish_updated")
def publish_updated(sender, level, kind, previous_available, previous_reserved, reason, user, **kwargs) -> None:
    data = events.updated_payload(
        level, kind=kind, previous_available=previous_available, previous_reserved=previous_reserved,
        reason=reason, user_id=getattr(user, "pk", None),
    )
    publish(events.INVENTORY_UPDATED, data, events.level_rooms(level.item, level.location_id))


@receiver(signals.level_changed, dispatch_uid="inventory.publish_low_stock")
def publish_low_stock(sender, level, previous_available, previous_reserved, previous_threshold, **kwargs) -> None:
    if not events.crossed_low_stock(previous_available - previous_reserved, previous_threshold,
                                    level.available - level.reserved, level.low_stock_threshold):
        return
    publish(events.INVENTORY_LOW_STOCK, events.low_stock_payload(level), events.level_rooms(level.item, level.location_id))


@receiver(signals.reservation_changed, sender=Reservation, dispatch_uid="inventory.publish_reservation")
def publish_reservation(sender, reservation, action, **kwargs) -> None:
    publish(events.INVENTORY_RESERVATION, events.reservation_payload(reservation, action),
            events.level_rooms(reservation.item, reservation.location_id))
