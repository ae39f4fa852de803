"""A local Web Push service for the tests: an HTTP server on 127.0.0.1 that checks each message
as a push service and a browser would: the VAPID JWT's ES256 signature (RFC 8292), then decrypts
the aes128gcm payload (RFC 8291) with the subscription's private key and auth secret.

``Browser`` makes a subscription the way ``PushManager.subscribe`` does: a fresh P-256 key pair and
a 16-byte auth secret, the public key and secret given to the application server as base64url.
"""
import base64
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
import json
import os
import threading

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
import http_ece
import jwt


def b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class Browser:
    """One browser's push subscription keys."""

    def __init__(self) -> None:
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.auth = os.urandom(16)

    def keys(self) -> dict:
        public = self.key.public_key().public_bytes(serialization.Encoding.X962,
                                                    serialization.PublicFormat.UncompressedPoint)
        return {"p256dh": b64url(public), "auth": b64url(self.auth)}

    def decrypt(self, body: bytes) -> bytes:
        return http_ece.decrypt(body, private_key=self.key, auth_secret=self.auth, version="aes128gcm")


@dataclass
class Received:
    path: str
    headers: dict
    body: bytes
    claims: dict = field(default_factory=dict)
    vapid_key: str = ""


class PushService:
    """``with PushService() as push:`` subscriptions at ``push.endpoint(name)``; ``push.status[name]`` answers."""

    def __init__(self) -> None:
        self.received: list[Received] = []
        self.status: dict[str, int] = {}
        self.retry_after: dict[str, str] = {}
        self.problems: list[str] = []
        self.arrived = threading.Condition()
        service = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                got = Received(self.path, {k.lower(): v for k, v in self.headers.items()}, body)
                try:
                    service.check_vapid(got)
                except Exception as e:  # noqa: BLE001  reported to the test
                    service.problems.append(f"VAPID: {type(e).__name__}: {e}")
                    self.send_response(401)
                    self.end_headers()
                    return
                with service.arrived:
                    service.received.append(got)
                    service.arrived.notify_all()
                name = self.path.rsplit("/", 1)[-1]
                self.send_response(service.status.get(name, 201))
                if name in service.retry_after:
                    self.send_header("Retry-After", service.retry_after[name])
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.origin = f"http://127.0.0.1:{self.server.server_port}"

    def endpoint(self, name: str) -> str:
        return f"{self.origin}/push/{name}"

    def check_vapid(self, got: Received) -> None:
        """``Authorization: vapid t=<JWT>, k=<public key>``: an ES256 JWT for this origin, valid now."""
        scheme, _, params = got.headers.get("authorization", "").partition(" ")
        assert scheme == "vapid", f"scheme {scheme!r}"
        fields = dict(p.strip().split("=", 1) for p in params.split(","))
        public = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), unb64url(fields["k"]))
        got.claims = jwt.decode(fields["t"], key=public, algorithms=["ES256"], audience=self.origin,
                                options={"require": ["exp", "aud", "sub"]})
        got.vapid_key = fields["k"]

    def wait_for(self, count: int, timeout: float = 10.0) -> list[Received]:
        with self.arrived:
            self.arrived.wait_for(lambda: len(self.received) >= count, timeout)
        return list(self.received)

    def __enter__(self) -> "PushService":
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()


def decrypted(browser: Browser, got: Received) -> dict:
    assert got.headers.get("content-encoding") == "aes128gcm"
    return json.loads(browser.decrypt(got.body))
