"""Origins against a real daphne: compared in full (scheme, host, port); refused at the handshake (HTTP 403).

The server allows ``https://shop.example.com`` (REALTIME_ALLOWED_ORIGINS, tests/servers.py)
and its own origin. The unit table of ``origin_allowed`` is tests/realtime/test_origins.py;
this checks what a browser would meet on the wire.
"""
from channels.db import database_sync_to_async
import pytest
import websockets

from tests.hardening.support import connected, hardened_server, raw_websocket, ws_connect

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.redis]


@pytest.fixture(scope="module")
def server(module_prefix):
    with hardened_server(module_prefix) as s:
        yield s


REFUSED = [
    "null",  # sandboxed iframes, file:// pages, some redirects
    "https://shop.example.com.evil.com",  # look-alike: the allowed host as a prefix
    "https://evilshop.example.com",  # look-alike: the allowed host as a suffix
    "https://shop-example.com",
    "http://shop.example.com",  # allowed host, other scheme
    "https://shop.example.com:8443",  # allowed host, other port
    "https://user@shop.example.com",
    "https://shop.example.com/path",
    "https://xn--shp-sna.example.com",  # a punycode look-alike (shöp)
    "http://localhost",  # the server's host name, not its origin (port missing)
]
# Not origins at all: autobahn (inside daphne) answers 400 before the application is asked.
MALFORMED = ["shop.example.com", ""]


async def handshake_status(server, raw_token, origin) -> int:
    try:
        ws = await ws_connect(server, raw_token, origin=origin)
    except websockets.InvalidStatus as e:
        return e.response.status_code
    await ws.close()
    return 101


async def test_a_forbidden_origin_gets_http_403_at_the_handshake(server, make_user, token):
    user = await database_sync_to_async(make_user)()
    statuses = {origin: await handshake_status(server, token(user), origin) for origin in REFUSED + MALFORMED}
    assert {o: s for o, s in statuses.items() if o in REFUSED and s != 403} == {}
    assert {o: s for o, s in statuses.items() if o in MALFORMED and s not in (400, 403)} == {}


async def test_allowed_origins_connect(server, make_user, token):
    user = await database_sync_to_async(make_user)()
    for origin in ("https://shop.example.com", "https://SHOP.example.com:443", f"http://127.0.0.1:{server.port}", None):
        ws = await connected(server, token(user), origin=origin)
        await ws.close()


async def test_two_origin_headers_are_refused(server, make_user, token):
    user = await database_sync_to_async(make_user)()
    with pytest.raises(ConnectionError, match="403"):
        raw_websocket(server.port, f"/ws/?token={token(user)}",
                      headers={"Origin": "https://shop.example.com\r\nOrigin: https://evil.example.com"})
