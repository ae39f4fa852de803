"""The Socket.IO / Engine.IO codec: strings in, objects out; every bad input a ProtocolError."""
from decimal import Decimal
import json

import pytest

from django_oda_realtime.events import Event
from django_oda_realtime.exceptions import ProtocolError
from django_oda_realtime.protocol import socketio as sio
from django_oda_realtime.protocol.socketio import EnginePacket, SocketPacket

# -- Engine.IO -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "frame, packet",
    [
        ("2", EnginePacket(sio.PING, "")),
        ("2probe", EnginePacket(sio.PING, "probe")),
        ("3", EnginePacket(sio.PONG, "")),
        ("5", EnginePacket(sio.UPGRADE, "")),
        ("4hello", EnginePacket(sio.MESSAGE, "hello")),
        ('4{"a":1}', EnginePacket(sio.MESSAGE, '{"a":1}')),  # the text itself, not engineio's JSON decode
        ('42["x",1]', EnginePacket(sio.MESSAGE, '2["x",1]')),
        ("bAQIDBA==", EnginePacket(sio.MESSAGE, b"\x01\x02\x03\x04")),
        (b"\x01\x02", EnginePacket(sio.MESSAGE, b"\x01\x02")),
    ],
    ids=["ping", "probe", "pong", "upgrade", "text", "json-text", "socketio", "base64", "binary"],
)
def test_decode_engine_packets(frame, packet):
    assert sio.decode_packet(frame) == packet


@pytest.mark.parametrize("frame", ["", "abc", "9", "7x", "bAQ"], ids=["empty", "no-type", "type-9", "type-7", "bad-base64"])
def test_decode_refuses_malformed_engine_packets(frame):
    with pytest.raises(ProtocolError) as info:
        sio.decode_packet(frame)
    assert info.value.code == "invalid_packet"


def test_payload_splits_on_record_separator():
    packets = sio.decode_payload("4test1\x1e4test2\x1ebAQIDBA==\x1e3")
    assert packets == [
        EnginePacket(sio.MESSAGE, "test1"), EnginePacket(sio.MESSAGE, "test2"),
        EnginePacket(sio.MESSAGE, b"\x01\x02\x03\x04"), EnginePacket(sio.PONG, ""),
    ]


@pytest.mark.parametrize("body, code", [("", "invalid_payload"), ("4a\x1eabc", "invalid_packet"), ("3\x1e" * 5 + "3", "invalid_payload")])
def test_payload_refusals(body, code):
    with pytest.raises(ProtocolError) as info:
        sio.decode_payload(body, max_packets=5)
    assert info.value.code == code


def test_payload_encoding_base64_for_binary():
    assert sio.encode_payload(["2", sio.message("42[]"), b"\x01\x02\x03\x04"]) == "2\x1e442[]\x1ebAQIDBA=="


def test_open_packet_in_milliseconds():
    packet = sio.open_packet("abc", upgrades=["websocket"], ping_interval=25.0, ping_timeout=0.2, max_payload=1_000_000)
    assert packet[0] == "0"
    assert json.loads(packet[1:]) == {
        "sid": "abc", "upgrades": ["websocket"], "pingInterval": 25000, "pingTimeout": 200, "maxPayload": 1000000,
    }


@pytest.mark.parametrize(
    "query, expected",
    [
        (b"EIO=4&transport=polling", sio.Handshake("polling")),
        (b"EIO=4&transport=websocket&sid=xyz&t=abc", sio.Handshake("websocket", "xyz")),
        (b"EIO=4&transport=polling&token=t", sio.Handshake("polling")),
        (b"transport=polling", "unsupported_protocol_version"),
        (b"EIO=3&transport=polling", "unsupported_protocol_version"),
        (b"EIO=abc&transport=polling", "unsupported_protocol_version"),
        (b"EIO=4", "unknown_transport"),
        (b"EIO=4&transport=flash", "unknown_transport"),
    ],
)
def test_parse_query(query, expected):
    if isinstance(expected, str):
        with pytest.raises(ProtocolError) as info:
            sio.parse_query(query)
        assert info.value.code == expected
        assert json.loads(sio.engine_error(expected))["code"] in range(6)
    else:
        assert sio.parse_query(query) == expected


# -- Socket.IO: decoding ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, packet",
    [
        ("0", SocketPacket(sio.CONNECT)),
        ('0{"token":"abc"}', SocketPacket(sio.CONNECT, "/", {"token": "abc"})),
        ("0/custom,", SocketPacket(sio.CONNECT, "/custom")),
        ('0/custom,{"token":"abc"}', SocketPacket(sio.CONNECT, "/custom", {"token": "abc"})),
        ("1", SocketPacket(sio.DISCONNECT)),
        ('2["subscribe:inventory",{"locationIds":["1"]}]', SocketPacket(sio.EVENT, "/", ["subscribe:inventory", {"locationIds": ["1"]}])),
        ('27["inventory:update",{}]', SocketPacket(sio.EVENT, "/", ["inventory:update", {}], 7)),
        ('2/custom,12["x"]', SocketPacket(sio.EVENT, "/custom", ["x"], 12)),
        ("33[1]", SocketPacket(sio.ACK, "/", [1], 3)),
    ],
    ids=["connect", "connect-auth", "connect-ns", "connect-ns-auth", "disconnect", "event", "event-ack", "event-ns-ack", "ack"],
)
def test_decode_socket_packets(text, packet):
    assert sio.PacketDecoder().feed(text) == packet


def test_event_name_and_args():
    packet = sio.PacketDecoder().feed('2["message",1,"2",{"3":[true]}]')
    assert (packet.event, packet.args) == ("message", [1, "2", {"3": [True]}])


@pytest.mark.parametrize(
    "text",
    [
        "", "abc", "7", "2", "2{}", "2[]", "2[1]", '2abc["x"]', '2["connect"]', "1{}", '0"token"',
        '4{"message":"x"}', "3", '22-["x"]', "2" + "[" * 100_000, "2" + "9" * 200 + '["x"]', "59999999999-[]",
    ],
    ids=[
        "empty", "not-a-type", "type-7", "event-without-data", "event-object", "event-empty", "event-name-not-string",
        "ack-id-not-digits", "reserved-name", "disconnect-with-data", "connect-auth-not-object", "connect-error-from-client",
        "ack-without-id", "attachments-on-text-event", "deep-nesting", "huge-ack-id", "too-many-attachments",
    ],
)
def test_decode_refuses_invalid_socket_packets(text):
    with pytest.raises(ProtocolError) as info:
        sio.PacketDecoder().feed(text)
    assert info.value.code == "invalid_packet"


def test_binary_packet_waits_for_its_attachments():
    decoder = sio.PacketDecoder()
    assert decoder.feed('52-["message",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]') is None
    assert decoder.feed(b"\x01\x02\x03") is None
    packet = decoder.feed(b"\x04\x05\x06")
    assert packet == SocketPacket(sio.BINARY_EVENT, "/", ["message", b"\x01\x02\x03", b"\x04\x05\x06"])
    assert not decoder.waiting


@pytest.mark.parametrize(
    "messages",
    [
        [b"\x01"],  # an attachment nobody announced
        ['51-["m",{"_placeholder":true,"num":0}]', "2[\"x\"]"],  # text while attachments are due
        ['51-["m",{"_placeholder":true,"num":5}]', b"\x01"],  # placeholder out of range
        ['51-["m",{"_placeholder":true,"num":"x"}]', b"\x01"],  # placeholder not a number
    ],
    ids=["stray-attachment", "text-instead-of-attachment", "placeholder-out-of-range", "placeholder-not-int"],
)
def test_binary_refusals(messages):
    decoder = sio.PacketDecoder()
    with pytest.raises(ProtocolError):
        for msg in messages:
            decoder.feed(msg)
    assert not decoder.waiting


# -- Socket.IO: encoding ------------------------------------------------------------------------


def test_event_frame_wraps_the_json_encoded_at_publish():
    event = Event.build("inventory:updated", {"available": 3}, ["inventory:all"])
    frame = sio.event_frame(event)
    assert frame == '2["inventory:updated",' + event.json + "]"
    name, payload = json.loads(frame[1:])
    assert name == "inventory:updated"
    assert set(payload) == {"event", "type", "data", "id", "timestamp"}


def test_connect_and_connect_error():
    assert sio.encode_connect("/", "s1") == '0{"sid":"s1"}'
    assert sio.encode_connect("/custom", "s1") == '0/custom,{"sid":"s1"}'
    assert sio.encode_connect_error("/random", "Invalid namespace") == '4/random,{"message":"Invalid namespace"}'
    refused = sio.encode_connect_error("/", "token_expired", {"code": "token_expired", "message": "expired"})
    assert json.loads(refused[1:]) == {"message": "token_expired", "data": {"code": "token_expired", "message": "expired"}}
    assert sio.encode_disconnect() == "1"


def test_acks_encode_django_types_and_binary():
    assert sio.encode_ack("/", 456, [1, "2", {"3": [False]}]) == ['3456[1,"2",{"3":[false]}]']
    assert sio.encode_ack("/", 1, [{"data": {"price": Decimal("59.00")}}]) == ['31[{"data":{"price":"59.00"}}]']
    assert sio.encode_ack("/", 789, [b"\x01", b"\x02"]) == [
        '62-789[{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]', b"\x01", b"\x02",
    ]


def test_encode_event_with_attachments():
    assert sio.encode(sio.EVENT, ["message-back", b"\x01"], namespace="/custom") == [
        '51-/custom,["message-back",{"_placeholder":true,"num":0}]', b"\x01",
    ]
