"""The client address behind proxies: X-Forwarded-For only from trusted proxies."""
import pytest
from django.test import RequestFactory, override_settings

from django_oda_realtime.server.clientaddr import client_address, request_address, resolve

PROXIES = {"TRUSTED_PROXIES": ["127.0.0.1", "10.0.0.0/8"]}


@pytest.mark.parametrize(
    "peer, forwarded, expected",
    [
        ("203.0.113.5", ["6.6.6.6"], "203.0.113.5"),  # not a proxy: the header is the client's own claim
        ("127.0.0.1", ["198.51.100.7"], "198.51.100.7"),
        ("127.0.0.1", ["6.6.6.6, 198.51.100.7"], "198.51.100.7"),  # the client's forged hop is left of the real one
        ("127.0.0.1", ["198.51.100.7, 10.1.2.3"], "198.51.100.7"),  # two proxies
        ("127.0.0.1", ["10.1.2.3"], "10.1.2.3"),  # only proxies: the farthest one
        ("127.0.0.1", [], "127.0.0.1"),
        ("127.0.0.1", ["not-an-ip, 198.51.100.7"], "198.51.100.7"),
        ("127.0.0.1", ["198.51.100.7, garbage"], "127.0.0.1"),
        (None, ["1.2.3.4"], "unknown"),
    ],
    ids=["untrusted-peer", "one-proxy", "forged-hop", "two-proxies", "all-trusted", "no-header",
         "garbage-left", "garbage-right", "no-peer"],
)
def test_resolve(peer, forwarded, expected):
    with override_settings(REALTIME=PROXIES):
        assert resolve(peer, forwarded) == expected


def test_without_trusted_proxies_the_header_is_ignored():
    assert resolve("127.0.0.1", ["198.51.100.7"]) == "127.0.0.1"


@override_settings(REALTIME={"TRUSTED_PROXIES": "127.0.0.1, 10.0.0.0/8"})
def test_comma_separated_setting_and_scope_and_request():
    scope = {"client": ("127.0.0.1", 5000), "headers": [(b"x-forwarded-for", b"6.6.6.6, 198.51.100.9")]}
    assert client_address(scope) == "198.51.100.9"
    request = RequestFactory().get("/", HTTP_X_FORWARDED_FOR="198.51.100.10", REMOTE_ADDR="10.0.0.2")
    assert request_address(request) == "198.51.100.10"
