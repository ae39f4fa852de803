"""The Socket.IO server fixtures of tests/socketio/, for the real clients (Node, Chromium)."""
from tests.socketio.conftest import module_redis_url, sio_layer, sio_server  # noqa: F401
