"""``publish()``: the one way any code sends an event to rooms.

The event is encoded once, here, and written to the transactional outbox
(django_oda_realtime/outbox.py, docs/design.md#outbox) in the caller's transaction: inside
``atomic`` with the change that caused it, outside one in a transaction of its own.
It is sent after commit (by the committing process at once, else by the relay); a
rolled-back transaction sends nothing. Without the outbox (``OUTBOX`` off, or the
database unusable here) it is sent after commit through ``on_commit``, or at once
outside a transaction. ``apublish`` (async code, not tied to a database change)
sends at once.
A channel-layer failure (Redis down or hung) never reaches the caller: the send
is bounded by ``PUBLISH_TIMEOUT``, logged loudly and counted, and the database
write that caused it stands.

From async code use ``await apublish(...)``; ``publish`` works in any sync code:
views, signal receivers, management commands, workers sharing the channel layer.
"""
import asyncio
from functools import partial
import logging
import uuid

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction

from . import metrics, outbox
from .conf import rt_settings
from .events import LAYER_CONTROL, LAYER_PROBE, Event
from .rooms import group_for

logger = logging.getLogger("realtime.publish")

def _build(event: str, data: object, rooms, type: str | None) -> Event:
    if isinstance(rooms, str):
        rooms = [rooms]
    rooms = list(dict.fromkeys(rooms))
    if not rooms:
        raise ValueError("publish() needs at least one room")
    for room in rooms:
        group_for(room)  # raises ValueError for a malformed room
    return Event.build(event, data, rooms, type=type)


async def _send_to_rooms(message: dict, rooms, name: str) -> bool:
    """Send a layer message to the groups of ``rooms`` (once per group), bounded in time; never raises."""
    layer = get_channel_layer()
    try:
        async with asyncio.timeout(rt_settings.PUBLISH_TIMEOUT):
            for group in dict.fromkeys(group_for(room) for room in rooms):
                try:
                    await layer.group_send(group, message)
                except Exception:
                    # Once more, within the same time bound: after a Redis restart each pooled
                    # connection fails once ("Connection closed by server") though Redis is back.
                    # A duplicate is harmless: hubs drop events and control messages seen by id.
                    await layer.group_send(group, message)
    except Exception as e:
        metrics.PUBLISH_FAILURES.labels(name).inc()
        logger.error("Publishing %s failed: %s", name, type(e).__name__)
        return False
    metrics.PUBLISHED.labels(name).inc()
    return True


async def _send(event: Event) -> bool:
    """Append ``event`` to the history and send it to its rooms with its position (one Redis script
    on the pub/sub layer, docs/design.md#history); bounded in time, once retried, never raises."""
    from .history import make_history

    history = make_history()
    try:
        async with asyncio.timeout(rt_settings.PUBLISH_TIMEOUT):
            try:
                event.position = await history.publish(event)
            except Exception:
                # Once more, within the same time bound (see ``_send_to_rooms``): the append is
                # idempotent by event id, so a retry never gets a second position.
                event.position = await history.publish(event)
    except Exception as e:
        metrics.PUBLISH_FAILURES.labels(event.name).inc()
        logger.error("Publishing %s failed: %s", event.name, type(e).__name__)
        return False
    metrics.PUBLISHED.labels(event.name).inc()
    return True


async def _layer_answers() -> bool:
    """Does the channel layer take a message now? (The outbox relay's probe after a failure.)"""
    try:
        async with asyncio.timeout(rt_settings.PUBLISH_TIMEOUT):
            await get_channel_layer().group_send("realtime-outbox-probe", {"type": LAYER_PROBE})
    except Exception:  # noqa: BLE001  still down
        return False
    return True


def _send_sync(event: Event) -> None:
    async_to_sync(_send)(event)


def publish(event: str, data: object, rooms, *, type: str | None = None, using: str | None = None) -> Event:
    """Send ``event`` with ``data`` to ``rooms``; after commit if inside a transaction.

    The returned ``Event`` carries its history ``position`` once this process sent it (at once, or
    at commit); None while it waits in the outbox or when another sender sent it."""
    built = _build(event, data, rooms, type)
    in_transaction = transaction.get_connection(using).in_atomic_block
    if rt_settings.OUTBOX and outbox.store(built, using):
        if in_transaction:
            outbox.send_after_commit(built, using)
        else:
            outbox.send_now(using, [built])
        return built
    if in_transaction:
        transaction.on_commit(partial(_send_sync, built), using=using, robust=True)
    else:
        _send_sync(built)
    return built


async def apublish(event: str, data: object, rooms, *, type: str | None = None) -> Event:
    """The async twin of ``publish``: sends at once."""
    built = _build(event, data, rooms, type)
    await _send(built)
    return built


def control_message(rooms, action: str, **fields) -> dict:
    """A control message for the sockets in ``rooms`` (see ``SocketConsumer.control``)."""
    return {"type": LAYER_CONTROL, "id": uuid.uuid4().hex, "rooms": list(rooms), "action": action, **fields}


def send_control(rooms, action: str, **fields) -> None:
    """Tell the sockets in ``rooms``, on every process, to close or re-check their rooms.

    Like ``publish``: after commit inside a transaction, bounded, never raises.
    """
    message = control_message(rooms, action, **fields)
    send = partial(async_to_sync(_send_to_rooms), message, message["rooms"], f"control:{action}")
    if transaction.get_connection().in_atomic_block:
        transaction.on_commit(send, robust=True)
    else:
        send()
