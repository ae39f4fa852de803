"""Logging of the add-on: a filter that removes tokens from every record (query strings,
headers, JWTs), a filter that thins out a library's repeated error, and formatters for
plain text and one-JSON-object-a-line (``LOG_FORMAT=json``).
"""
import json
import logging
import re
import time

_PATTERNS = [
    (re.compile(r"(?i)([?&](?:token|access|refresh|auth)=)[^&\s\"']+"), r"\1[redacted]"),
    (re.compile(r"(?i)(bearer[ .])[A-Za-z0-9._~+/=-]+"), r"\1[redacted]"),
    (re.compile(r"eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*"), "[redacted-jwt]"),
]


def redact(text: str) -> str:
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text


class RedactSecretsFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:
            return True
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True


# Loggers that write request paths (with their query strings) or headers: daphne's runserver access
# log (``django.channels.server``), daphne, Django's runserver and request loggers, uvicorn.
URL_LOGGERS = (
    "django.channels.server", "daphne.server", "daphne.http_protocol", "daphne.ws_protocol", "daphne.cli",
    "django.server", "django.request", "django.security.csrf", "uvicorn.access", "uvicorn.error",
)


def _add_redaction(filterer) -> None:
    if not any(isinstance(f, RedactSecretsFilter) for f in filterer.filters):
        filterer.addFilter(RedactSecretsFilter())


def install_redaction() -> None:
    """Tokens out of every log, whatever the project's LOGGING (``RealtimeConfig.ready()``): the
    filter on the loggers that write URLs (a record is filtered where it is made), and on every
    handler configured by then, ``logging.lastResort`` included (records propagated from elsewhere)."""
    for name in URL_LOGGERS:
        _add_redaction(logging.getLogger(name))
    handlers = set(logging.getLogger().handlers)
    for logger in list(logging.Logger.manager.loggerDict.values()):
        if isinstance(logger, logging.Logger):
            handlers.update(logger.handlers)
    if logging.lastResort is not None:
        handlers.add(logging.lastResort)
    for handler in handlers:
        _add_redaction(handler)


class RepeatThrottleFilter(logging.Filter):
    """At most one record per ``interval`` seconds for each message of a logger, on one line.

    channels-redis's pub/sub layer logs "Unexpected exception in receive task" with a full
    traceback every second while Redis is down. Here the first record passes with the
    exception's type and message instead of the traceback, the next ones are held back for
    ``interval`` seconds, and the next record to pass says how many were held back.
    """

    def __init__(self, interval: float = 60.0) -> None:
        super().__init__()
        self.interval = interval
        self._last: dict[str, float] = {}
        self._held: dict[str, int] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        key = str(record.msg)
        now = time.monotonic()
        last = self._last.get(key)
        if last is not None and now - last < self.interval:
            self._held[key] = self._held.get(key, 0) + 1
            return False
        self._last[key] = now
        message = record.getMessage()
        if record.exc_info and record.exc_info[1] is not None:
            error = record.exc_info[1]
            message = f"{message} {type(error).__name__}: {error}"
            record.exc_info, record.exc_text = None, None
        held = self._held.pop(key, 0)
        if held:
            message += f" ({held} more held back in the last {self.interval:g} s)"
        record.msg, record.args = message, None
        return True


# Attributes every LogRecord has; anything else on a record came from ``extra=``.
_RECORD_FIELDS = frozenset(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {"message", "asctime"}


def _clean(value: object) -> object:
    """``value`` made JSON-ready with every string redacted (nested lists and dicts too)."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set)):
        return [_clean(v) for v in value]
    if value is None or isinstance(value, (bool, int, float)):
        return value
    return redact(str(value))


class JsonFormatter(logging.Formatter):
    """One JSON object a line: ``time``, ``level``, ``logger``, ``message``, the ``extra=``
    fields (e.g. ``connection_id``, ``user_id``, ``reason``) and ``exc`` for a traceback.

    Every string is redacted again here: ``RedactSecretsFilter`` cleans the message only,
    and extras and tracebacks could carry a token too.
    """

    converter = time.gmtime  # timestamps in UTC

    def format(self, record: logging.LogRecord) -> str:
        out = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S") + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in record.__dict__.items():
            if key not in _RECORD_FIELDS and not key.startswith("_") and key not in out:
                out[key] = value
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        if record.stack_info:
            out["stack"] = self.formatStack(record.stack_info)
        return json.dumps(_clean(out), ensure_ascii=False, separators=(",", ":"))


class PlainFormatter(logging.Formatter):
    """The standard text format, with the whole line (tracebacks included) redacted."""

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))
