"""Domain signals of orders, sent by ``services`` with explicit kwargs.

``order_changed(sender=Order, order, changes, user, note, created)``: ``changes`` maps
each changed field (``status``, ``payment_status``, ``fulfillment_status``) to
``(old, new)``; a new order has ``created=True`` and ``old`` None.
"""
from django.dispatch import Signal

order_changed = Signal()
