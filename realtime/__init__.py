"""Oda Realtime: live, authenticated events over WebSocket for Django.

``publish(event, data, rooms)`` from sync code, ``await apublish(...)`` from async.
"""
from .events import Event
from .publish import apublish, publish

__all__ = ["publish", "apublish", "Event"]
