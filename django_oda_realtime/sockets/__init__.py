"""The sockets: what both wire protocols share (``SocketConsumer``: auth, session, timers, delivery),
the native ``/ws/`` consumer, the per-socket ``Session`` (rooms, commands) and the origin check."""
