"""The baseline: python-socketio's AsyncServer on uvicorn, fanned out through AsyncRedisManager.

The ordinary way to run python-socketio across processes: every server process
listens on Redis (``AsyncRedisManager``) and delivers each emitted event to its
local clients in the room. A client joins the room with
``emit("join", "inventory:all", callback)``. Run with
``REDIS_URL=redis://... uvicorn bench.baseline_server:app``.
"""
import os

import socketio

sio = socketio.AsyncServer(
    async_mode="asgi",
    client_manager=socketio.AsyncRedisManager(os.environ["REDIS_URL"]),
    cors_allowed_origins=[],
)
app = socketio.ASGIApp(sio)


@sio.on("join")
async def join(sid, room):
    await sio.enter_room(sid, room)
    return True
