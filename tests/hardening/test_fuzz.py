"""Bad input, property-based: generated frames at the decoders and at the ``/ws/`` consumer.

Properties: a decoder returns a message or raises ``ProtocolError`` (nothing else);
the consumer answers every generated frame with a valid reply or an error event
(never ``internal_error``), writes no traceback to the log, and stays usable (a
``ping`` still gets its ``pong``). The /ws/ properties run every registered command
and every ``subscribe:``/``unsubscribe:`` topic with arbitrary JSON data and ack ids.
Example counts are kept small: the whole file runs in seconds.
"""
import json
import logging

from channels.db import database_sync_to_async
from hypothesis import HealthCheck, example, given, settings as hsettings, strategies as st
import pytest

import oda_realtime.asgi  # noqa: F401  (Django configures logging on this import: at collection, not
# in a test's call phase, where it would drop pytest's capture handler and hide errors from caplog)
from django_oda_realtime.commands import registry
from django_oda_realtime.exceptions import ProtocolError
from django_oda_realtime.protocol import native, socketio
from django_oda_realtime.subscriptions import topics

FUZZ = hsettings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))

# JSON values, including the awkward ones: big and negative numbers, floats, unicode, nesting.
json_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=40),
    st.sampled_from(["", "0", "-1", "1.5", "12", "abc", "inventory:all", "user:1", "../../", "\u0000", "é" * 10]),
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=5), st.dictionaries(st.text(max_size=12), inner, max_size=5)),
    max_leaves=20,
)
ID_KEYS = ["locationIds", "productIds", "customerId", "inventoryItemId", "locationId", "quantity",
           "expectedQuantity", "reason", "requestId", "reference", "token"]
# Data shaped like the real commands' (their keys, wrong or right values), or anything at all.
command_data = st.one_of(json_values, st.dictionaries(st.sampled_from(ID_KEYS), json_values, max_size=5))
some_ids = st.one_of(st.integers(-2, 60), st.integers(-2, 60).map(str), json_scalars)
quantities = st.one_of(st.integers(-5, 2_000_000), st.floats(allow_nan=False), st.text(max_size=5), json_scalars)
texts = st.one_of(st.text(max_size=210), json_scalars)
# Near-valid inventory operations: the required keys, values right or wrong, optional keys sometimes.
inventory_data = st.fixed_dictionaries(
    {"inventoryItemId": some_ids, "quantity": quantities, "reason": texts},
    optional={"locationId": some_ids, "expectedQuantity": quantities, "requestId": texts, "reference": texts},
)
ack_ids = st.one_of(st.none(), st.integers(min_value=-5, max_value=2**60), st.booleans(), st.text(max_size=3),
                    st.floats(allow_nan=False, allow_infinity=False))


def deepest_decodable_nesting() -> int:
    """The deepest ``[[...]]`` json.loads accepts inside a frame (the C recursion limit decides)."""
    lo, hi = 1, 100_000
    while lo < hi:
        mid = (lo + hi + 1) // 2
        try:
            json.loads('{"data":' + "[" * mid + "]" * mid + "}")
            lo = mid
        except RecursionError:
            hi = mid - 1
    return lo


DEEP = deepest_decodable_nesting()


def command_names() -> list[str]:
    names = list(registry.names()) + ["auth:refresh", "ping"]
    for topic in topics.names():
        names += [f"subscribe:{topic}", f"unsubscribe:{topic}"]
    return names


# -- the pure decoders ------------------------------------------------------------------------------


@FUZZ
@given(st.one_of(st.text(max_size=300), st.binary(max_size=300)))
@example('{"event":"x","ack":1e400}')
@example("[" * 50_000)
@example('{"event":"' + "a" * 101 + '"}')
@example('{"event":"ping","ack":9007199254740992}')
@example('{"event":"ping","__proto__":{}}')
def test_the_native_decoder_returns_a_message_or_a_protocol_error(frame):
    try:
        msg = native.decode(frame)
    except ProtocolError as e:
        assert e.code and e.message
        return
    assert isinstance(msg.event, str) and 0 < len(msg.event) <= 100
    assert msg.ack is None or (type(msg.ack) is int and 0 <= msg.ack <= native.MAX_ACK)


@FUZZ
@given(st.dictionaries(st.sampled_from(["event", "data", "ack", "extra"]), json_values, max_size=4))
def test_the_native_decoder_on_json_objects(obj):
    try:
        msg = native.decode(json.dumps(obj))
    except ProtocolError:
        assert set(obj) - {"event", "data", "ack"} or not isinstance(obj.get("event"), str) or "ack" in obj \
            or not obj.get("event")
        return
    assert msg.event == obj["event"] and msg.data == obj.get("data")


@FUZZ
@given(st.one_of(st.text(max_size=200), st.binary(max_size=200)))
@example("4" + "[" * 50_000)
@example("b" + "!!!")
@example("9")
def test_the_engineio_decoder_returns_a_packet_or_a_protocol_error(frame):
    try:
        packet = socketio.decode_packet(frame)
    except ProtocolError:
        return
    assert socketio.OPEN <= packet.type <= socketio.NOOP


@FUZZ
@given(st.lists(st.text(max_size=60), min_size=1, max_size=5).map("\x1e".join))
def test_the_polling_payload_decoder(body):
    try:
        packets = socketio.decode_payload(body)
    except ProtocolError:
        return
    assert packets and all(socketio.OPEN <= p.type <= socketio.NOOP for p in packets)


socketio_texts = st.one_of(
    st.text(max_size=120),
    st.builds(lambda t, ns, ack, body: f"{t}{ns}{ack}{body}",
              st.sampled_from("0123456789"), st.sampled_from(["", "/", "/admin,", "/x,"]),
              st.sampled_from(["", "1", "-1", "99999999999999999999"]),
              st.one_of(json_values.map(json.dumps), st.text(max_size=20))),
    st.builds(lambda n, args: "2" + json.dumps([n, *args]), st.text(max_size=20), st.lists(json_values, max_size=3)),
    st.builds(lambda k, body: f"5{k}-" + body, st.integers(-1, 20), json_values.map(json.dumps)),
)


@FUZZ
@given(st.lists(st.one_of(socketio_texts, st.binary(max_size=40)), min_size=1, max_size=6))
@example(["51-" + json.dumps(["e", {"_placeholder": True, "num": 5}]), b"x"])
@example(["51-" + json.dumps(["e", {"_placeholder": True, "num": "0"}]), b"x"])
@example(["2" + "[" * 5000])
def test_the_socketio_decoder_returns_packets_or_protocol_errors(messages):
    decoder = socketio.PacketDecoder()
    for message in messages:
        try:
            packet = decoder.feed(message)
        except ProtocolError:
            continue
        if packet is None:
            assert decoder.waiting
            continue
        assert packet.type in (socketio.CONNECT, socketio.DISCONNECT, socketio.EVENT, socketio.ACK,
                               socketio.BINARY_EVENT, socketio.BINARY_ACK)
        assert isinstance(packet.namespace, str)
        if packet.type in (socketio.EVENT, socketio.BINARY_EVENT):
            assert isinstance(packet.event, str)


# -- the /ws/ consumer ------------------------------------------------------------------------------

frames_for_the_consumer = st.one_of(
    st.text(max_size=200),  # not JSON, or JSON of any shape
    json_values.map(json.dumps),
    st.builds(  # well-formed frames for every command and topic, with arbitrary data and ack
        lambda name, data, ack, extra: json.dumps(
            {"event": name, "data": data, **({"ack": ack} if ack is not None else {}), **extra}),
        st.sampled_from(command_names()), command_data, ack_ids,
        st.sampled_from([{}, {}, {}, {"x": 1}]),
    ),
    st.builds(lambda name, data: json.dumps({"event": name, "data": data}),
              st.text(max_size=30), json_values),  # unknown and malformed event names
    st.builds(lambda name, data, ack: json.dumps({"event": name, "data": data, "ack": ack}),
              st.sampled_from(registry.names()), inventory_data, st.integers(0, 1000)),
)


def check_reply(frame: dict, sent: str) -> None:
    """A server frame is a JSON object with an event name; errors carry a code, never internal_error."""
    assert isinstance(frame, dict) and isinstance(frame.get("event"), str), frame
    error = frame.get("error")
    if "ack" in frame:
        assert ("data" in frame) != isinstance(error, dict), frame
        if isinstance(error, dict):
            assert isinstance(error.get("code"), str) and isinstance(error.get("message"), str), frame
            assert error["code"] != "internal_error", (sent, frame)
    elif "code" in frame:
        assert isinstance(frame["code"], str) and frame["code"] != "internal_error", (sent, frame)


@pytest.fixture
def generous_limits(settings):
    settings.REALTIME = {**settings.REALTIME, "RATE_LIMIT_RATE": 100_000, "RATE_LIMIT_BURST": 100_000}


@pytest.fixture
async def fuzz_socket(generous_limits, make_user, token, connect):
    """One socket of a user who may do everything the commands check, so handlers get past permissions."""
    from tests.domain import make_level

    await database_sync_to_async(make_level)(available=50)
    user = await database_sync_to_async(make_user)(is_staff=True, perms=[
        "inventory.view_inventorylevel", "inventory.change_inventorylevel", "orders.view_order",
        "shopify_sync.view_syncjob",
    ])
    return await connect(token(user))


def assert_no_tracebacks(caplog) -> None:
    bad = [r for r in caplog.records if r.levelno >= logging.ERROR and (r.exc_info or "internal" in r.getMessage())]
    assert bad == [], [r.getMessage() for r in bad]


@pytest.mark.django_db(transaction=True)
@hsettings(FUZZ, max_examples=150)
@given(frames=st.lists(frames_for_the_consumer.filter(bool), min_size=1, max_size=4))  # daphne never sends ""
@example(frames=['{"event":"inventory:update","data":' + "[" * 900 + "]" * 900 + "}"])
@example(frames=['{"event":"nope","data":' + "[" * 5000 + "]" * 5000 + "}"])
@example(frames=['{"event":"nope","data":' + "[" * DEEP + "]" * DEEP + "}"])  # decodes; is echoed in the error
@example(frames=['{"event":"inventory:update","ack":3,"data":' + "[" * DEEP + "]" * DEEP + "}"])
@example(frames=['{"event":"subscribe:inventory","data":{"locationIds":' + "[" * (DEEP - 2) + "]" * (DEEP - 2) + "}}"])
@example(frames=['{"event":"subscribe:inventory","data":{"locationIds":[' + ",".join(["1"] * 500) + "]}}"])
@example(frames=['{"event":"inventory:reserve","data":{"inventoryItemId":1,"quantity":1e308,"reason":"x"},"ack":1}'])
async def test_generated_frames_never_break_the_consumer(fuzz_socket, caplog, frames):
    sock = fuzz_socket
    caplog.set_level(logging.INFO)
    for frame in frames:
        await sock.comm.send_to(text_data=frame)
    await sock.comm.send_to(text_data='{"event":"ping","ack":424242}')
    while True:
        reply = await sock.receive(timeout=5)
        if reply.get("ack") == 424242:
            assert reply == {"event": "pong", "ack": 424242, "data": {}}
            break
        check_reply(reply, frames)
    assert_no_tracebacks(caplog)


@pytest.mark.django_db(transaction=True)
@FUZZ
@given(frames=st.lists(st.binary(min_size=1, max_size=200), min_size=1, max_size=3))
async def test_binary_frames_get_an_error_and_the_socket_stays(fuzz_socket, caplog, frames):
    sock = fuzz_socket
    for frame in frames:
        await sock.comm.send_to(bytes_data=frame)
        error = await sock.receive()
        assert (error["event"], error["code"]) == ("error", "binary_frame")
    assert (await sock.command("ping"))["event"] == "pong"
    assert_no_tracebacks(caplog)


@pytest.mark.django_db(transaction=True)
async def test_deeply_nested_data_is_refused_not_echoed_into_a_crash(fuzz_socket, caplog):
    """Regression: ~1,490 levels decoded, and the error reply echoing them overflowed the encoder (1011)."""
    sock = fuzz_socket
    for depth in [30, 31, 32, 33, 34, *range(DEEP - 60, DEEP + 3)]:
        await sock.comm.send_to(text_data='{"event":"nope","data":' + "[" * depth + "]" * depth + "}")
        reply = json.loads(await sock.comm.receive_from(5))
        expected = "unknown_command" if depth < native.MAX_DEPTH else "invalid_frame"  # + the frame's own level
        assert reply["code"] in (expected, "invalid_json"), (depth, reply["code"])
    assert (await sock.command("ping"))["event"] == "pong"
    assert_no_tracebacks(caplog)


# -- the /socket.io/ consumer -----------------------------------------------------------------------


class SioSocket:
    """A Socket.IO client over channels' WebsocketCommunicator: Engine.IO frames as they travel."""

    def __init__(self, comm) -> None:
        self.comm = comm

    @classmethod
    async def open(cls, raw_token: str) -> "SioSocket":
        from channels.testing import WebsocketCommunicator

        from tests.conftest import application

        comm = WebsocketCommunicator(application(), "/socket.io/?EIO=4&transport=websocket")
        accepted, _ = await comm.connect(timeout=5)
        assert accepted
        sock = cls(comm)
        assert (await sock.recv()).startswith("0{")  # Engine.IO OPEN
        await comm.send_to(text_data="40" + json.dumps({"token": raw_token}))
        assert (await sock.recv()).startswith("40{")
        assert (await sock.recv()).startswith('42["connected"')
        return sock

    async def recv(self, timeout: float = 5.0):
        """The next frame, or the close code (int) when the server closed."""
        while True:
            out = await self.comm.receive_output(timeout)
            if out["type"] == "websocket.close":
                return int(out.get("code", 1000))
            frame = out.get("text", out.get("bytes"))
            if frame != "2":  # Engine.IO ping
                return frame

    async def answered(self, ack: int, timeout: float = 5.0) -> list:
        """Frames until the ack reply ``43<ack>[...]`` (included), or until a close (an int last)."""
        frames = []
        while True:
            frame = await self.recv(timeout)
            frames.append(frame)
            if isinstance(frame, int) or (isinstance(frame, str) and frame.startswith(f"43{ack}[")):
                return frames


def check_socketio_frame(frame, sent) -> None:
    assert isinstance(frame, str), (sent, frame)
    assert frame[:2] in ("42", "43", "41", "44") or frame.startswith("3"), (sent, frame)  # 3: Engine.IO pong
    assert "internal_error" not in frame, (sent, frame)
    if frame.startswith("43"):
        body = json.loads(frame[2:].lstrip("0123456789"))
        assert isinstance(body, list) and len(body) == 1 and (("data" in body[0]) != ("error" in body[0])), frame


socketio_events = st.builds(
    lambda name, args, ack: f"42{'' if ack is None else ack}" + json.dumps([name, *args]),
    st.one_of(st.sampled_from(command_names()), st.text(min_size=1, max_size=30)),
    st.one_of(st.lists(command_data, max_size=2), st.tuples(inventory_data).map(list)),
    st.one_of(st.none(), st.integers(0, 10_000)),
)


@pytest.fixture
async def sio_socket(generous_limits, make_user, token, connect):
    user = await database_sync_to_async(make_user)(is_staff=True, perms=[
        "inventory.view_inventorylevel", "inventory.change_inventorylevel", "orders.view_order",
    ])
    sock = await SioSocket.open(token(user))
    yield sock
    await sock.comm.disconnect()


@pytest.mark.django_db(transaction=True)
@hsettings(FUZZ, max_examples=120)
@given(frames=st.lists(socketio_events.filter(lambda f: not f.startswith(("42\"", '42["connect'))), min_size=1, max_size=4))
@example(frames=['42["inventory:update",' + "[" * 40 + "]" * 40 + "]"])
async def test_generated_socketio_events_never_break_the_consumer(sio_socket, caplog, frames):
    """Well-formed EVENT packets, any name, any arguments: an answer or an error event, the socket stays
    (nested deeper than 32 levels is a protocol error, which Socket.IO answers with a close: not generated)."""
    from django_oda_realtime.protocol import nested_deeper_than

    sock = sio_socket
    for frame in frames:
        if nested_deeper_than(json.loads(frame[2:].lstrip("0123456789"))):
            continue
        await sock.comm.send_to(text_data=frame)
    await sock.comm.send_to(text_data='4299999["ping"]')  # not a command: an ack with unknown_command
    answer = await sock.answered(99999)
    for frame in answer[:-1]:
        check_socketio_frame(frame, frames)
    assert answer[-1].startswith("4399999[") and "unknown_command" in answer[-1], answer
    assert_no_tracebacks(caplog)


@pytest.mark.django_db(transaction=True)
@hsettings(FUZZ, max_examples=30)
@given(frame=st.one_of(st.text(min_size=1, max_size=100), socketio_texts.filter(bool), st.binary(min_size=1, max_size=50)))
@example(frame="451-" + json.dumps(["nope", {"_placeholder": True, "num": 0}]))
@example(frame=b"1")  # binary, not an Engine.IO CLOSE
async def test_any_frame_gets_an_answer_or_a_protocol_close_never_a_crash(generous_limits, make_user, token,
                                                                           caplog, frame):
    user = await database_sync_to_async(make_user)()
    sock = await SioSocket.open(token(user))
    try:
        if isinstance(frame, bytes):
            await sock.comm.send_to(bytes_data=frame)
        else:
            await sock.comm.send_to(text_data=frame)
        await sock.comm.send_to(text_data='4277["nope"]')
        answer = await sock.answered(77)
    finally:
        await sock.comm.disconnect()
    last = answer[-1]
    if isinstance(last, int):
        # A malformed packet: Socket.IO's rule is to close. Engine.IO CLOSE ("1") is a normal close;
        # a binary frame is never an Engine.IO packet type (EIO 4 sends binary as raw attachment data).
        assert last == (1000 if isinstance(frame, str) and frame[:1] == "1" else 4010), (frame, answer)
    else:
        assert last.startswith("4377[")
    for got in answer[:-1]:
        check_socketio_frame(got, frame)
    assert_no_tracebacks(caplog)


@pytest.mark.django_db(transaction=True)
async def test_deeply_nested_socketio_packets_close_with_a_protocol_error_not_a_crash(generous_limits, make_user,
                                                                                      token, caplog):
    """Regression: ~1,000+ levels decoded, then walking them for binary attachments overflowed the
    recursion limit: the Socket.IO application died (logged traceback, session closed with 1000)."""
    user = await database_sync_to_async(make_user)()
    raw = token(user)
    closes = {}
    for depth in [30, 31, 32, *range(400, DEEP + 5, 100), DEEP - 2]:
        sock = await SioSocket.open(raw)
        await sock.comm.send_to(text_data='42["nope",' + "[" * depth + "]" * depth + "]")
        await sock.comm.send_to(text_data='4277["nope"]')
        answer = await sock.answered(77)
        await sock.comm.disconnect()
        closes[depth] = answer[-1] if isinstance(answer[-1], int) else "answered"
    # ["nope", <depth lists>] is depth + 1 levels deep.
    assert closes == {d: ("answered" if d + 1 <= 32 else 4010) for d in closes}
    assert_no_tracebacks(caplog)
