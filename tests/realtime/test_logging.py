"""Structured logs: one JSON object a line, connection id and user id as fields, never a token."""
import asyncio
import io
import json
import logging

from channels.db import database_sync_to_async as db
import pytest

from django_oda_realtime.commands import register
from django_oda_realtime.ops.logging import JsonFormatter, PlainFormatter, RedactSecretsFilter, RepeatThrottleFilter

JWT = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJ1c2VyX2lkIjoxfQ.c2lnbmF0dXJlLXNpZ25hdHVyZQ"


def make_record(msg, *args, exc=False, **extra) -> logging.LogRecord:
    exc_info = None
    if exc:
        try:
            raise ValueError(f"bad token {JWT}")
        except ValueError:
            import sys

            exc_info = sys.exc_info()
    record = logging.LogRecord("realtime.consumers", logging.INFO, __file__, 1, msg, args, exc_info)
    record.__dict__.update(extra)
    return record


def test_a_record_is_one_line_of_json_with_its_extra_fields():
    line = JsonFormatter().format(make_record(
        "Connected %s user=%s", "c0ffee", "42", action="connect", connection_id="c0ffee", user_id="42", code=4002))
    assert "\n" not in line
    record = json.loads(line)
    assert record["message"] == "Connected c0ffee user=42"
    assert (record["level"], record["logger"]) == ("INFO", "realtime.consumers")
    assert (record["action"], record["connection_id"], record["user_id"], record["code"]) == ("connect", "c0ffee", "42", 4002)
    assert record["time"].endswith("Z")
    assert "args" not in record and "msg" not in record and "taskName" not in record


def test_tokens_are_redacted_in_message_fields_and_tracebacks():
    record = make_record(f"GET /socket.io/?EIO=4&token={JWT}&t=1", exc=True,
                         reason=f"Bearer {JWT}", details={"header": f"Authorization: Bearer {JWT}", "list": [JWT]})
    line = JsonFormatter().format(record)
    parsed = json.loads(line)  # still valid JSON after redaction
    assert JWT not in line and JWT[:20] not in line
    assert parsed["message"] == "GET /socket.io/?EIO=4&token=[redacted]&t=1"
    assert "Traceback" in parsed["exc"] and "ValueError: bad token [redacted-jwt]" in parsed["exc"]
    assert JWT not in PlainFormatter("%(message)s").format(make_record(f"x {JWT}", exc=True))


@pytest.fixture
def json_log():
    """The realtime loggers' records, formatted as in production (filter + JSON formatter)."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(RedactSecretsFilter())
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("realtime")
    old_level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)

    def records() -> list[dict]:
        return [json.loads(line) for line in stream.getvalue().splitlines()]

    yield records
    logger.removeHandler(handler)
    logger.setLevel(old_level)


def crash(caller, data):
    raise RuntimeError("the handler broke")


@pytest.mark.django_db(transaction=True)
async def test_connect_error_and_disconnect_lines_carry_ids_and_no_token(json_log, connect, make_user, token, settings):
    register("test:logCrash", crash)
    user = await db(make_user)()
    raw = token(user)
    sock = await connect(raw)
    connection_id = sock.connected_payload["data"]["connectionId"]
    reply = await sock.command("test:logCrash", {"token": raw})
    assert reply["error"]["code"] == "internal_error"
    await sock.close()

    settings.REALTIME = {**settings.REALTIME, "MAX_CONNECTIONS_PER_USER": 1}
    first = await connect(raw)
    second = await connect(raw, expect_ok=False)
    assert (await second.receive_event("error"))["code"] == "too_many_connections"
    await first.close()

    records = json_log()
    mine = [r for r in records if r.get("connection_id") == connection_id]
    assert [(r["action"], r.get("reason")) for r in mine] == [("connect", None), ("error", None), ("disconnect", "client")]
    assert all(r["user_id"] == str(user.pk) for r in mine)
    error = mine[1]
    assert error["command"] == "test:logCrash" and "RuntimeError: the handler broke" in error["exc"]
    refusal = [r for r in records if r.get("action") == "refuse"]
    assert [(r["reason"], r["user_id"]) for r in refusal] == [("too_many_connections", str(user.pk))]
    assert refusal[0]["connection_id"] not in (connection_id, "-", "")
    assert raw not in json.dumps(records)


@pytest.mark.django_db(transaction=True)
@pytest.mark.slow
async def test_socketio_connections_log_the_same_fields(make_user, token):
    """Through daphne with LOG_FORMAT=json: a Socket.IO connect, a refused CONNECT, a client close."""
    from tests.servers import ServerProcess
    from tests.socketio.wire import RawSocket

    user = await db(make_user)()
    raw = token(user)
    with ServerProcess(redis_url=None, env={"LOG_FORMAT": "json"}) as server:
        sock = await RawSocket.open(server.ws_url)
        answer = await sock.connect({"token": raw})
        assert answer.startswith("40"), answer
        sid = json.loads(answer[2:])["sid"]
        await sock.close()
        refused = await RawSocket.open(server.ws_url)
        assert (await refused.connect({"token": "not-a-token"})).startswith("44")
        await refused.close()
        await asyncio.sleep(0.3)
        output = server.output()
    records = [json.loads(line) for line in output.splitlines() if line.startswith("{")]
    mine = [r for r in records if r.get("connection_id") == sid and r["logger"] != "realtime.engineio"]
    assert [(r["action"], r.get("reason")) for r in mine] == [("connect", None), ("disconnect", "client")], records
    # The Engine.IO session's own line carries the connection id too (issue #17).
    assert [r["action"] for r in records if r.get("connection_id") == sid and r["logger"] == "realtime.engineio"] == ["close"]
    assert all(r["user_id"] == str(user.pk) and r["protocol"] == "socketio" for r in mine)
    assert [r["reason"] for r in records if r.get("action") == "refuse"] == ["token_invalid"]
    assert raw not in output and "not-a-token" not in output


def test_a_repeated_library_error_is_one_line_then_held_back_and_counted():
    throttle = RepeatThrottleFilter(interval=0.2)
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(PlainFormatter("%(levelname)s %(message)s"))
    logger = logging.getLogger("test.throttled")
    logger.addFilter(throttle)
    logger.addHandler(handler)
    logger.propagate = False
    try:
        for _ in range(5):
            try:
                raise ConnectionError("Connection refused")
            except ConnectionError:
                logger.exception("Unexpected exception in receive task")
        import time

        time.sleep(0.25)
        try:
            raise ConnectionError("Connection refused")
        except ConnectionError:
            logger.exception("Unexpected exception in receive task")
    finally:
        logger.removeHandler(handler)
        logger.removeFilter(throttle)
    lines = stream.getvalue().splitlines()
    assert lines == [
        "ERROR Unexpected exception in receive task ConnectionError: Connection refused",
        "ERROR Unexpected exception in receive task ConnectionError: Connection refused (4 more held back in the last 0.2 s)",
    ]


def test_ready_redacts_the_access_log_loggers_whatever_logging_says():
    """RealtimeConfig.ready() filtered daphne's runserver access log and the other URL loggers itself
    (this project's LOGGING names no filter for them); a record made there loses its token."""
    from django_oda_realtime.ops.logging import URL_LOGGERS

    stream = io.StringIO()
    handler = logging.StreamHandler(stream)  # a handler of the test's own, with no filter
    for name in URL_LOGGERS:
        logger = logging.getLogger(name)
        assert any(isinstance(f, RedactSecretsFilter) for f in logger.filters), name
    logger = logging.getLogger("django.channels.server")
    logger.addHandler(handler)
    try:
        logger.warning("HTTP %(method)s %(path)s", {"method": "GET", "path": f"/socket.io/?EIO=4&token={JWT}"})
    finally:
        logger.removeHandler(handler)
    assert stream.getvalue() == "HTTP GET /socket.io/?EIO=4&token=[redacted]\n"


def test_every_configured_handler_is_filtered_after_asgi_setup():
    """asgi.py's get_asgi_application() runs django.setup() again, which applies LOGGING anew (new
    handlers) without making the apps ready again: realtime_application() filters them."""
    import django
    from django_oda_realtime.asgi import realtime_application

    django.setup(set_prefix=False)
    # A handler as a project's LOGGING (or Django's DEFAULT_LOGGING) makes it, without our filter.
    fresh = logging.StreamHandler(io.StringIO())
    logging.getLogger("django").addHandler(fresh)
    try:
        assert not any(isinstance(f, RedactSecretsFilter) for f in fresh.filters)
        realtime_application(lambda scope, receive, send: None)
        assert any(isinstance(f, RedactSecretsFilter) for f in fresh.filters)
        assert all(any(isinstance(f, RedactSecretsFilter) for f in h.filters) for h in logging.getLogger().handlers)
        assert any(isinstance(f, RedactSecretsFilter) for f in logging.lastResort.filters)
    finally:
        logging.getLogger("django").removeHandler(fresh)
