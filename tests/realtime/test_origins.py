import pytest

from django_oda_realtime.sockets.origins import origin_allowed, parse_origin


def scope(origin=None, host="api.example.com", scheme="ws"):
    headers = [(b"host", host.encode())]
    if origin is not None:
        headers.append((b"origin", origin.encode()))
    return {"type": "websocket", "scheme": scheme, "headers": headers}


@pytest.mark.parametrize(
    "origin, allowed",
    [
        (None, True),  # not a browser
        ("https://shop.example.com", True),  # configured (tests/settings.py)
        ("https://shop.example.com:443", True),  # same origin, default port spelled out
        ("http://shop.example.com", False),  # other scheme
        ("https://shop.example.com:8443", False),  # other port
        ("https://shop.example.com.evil.com", False),  # look-alike host
        ("https://evilshop.example.com", False),
        ("null", False),
        ("https://shop.example.com/path", False),
        ("not an origin", False),
        ("http://api.example.com", True),  # same host as the request
        ("https://api.example.com", False),  # same host, other scheme than the request
        ("http://api.example.com:8080", False),
    ],
)
def test_origins_are_compared_in_full(origin, allowed):
    assert origin_allowed(scope(origin)) is allowed


def test_two_origin_headers_are_refused():
    s = scope("https://shop.example.com")
    s["headers"].append((b"origin", b"https://shop.example.com"))
    assert origin_allowed(s) is False


def test_parse_origin_defaults_ports():
    assert parse_origin("https://A.example.com") == ("https", "a.example.com", 443)
    assert parse_origin("http://localhost:8000") == ("http", "localhost", 8000)
    assert parse_origin("ftp://x") is None


@pytest.mark.django_db(transaction=True)
async def test_socket_from_a_forbidden_origin_is_refused_at_the_handshake(make_user, token, connect):
    from channels.db import database_sync_to_async

    user = await database_sync_to_async(make_user)()
    bad = await connect(token(user), headers=[(b"origin", b"https://evil.example.com")], expect_ok=False)
    assert bad.accepted is False
    good = await connect(token(user), headers=[(b"origin", b"https://shop.example.com")])
    assert good.connected_payload["data"]["userId"] == str(user.pk)
