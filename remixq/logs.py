"""Structured log lines: `time level logger message key=value ...`, with the `extra` fields
(job_id, task_uuid, campaign_id, ...) that the code attaches to its records.

Every line is redacted as it is written (remixq.security.redact): webhook tokens, URL queries,
keys, and the configured secrets registered with `hide`. Handlers whose formatter is not ours
(gunicorn's) get the same through `RedactingFilter`.
"""

from __future__ import annotations

import logging
import re
import sys

from remixq.security import redact

_STANDARD = set(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {"message", "asctime"}


class KeyValueFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        if not record.name.startswith("remixq"):
            # Other libraries' extras (Celery's trace data) are not ours to print.
            return clean(line)
        extras = {
            k: v for k, v in record.__dict__.items() if k not in _STANDARD and not k.startswith("_")
        }
        if extras:
            line += " " + " ".join(f"{k}={_value(v)}" for k, v in sorted(extras.items()))
        return clean(line)


# Secrets shorter than this are not searched for literally: they would match ordinary words
# (the patterns of `redact` still apply to them).
MIN_HIDDEN_LENGTH = 8
_HIDDEN: set[str] = set()


def hide(*values: str | None) -> None:
    """Clean these values (the configured API key and webhook secret) out of every log line
    this process writes from now on; the CLI registers them when it reads the settings."""
    _HIDDEN.update(v for v in values if v and len(v) >= MIN_HIDDEN_LENGTH)


def clean(text: str) -> str:
    """`text` as it may be logged: redacted, and without the secrets given to `hide`."""
    return redact(text, sorted(_HIDDEN, key=len, reverse=True))


class RedactingFilter(logging.Filter):
    """Cleans a record before a handler with a foreign formatter writes it: the message is
    rendered now, and so are the exception and the stack, which formatters print from the
    record's cached text."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg, record.args = clean(record.getMessage()), ()
        if record.exc_info and not record.exc_text:
            record.exc_text = _PLAIN.formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = clean(record.exc_text)
        if record.stack_info:
            record.stack_info = clean(record.stack_info)
        return True


_PLAIN = logging.Formatter()


def _value(value: object) -> str:
    """A value as logfmt writes it: bare when it is one plain token; else quoted, with the
    quote, the backslash and control characters escaped, so one record stays one line and
    every `key=value` pair reads back as written."""
    text = str(value)
    if text and not _NEEDS_QUOTES.search(text):
        return text
    return '"' + _ESCAPE.sub(_escaped, text) + '"'


_NEEDS_QUOTES = re.compile(r'[\s"=\\]|[\x00-\x1f\x7f]')
_ESCAPE = re.compile(r'["\\]|[\x00-\x1f\x7f]')
_NAMED = {'"': '\\"', "\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escaped(match: re.Match[str]) -> str:
    char = match.group()
    return _NAMED.get(char) or f"\\u{ord(char):04x}"


def configure(level: str | int = "INFO") -> None:
    """Log to stderr with the key=value formatter (idempotent)."""
    root = logging.getLogger()
    if any(isinstance(h.formatter, KeyValueFormatter) for h in root.handlers):
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(KeyValueFormatter())
    root.addHandler(handler)
    root.setLevel(level)
