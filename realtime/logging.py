"""A logging filter that removes tokens from every record (query strings, headers, JWTs)."""
import logging
import re

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
