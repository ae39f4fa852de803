"""Oda Realtime: live, authenticated events over WebSocket for Django.

``publish(event, data, rooms)`` from sync code, ``await apublish(...)`` from async;
``Broadcast(Model, event=..., payload=..., rooms=...)`` in ``ready()`` for model changes
(docs/extending.md).
"""
__version__ = "0.9.0"

from .broadcast import Broadcast, Change
from .events import Event
from .publish import apublish, publish

__all__ = ["publish", "apublish", "Event", "Broadcast", "Change"]
