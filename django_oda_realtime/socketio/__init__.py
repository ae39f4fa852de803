"""Socket.IO over Engine.IO at ``/socket.io/``: the Engine.IO session (``engine``), its carriers
(the ASGI consumers of its WebSocket and long-polling requests) and the Socket.IO consumer on the
shared socket core. The pure codec is ``django_oda_realtime.protocol.socketio``."""
