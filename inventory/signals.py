"""Domain signals of the inventory, sent by ``services`` with explicit kwargs.

``level_changed(sender=InventoryLevel, level, kind, previous_available,
previous_reserved, previous_threshold, reason, user)``: a level's numbers changed
(one send per change, whatever wrote it: a service or a plain ``save()``).
``reservation_changed(sender=Reservation, reservation, action, user)``: a
reservation was created, released, expired or fulfilled.
"""
from django.dispatch import Signal

level_changed = Signal()
reservation_changed = Signal()
