import json

import pytest

from django_oda_realtime.events import Event
from django_oda_realtime.exceptions import ProtocolError
from django_oda_realtime.protocol import native


def test_decode_a_full_message():
    msg = native.decode('{"event":"subscribe:inventory","data":{"locationIds":["1"]},"ack":7}')
    assert (msg.event, msg.data, msg.ack) == ("subscribe:inventory", {"locationIds": ["1"]}, 7)


def test_decode_without_data_or_ack():
    assert native.decode('{"event":"subscribe:notifications"}') == native.ClientMessage("subscribe:notifications")


@pytest.mark.parametrize(
    "frame, code",
    [
        ("not json", "invalid_json"),
        ("[1,2]", "invalid_frame"),
        ('{"data":{}}', "invalid_frame"),
        ('{"event":5}', "invalid_frame"),
        ('{"event":""}', "invalid_frame"),
        ('{"event":"x","ack":-1}', "invalid_frame"),
        ('{"event":"x","ack":true}', "invalid_frame"),
        ('{"event":"x","ack":"1"}', "invalid_frame"),
        ('{"event":"x","extra":1}', "invalid_frame"),
        ("[" * 100000, "invalid_json"),
        (b"\x00\x01", "binary_frame"),
    ],
)
def test_decode_refuses_bad_frames_with_a_code(frame, code):
    with pytest.raises(ProtocolError) as info:
        native.decode(frame)
    assert info.value.code == code


def test_event_frame_is_the_json_encoded_at_publish():
    event = Event.build("order:updated", {"orderId": "1"}, ["orders:all"])
    assert native.event_frame(event) is event.json


def test_ack_and_error_frames():
    assert json.loads(native.encode_ack("subscribe:orders", 3, data={"rooms": []})) == {
        "event": "subscribe:orders", "ack": 3, "data": {"rooms": []}
    }
    assert json.loads(native.encode_ack("x", 4, error={"code": "c", "message": "m"}))["error"] == {"code": "c", "message": "m"}
    err = json.loads(native.encode_error("inventory:updateError", "not_found", "No such item", {"inventoryItemId": "9"}))
    assert err["data"] == {"error": "No such item", "code": "not_found", "request": {"inventoryItemId": "9"}}
    assert (err["error"], err["code"], err["event"]) == ("No such item", "not_found", "inventory:updateError")
