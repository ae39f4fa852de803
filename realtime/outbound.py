"""How many bytes a socket has waiting to be written, where the server lets us see it.

daphne has no outbound backpressure (TRAPS.md, django/daphne#170): ``send()``
returns at once and Twisted buffers without limit for a client that never reads.
Its ASGI ``send`` is ``partial(server.handle_reply, protocol)``, so the Twisted
transport's buffer can be read; a connection past the bound is closed as a slow
consumer. Servers that apply backpressure themselves (uvicorn awaits the drain)
need no probe: ``backlog_probe`` returns None for them.
"""
from collections.abc import Callable
import functools


def backlog_probe(send: Callable) -> Callable[[], int] | None:
    """A function returning the bytes buffered for this socket, or None if unknowable."""
    if not isinstance(send, functools.partial) or not send.args:
        return None
    transport = getattr(send.args[0], "transport", None)
    if transport is None or not hasattr(transport, "dataBuffer"):
        return None

    def pending() -> int:
        return (
            len(transport.dataBuffer)
            - getattr(transport, "offset", 0)
            + getattr(transport, "_tempDataLen", 0)
        )

    return pending
