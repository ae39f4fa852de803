"""Docs that do not lose events (issue #17): every client example subscribes in its connect
handler, and every reason a server can refuse or close a socket with is in the docs' tables."""
import re

from tests.servers import ROOT

DOCS = [ROOT / "README.md", ROOT / "docs" / "socketio.md", ROOT / "docs" / "protocol.md"]


def js_blocks(path):
    return re.findall(r"```js\n(.*?)```", path.read_text(), re.S)


def test_every_client_example_subscribes_on_connect():
    checked = 0
    for path in DOCS:
        for block in js_blocks(path):
            for match in re.finditer(r"subscribe:", block):
                before = block[:match.start()]
                handler = max(before.rfind('on("connect"'), before.rfind("=== 'connected'"), before.rfind('=== "connected"'))
                assert handler >= 0, f"{path.name}: a subscription outside a connect handler:\n{block}"
                checked += 1
    assert checked >= 3


def reasons_in_code() -> set[str]:
    """Every refusal or close reason string the server sends (auth errors and consumers' closes)."""
    source = "".join((ROOT / "django_oda_realtime" / name).read_text()
                     for name in ("auth.py", "sockets/consumers.py", "socketio/consumer.py", "accounts/receivers.py", "server/drain.py"))
    reasons = set(re.findall(r'AuthError\("([a-z_]+)"', source))
    reasons |= set(re.findall(r'close\(CloseCode\.[A-Z_]+, "([a-z_]+)"', source))
    reasons |= set(re.findall(r'close_sockets\([^,]+, CloseCode\.[A-Z_]+, "([a-z_]+)"', source))
    reasons |= set(re.findall(r'REASON = "([a-z_]+)"', source))
    reasons |= set(re.findall(r'close_with_error\(\s*"([a-z_]+)"', source))
    return reasons - {"connect_timeout"}  # a connection that never connected a namespace: nobody to tell


def table_codes(path) -> set[str]:
    return set(re.findall(r"^\| `([A-Za-z_ ]+)` \|", path.read_text(), re.M))


def test_every_reason_is_in_the_tables():
    reasons = reasons_in_code()
    assert {"token_expired", "too_many_connections", "unavailable", "server_shutdown", "rate_limited"} <= reasons
    missing = reasons - table_codes(ROOT / "docs" / "protocol.md") - table_codes(ROOT / "docs" / "socketio.md")
    assert not missing, f"not documented: {sorted(missing)}"
