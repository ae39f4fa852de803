"""Request bodies over ``MAX_REQUEST_BODY_BYTES`` are refused by ``manage.py serve`` before they are
read (issue #11: daphne read a 300 MiB POST into temp files before the view's 413).

Raw sockets against a real ``manage.py serve``: these tests go through daphne's and Twisted's HTTP
parser, where the limit hooks in (django_oda_realtime/server/serving.py ``BodyLimitedRequest``), so a daphne or
Twisted upgrade that stops calling those hooks fails them.
"""
from datetime import datetime, timezone
import json
import os
from pathlib import Path
import select
import shutil
import socket
import tempfile
import time

import pytest

from shopify_sync.webhooks import sign
from tests.hardening.support import rss_mb
from tests.servers import ServerProcess

LIMIT = 2 * 1024 * 1024
SECRET = "whsec-body-limit-0123456789"
WEBHOOK = "/shopify/webhooks/"
MiB = 1024 * 1024

pytestmark = pytest.mark.django_db(transaction=True)  # the server stores webhooks in the test database


@pytest.fixture(scope="module")
def server(django_db_setup):
    tmpdir = tempfile.mkdtemp(prefix="bodylimit-")
    env = {"TMPDIR": tmpdir, "REALTIME_MAX_REQUEST_BODY_BYTES": str(LIMIT), "SHOPIFY_WEBHOOK_SECRET": SECRET}
    try:
        with ServerProcess(redis_url=None, env=env) as srv:
            srv.tmpdir = tmpdir
            yield srv
    finally:
        shutil.rmtree(tmpdir, ignore_errors=True)


def temp_file_bytes(server) -> int:
    """Bytes in the files the server process holds open under its TMPDIR (deleted or not)."""
    total = 0
    fd_dir = Path(f"/proc/{server.proc.pid}/fd")
    for fd in fd_dir.iterdir():
        try:
            if os.readlink(fd).startswith(server.tmpdir):
                total += os.stat(fd).st_size
        except OSError:
            continue  # closed meanwhile
    return total


def open_request(server, head_lines: list[str]) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=10)
    sock.sendall(("\r\n".join(head_lines) + "\r\n\r\n").encode())
    return sock


def read_response(sock: socket.socket, timeout: float = 10.0) -> tuple[bytes, bytes, bool]:
    """Status line and body of the server's answer, and whether the server then ended the stream."""
    sock.settimeout(timeout)
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = next((int(line.split(b":", 1)[1]) for line in head.split(b"\r\n")
                   if line.lower().startswith(b"content-length:")), 0)
    ended = False
    while len(body) < length:
        chunk = sock.recv(65536)
        if not chunk:
            ended = True
            break
        body += chunk
    if not ended:
        try:
            ended = sock.recv(65536) == b""
        except (ConnectionResetError, socket.timeout):
            ended = False
    return head.split(b"\r\n", 1)[0], body, ended


def headers(path: str, port: int, *extra: str) -> list[str]:
    return [f"POST {path} HTTP/1.1", f"Host: 127.0.0.1:{port}", "Content-Type: application/json", *extra]


def test_a_huge_content_length_is_refused_before_the_body_is_read(server):
    rss_before = rss_mb(server.proc.pid)
    sock = open_request(server, headers(WEBHOOK, server.port, f"Content-Length: {300 * MiB}"))
    try:
        sock.sendall(b"x" * 65536)  # the start of the body, as an uploading client sends it
        status, body, ended = read_response(sock)
        assert status == b"HTTP/1.1 413 Content Too Large"
        assert json.loads(body) == {"error": "payload_too_large"}
        assert ended, "the server keeps the connection open after refusing the body"
        # What the client still sends is not stored: no temp file, no memory.
        try:
            for _ in range(320):
                sock.sendall(b"x" * 65536)
        except OSError:
            pass  # the server has closed the connection
        assert temp_file_bytes(server) < 1 * MiB
        assert rss_mb(server.proc.pid) - rss_before < 16
    finally:
        sock.close()


def test_no_100_continue_for_a_refused_body(server):
    sock = open_request(server, headers(WEBHOOK, server.port, f"Content-Length: {LIMIT + 1}", "Expect: 100-continue"))
    try:
        status, _, ended = read_response(sock)
    finally:
        sock.close()
    assert (status, ended) == (b"HTTP/1.1 413 Content Too Large", True)


def test_a_chunked_body_is_cut_off_at_the_limit(server):
    sock = open_request(server, headers(WEBHOOK, server.port, "Transfer-Encoding: chunked"))
    chunk = b"%x\r\n%s\r\n" % (65536, b"y" * 65536)
    sent = 0
    answered = False
    try:
        # Never the terminating chunk: a server that waits for the whole body never answers.
        deadline = time.monotonic() + 20
        while not answered and sent < 4 * LIMIT and time.monotonic() < deadline:
            try:
                sock.sendall(chunk)
            except OSError:
                break  # closed by the server: its answer is in our receive buffer
            sent += 65536
            answered = bool(select.select([sock], [], [], 0)[0])
        status, body, ended = read_response(sock)
    finally:
        sock.close()
    assert status == b"HTTP/1.1 413 Content Too Large"
    assert json.loads(body) == {"error": "payload_too_large"}
    assert ended
    assert temp_file_bytes(server) < 1 * MiB


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_a_webhook_under_the_limit_still_works(server, chunked):
    payload = json.dumps({"id": 1, "title": "Linen Shirt", "variants": [], "updated_at": "2026-01-01T00:00:00Z",
                          "body_html": "x" * 200_000}).encode()
    event = f"evt-body-limit-{int(chunked)}-{time.monotonic_ns()}"
    lines = headers(WEBHOOK, server.port, f"X-Shopify-Hmac-Sha256: {sign(payload, SECRET)}",
                    "X-Shopify-Topic: products/update", "X-Shopify-Shop-Domain: oda.myshopify.com",
                    "X-Shopify-API-Version: 2025-01",
                    "X-Shopify-Triggered-At: " + datetime.now(timezone.utc).isoformat(),
                    f"X-Shopify-Event-Id: {event}", f"X-Shopify-Webhook-Id: {event}", "Connection: close")
    if chunked:
        sock = open_request(server, [*lines, "Transfer-Encoding: chunked"])
        for start in range(0, len(payload), 50_000):
            part = payload[start:start + 50_000]
            sock.sendall(b"%x\r\n%s\r\n" % (len(part), part))
        sock.sendall(b"0\r\n\r\n")
    else:
        sock = open_request(server, [*lines, f"Content-Length: {len(payload)}"])
        sock.sendall(payload)
    try:
        status, body, _ = read_response(sock)
    finally:
        sock.close()
    assert status == b"HTTP/1.1 200 OK", body
    assert json.loads(body) == {"status": "accepted"}


def test_the_server_refuses_no_websocket_or_bodiless_request(server):
    sock = open_request(server, ["GET /healthz HTTP/1.1", f"Host: 127.0.0.1:{server.port}", "Connection: close"])
    try:
        status, body, _ = read_response(sock)
    finally:
        sock.close()
    assert status == b"HTTP/1.1 200 OK"


def test_an_ordinary_client_sending_the_whole_body_reads_the_413(server):
    """urllib writes the whole body before it reads: the refused bytes are discarded unread, so
    it sees the 413 rather than a connection reset."""
    import urllib.error
    import urllib.request

    request = urllib.request.Request(f"{server.url}{WEBHOOK}", data=b"x" * (64 * MiB), method="POST",
                                     headers={"Content-Type": "application/json"})
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=30)
    assert refused.value.code == 413
    assert json.loads(refused.value.read()) == {"error": "payload_too_large"}
    assert temp_file_bytes(server) < 1 * MiB
