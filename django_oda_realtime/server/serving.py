"""Serving helpers for ``manage.py serve``: an access log without query strings, a request body
limit, and a leaner daphne.

``PathOnlyAccessLog``: daphne's access log with the query string removed (a
``?token=`` must never reach a log file).

``BodyLimitedRequest``: daphne reads a whole request body (into memory, then a temp
file) before the application sees it, so a view's 413 comes after the upload
(issue #11: a 300 MiB POST made 586 MiB of temp files). This request refuses a body
over ``REALTIME["MAX_REQUEST_BODY_BYTES"]`` in Twisted's parser: by its
``Content-Length`` as soon as the headers are in (``gotLength``, before any temp
file or ``100 Continue``), a chunked body as soon as its running total passes the
limit (``handleContentChunk``). The answer is 413 and the connection is closed;
the application never sees the request. Bytes already on their way are thrown
away, for at most ``LINGER_SECONDS``, so the client can read the 413 instead of a
reset (docs/security.md).

``SlimServer``: daphne's ``Server`` with less memory per idle WebSocket (issue #7).
Only ``manage.py serve`` uses it; ``python -m daphne`` stays stock. Measured with
``python -m bench.memory --n 2000 --stacks bare-daphne-tuned`` (the bare ASGI app
through ``manage.py serve``) before and after: Python allocations of daphne,
Twisted, autobahn and txaio per idle socket fell from 17.7 KiB to 7.4 KiB (what
each part saves is given below). Every part checks what it replaces and leaves the
stock object in place when daphne, Twisted or autobahn no longer look as expected.

1. ``ReceiveQueue`` replaces the ``asyncio.Queue`` daphne makes per connection
   (``Server.create_application``): that queue holds three deques and an
   ``asyncio.Event`` (3.2 KiB; ``ReceiveQueue`` 74 bytes) although daphne only calls ``put_nowait`` and the
   application only awaits ``get``. ``ReceiveQueue`` has two slots; its message
   deque exists only while messages wait, and a waiting ``get`` costs one future.
   A ``get`` cancelled after a message was handed to it leaves the message queued
   (the next ``get`` returns it), like ``asyncio.Queue``; order is FIFO. It has no
   ``__len__`` on purpose: daphne tests ``if self.application_queue:``.

2. The HTTP request the WebSocket came in on. daphne upgrades inside Twisted's
   ``HTTPChannel``, which stays registered as the TCP transport's producer for the
   life of the socket and keeps the ``WebRequest`` (headers, body buffer, parsed
   query string with the token) alive. In that state (request never finished, no
   request producer) the channel's ``pauseProducing``/``resumeProducing``/
   ``stopProducing`` do nothing, and nothing delivers data to it any more (the
   transport's protocol is the WebSocket). Once the socket is open (``onOpen`` runs
   on the application's accept, a later loop iteration than the upgrade in
   ``WebRequest.process``, which has returned by then) the channel is
   replaced as producer by ``_UPGRADED``, a shared producer that does nothing
   either, so the transport behaves exactly as before; the request's ``channel`` is
   set to None (what Twisted does to a lost request; daphne's ``handle_reply``
   then ignores it) so channel and request are freed by reference counting as
   soon as daphne's connection table drops the request (1-2 s later). Saves ~2.1 KiB.

3. The WebSocket protocol instance (daphne + autobahn). Its ``__dict__`` held ~100
   attributes (3.3 KiB; 0.75 KiB after), plus ~0.8 KiB of handshake data. Once open:
   - attributes only the opening handshake reads are deleted (``HANDSHAKE_ONLY``:
     the raw request, parsed headers and query parameters, the key, the response
     text, daphne's raw query string and its header list, which stays only as long as
     the application's scope holds it: ``/ws/`` empties its scope's headers once the
     socket is authenticated, ~0.75 KiB); autobahn reads them only in
     ``processHandshake``/``succeedHandshake`` and daphne only in ``onConnect``;
   - ``request`` (autobahn's ``ConnectionRequest``, holding the same headers and
     parameters) is replaced by an object with its ``path`` only, the one field
     daphne reads later (``onClose`` logs it);
   - the ~30 protocol options autobahn copies from the factory onto every
     instance are class attributes of a per-factory subclass (``SlimWebSocketFactory``),
     so autobahn's ``_connectionMade`` finds them and copies nothing. The
     options are read when daphne calls ``setProtocolOptions`` (before it listens);
   - flags autobahn initialises to the same immutable value on every connection
     (``INSTANCE_DEFAULTS``: ``wasClean = False``, ``localCloseCode = None``...)
     are class attributes, and an instance attribute still holding exactly that
     object is deleted: reads give the same value, a write makes it an instance
     attribute again;
   - the dict is then rebuilt at the size the remaining ~30 attributes need.
   autobahn's ``send_queue`` (a deque, 0.75 KiB, used only for chopped or
   synchronous writes, which daphne never does) becomes ``LazySendQueue``, which
   makes its deque on the first ``append``; ``django_oda_realtime.server.outlets.direct_writer``
   tests it for emptiness, as before.
"""
import asyncio
from collections import deque
from functools import partial
from io import BytesIO
import logging

from daphne.access import AccessLogGenerator
from daphne.http_protocol import HTTPFactory, WebRequest
from daphne.server import Server
from daphne.ws_protocol import WebSocketFactory, WebSocketProtocol
from twisted.internet import defer
from twisted.internet.interfaces import IPushProducer
from twisted.web import http
from zope.interface import implementer

from .. import outbox_relay
from ..conf import rt_settings
from .accesslog import AccessLogMiddleware
from .drain import DrainGate, drain
from .queues import ReceiveQueue

logger = logging.getLogger("realtime.serving")
access_logger = logging.getLogger("realtime.access")


class PathOnlyAccessLog(AccessLogGenerator):
    """daphne's access log, as log records of ``realtime.access`` (JSON lines with ``LOG_FORMAT=json``),
    with the query string removed. HTTP requests are logged by ``accesslog.AccessLogMiddleware``
    (with their request id), which ``SlimServer`` installs: here only the WebSocket events remain."""

    def __call__(self, protocol, action, details):
        if protocol == "http" or action == "connecting":
            return  # HTTP: AccessLogMiddleware's line; "connecting" is always followed by connect or reject
        super().__call__(protocol, action, details)

    def write_entry(self, host, date, request, status=None, length=None, ident=None, user=None):
        verb, _, target = request.partition(" ")
        path = target.split("?", 1)[0]
        access_logger.info('%s "%s %s"', host, verb, path,
                           extra={"action": verb.lower(), "peer": host, "path": path})


# -- the request body limit --------------------------------------------------------------------

LINGER_SECONDS = 2.0
_TOO_LARGE_BODY = b'{"error": "payload_too_large"}'
TOO_LARGE_RESPONSE = (
    b"HTTP/1.1 413 Content Too Large\r\n"
    b"Content-Type: application/json\r\n"
    b"Content-Length: " + str(len(_TOO_LARGE_BODY)).encode() + b"\r\n"
    b"Connection: close\r\n\r\n" + _TOO_LARGE_BODY
)


def _discard(data: bytes) -> None:
    """The channel's ``dataReceived`` once a body is refused: bytes still arriving are dropped."""


class BodyLimitedRequest(WebRequest):
    """daphne's request, refusing a body over ``MAX_REQUEST_BODY_BYTES`` before storing it (module docstring)."""

    _body_refused = False
    _body_received = 0
    _linger_call = None

    def gotLength(self, length):
        if length and length > rt_settings.MAX_REQUEST_BODY_BYTES:
            self._refuse_body(length)
            return
        super().gotLength(length)

    def handleContentChunk(self, data):
        if self._body_refused:
            return
        self._body_received += len(data)
        if self._body_received > rt_settings.MAX_REQUEST_BODY_BYTES:
            self._refuse_body(None)
            return
        super().handleContentChunk(data)

    def requestReceived(self, command, path, version):
        if self._body_refused:
            return  # a refused request never reaches the application
        super().requestReceived(command, path, version)

    def connectionLost(self, reason):
        if self._linger_call is not None and self._linger_call.active():
            self._linger_call.cancel()
        super().connectionLost(reason)

    def _refuse_body(self, announced: int | None) -> None:
        """Answer 413 on the raw transport and close: reads stop, what arrives meanwhile is dropped."""
        self._body_refused = True
        content = getattr(self, "content", None)
        if content is not None:
            content.close()  # a chunked body's temp file goes now, not when the connection does
        self.content = BytesIO()  # and none is made for an announced length
        channel = self.channel
        transport = channel.transport if channel is not None else None
        if transport is None:
            return
        # Twisted sends ``100 Continue`` after ``gotLength`` when asked to: not for a refused body.
        self.requestHeaders.removeHeader(b"expect")
        logger.info(
            "Refused a request body over MAX_REQUEST_BODY_BYTES (%s) from %s",
            f"Content-Length {announced}" if announced is not None else "chunked",
            getattr(self.getClientAddress(), "host", "?"),
        )
        transport.write(TOO_LARGE_RESPONSE)
        channel.dataReceived = _discard
        half_close = getattr(transport, "loseWriteConnection", None)
        if half_close is not None:
            from twisted.internet import reactor  # daphne's (asyncio) reactor, installed by daphne.server

            half_close()  # the client reads the 413 and an end of stream, then closes
            self._linger_call = reactor.callLater(LINGER_SECONDS, transport.abortConnection)
        else:
            transport.loseConnection()


class BodyLimitedHTTPFactory(HTTPFactory):
    """daphne's HTTP factory, whose connections make ``BodyLimitedRequest``s."""

    def buildProtocol(self, addr):
        protocol = super().buildProtocol(addr)
        if protocol is not None:
            if protocol.requestFactory is not WebRequest:
                # Refuse to serve rather than serve without the limit (tests/hardening/test_body_limit.py).
                raise RuntimeError("daphne no longer builds WebRequest: the request body limit cannot be installed")
            protocol.requestFactory = BodyLimitedRequest
        return protocol


# -- 1. the application's input queue ---------------------------------------------------------


# ``ReceiveQueue`` (queues.py): also the Engine.IO session's inbound queue.


# -- 2. the HTTP request the WebSocket was upgraded from --------------------------------------


@implementer(IPushProducer)
class _UpgradedHTTPChannel:
    """Stands in, as the transport's producer, for an ``HTTPChannel`` whose request became a WebSocket."""

    __slots__ = ()

    def pauseProducing(self) -> None:
        pass

    def resumeProducing(self) -> None:
        pass

    def stopProducing(self) -> None:
        pass


_UPGRADED = _UpgradedHTTPChannel()


def release_upgraded_request(transport) -> bool:
    """Let go of the HTTP channel and request behind an open WebSocket; False if they are not as expected."""
    channel = getattr(transport, "producer", None)
    if (
        not isinstance(channel, http.HTTPChannel)
        or getattr(channel, "transport", None) is not transport
        or getattr(channel, "_handlingRequest", None) is not True  # else pauseProducing would pause reads
        or getattr(channel, "_requestProducer", True) is not None  # else the channel would forward calls
    ):
        return False
    transport.producer = _UPGRADED
    for request in getattr(channel, "requests", ()):
        if getattr(request, "channel", None) is channel:
            request.channel = None
    return True


# -- 3. the WebSocket protocol instance -------------------------------------------------------


class LazySendQueue:
    """autobahn's ``send_queue`` without a deque until something is queued (daphne never queues)."""

    __slots__ = ("_deque",)

    def __init__(self) -> None:
        self._deque: deque | None = None

    def __len__(self) -> int:
        return len(self._deque) if self._deque is not None else 0

    def append(self, item) -> None:
        if self._deque is None:
            self._deque = deque()
        self._deque.append(item)

    def popleft(self):
        if self._deque is None:
            raise IndexError("pop from an empty deque")
        item = self._deque.popleft()
        if not self._deque:
            self._deque = None
        return item


class _OpenedRequest:
    """What daphne reads of autobahn's ``ConnectionRequest`` once the socket is open: the path."""

    __slots__ = ("path",)

    def __init__(self, path: str) -> None:
        self.path = path


HANDSHAKE_ONLY = (
    "http_request_data", "http_status_line", "http_headers", "http_request_uri", "http_request_path",
    "http_request_params", "http_request_host", "websocket_protocols", "websocket_origin",
    "websocket_extensions", "_wskey", "http_response_data", "_raw_query_string", "protocol_to_accept",
    "application_deferred", "clean_headers",
)

INSTANCE_DEFAULTS = {
    "_perMessageCompress": None, "trackedTimings": None, "send_state": WebSocketProtocol.SEND_STATE_GROUND,
    "data": b"", "triggered": False, "wasMaxFramePayloadSizeExceeded": False,
    "wasMaxMessagePayloadSizeExceeded": False, "closedByMe": False, "failedByMe": False, "droppedByMe": False,
    "wasClean": False, "wasNotCleanReason": None, "wasServerConnectionDropTimeout": False,
    "wasOpenHandshakeTimeout": False, "wasCloseHandshakeTimeout": False, "wasServingFlashSocketPolicyFile": False,
    "localCloseCode": None, "localCloseReason": None, "remoteCloseCode": None, "remoteCloseReason": None,
    "openHandshakeTimeoutCall": None, "closeHandshakeTimeoutCall": None, "autoPingTimeoutCall": None,
    "autoPingPending": None, "autoPingPendingCall": None, "autoPingPendingSeq": 0, "autoPingPendingSent": None,
    "websocket_protocol_in_use": None, "inside_message": False, "current_frame": None,
}


class SlimWebSocketProtocol(WebSocketProtocol):
    """daphne's WebSocket protocol, releasing what only the opening handshake needs once the socket is open."""

    def _connectionMade(self):
        super()._connectionMade()
        queue = self.__dict__.get("send_queue")
        if type(queue) is deque and not queue:
            self.send_queue = LazySendQueue()

    def onOpen(self):
        super().onOpen()
        release_upgraded_request(self.transport)
        self._release_handshake_state()

    def _release_handshake_state(self) -> None:
        """Drop handshake-only attributes and defaults, and rebuild ``__dict__`` at its new size."""
        attrs = self.__dict__
        request = attrs.get("request")
        if request is not None and isinstance(getattr(request, "path", None), str):
            attrs["request"] = _OpenedRequest(request.path)
        self.__dict__ = {
            name: value for name, value in attrs.items()
            if name not in HANDSHAKE_ONLY and not (name in INSTANCE_DEFAULTS and value is INSTANCE_DEFAULTS[name])
        }


for _name, _value in INSTANCE_DEFAULTS.items():
    setattr(SlimWebSocketProtocol, _name, _value)


def _class_value(value):
    """A factory option as a class attribute that reads back as the same object (functions stay unbound)."""
    return staticmethod(value) if hasattr(value, "__get__") else value


class SlimWebSocketFactory(WebSocketFactory):
    """daphne's factory, building ``SlimWebSocketProtocol``s that carry its options as class attributes."""

    protocol = SlimWebSocketProtocol

    def setProtocolOptions(self, *args, **kwargs):
        super().setProtocolOptions(*args, **kwargs)
        base = SlimWebSocketProtocol
        options = {}
        for name in getattr(base, "CONFIG_ATTRS", ()):
            if not hasattr(self, name):
                return  # not the autobahn this was written for: instances copy the options, as stock
            options[name] = _class_value(getattr(self, name))
        self.protocol = type(base.__name__, (base,), options)


# -- the server --------------------------------------------------------------------------------


class SlimServer(Server):
    """daphne's ``Server`` with ``ReceiveQueue``, ``SlimWebSocketFactory`` and the request body limit
    (module docstring), and a graceful drain on SIGTERM/SIGINT (``django_oda_realtime/server/drain.py``)."""

    @property
    def http_factory(self):
        try:
            return self.__dict__["_http_factory"]
        except KeyError:
            raise AttributeError("http_factory") from None

    @http_factory.setter
    def http_factory(self, factory):
        # Server.run() makes a stock HTTPFactory; the subclass only overrides buildProtocol.
        if type(factory) is HTTPFactory:
            factory.__class__ = BodyLimitedHTTPFactory
        elif not isinstance(factory, BodyLimitedHTTPFactory):
            logger.error("daphne made a %s: MAX_REQUEST_BODY_BYTES is not enforced", type(factory).__name__)
        self.__dict__["_http_factory"] = factory

    def run(self):
        self.application = AccessLogMiddleware(DrainGate(self.application))
        outbox_relay.start()  # Django is set up by now (docs/design.md#outbox)
        super().run()

    def kill_all_applications(self):
        """Twisted's "before shutdown" trigger (a signal stopped the reactor): drain, then daphne's kill.

        The listening sockets stay open until the drain ends, so ``/readyz`` answers 503 meanwhile.
        """
        drained = defer.Deferred.fromFuture(asyncio.ensure_future(drain()))
        drained.addErrback(lambda failure: logger.error("The drain failed: %s", failure.getErrorMessage()))
        drained.addCallback(lambda _: outbox_relay.stop())  # the relay served the drained sockets too
        drained.addCallback(lambda _: Server.kill_all_applications(self))
        return drained

    @property
    def ws_factory(self):
        try:
            return self.__dict__["_ws_factory"]
        except KeyError:
            raise AttributeError("ws_factory") from None

    @ws_factory.setter
    def ws_factory(self, factory):
        # Server.run() makes a stock WebSocketFactory; it has no per-instance state a subclass would miss.
        if type(factory) is WebSocketFactory:
            factory.__class__ = SlimWebSocketFactory
            factory.protocol = SlimWebSocketProtocol
        self.__dict__["_ws_factory"] = factory

    def create_application(self, protocol, scope):
        """``Server.create_application`` with a ``ReceiveQueue`` in place of ``asyncio.Queue``."""
        assert "application_instance" not in self.connections[protocol]
        input_queue = ReceiveQueue()
        scope.setdefault("asgi", {"version": "3.0"})
        application_instance = self.application(
            scope=scope,
            receive=input_queue.get,
            send=partial(self.handle_reply, protocol),
        )
        if protocol not in self.connections:
            return None
        self.connections[protocol]["application_instance"] = asyncio.ensure_future(
            application_instance,
            loop=asyncio.get_event_loop(),
        )
        return input_queue
