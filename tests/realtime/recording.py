"""A socket as the hub and the session see it (``hub.Connection``), recording what it is handed:
the data of each event delivered, control messages, timer ticks. What it records is what a
client of a real socket would be sent."""
import asyncio
import json
import uuid

from django_oda_realtime.events import Event
from django_oda_realtime.rooms import group_for


class RecordingSocket:
    protocol_name = "native"

    def __init__(self, name: str = "socket", user_id: str = "1") -> None:
        self.connection_id = f"{name}-{uuid.uuid4().hex[:6]}"
        self.user_id = user_id
        self.events: list[object] = []
        self.controls: list[dict] = []
        self.ticks = 0

    async def deliver(self, event: Event) -> bool:
        self.events.append(json.loads(event.json)["data"])
        return True

    async def control(self, message: dict) -> None:
        self.controls.append(message)

    async def tick(self, now: float) -> None:
        self.ticks += 1


async def eventually(predicate, what: str, timeout: float = 3.0) -> None:
    """Wait until ``predicate()``; AssertionError naming ``what`` on timeout."""
    try:
        async with asyncio.timeout(timeout):
            while not predicate():
                await asyncio.sleep(0.01)
    except TimeoutError:
        raise AssertionError(f"not within {timeout}s: {what}") from None


async def send(hub, name: str, data, rooms, event: Event | None = None) -> Event:
    """An event to the hub's layer as ``publish()`` sends it: one message per group of its rooms."""
    event = event or Event.build(name, data, rooms)
    for group in dict.fromkeys(group_for(room) for room in rooms):
        await hub.layer.group_send(group, event.to_layer())
    return event
