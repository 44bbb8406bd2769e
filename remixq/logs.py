"""Structured log lines: `time level logger message key=value ...`, with the `extra` fields
(job_id, task_uuid, campaign_id, ...) that the code attaches to its records."""

from __future__ import annotations

import logging
import re
import sys

_STANDARD = set(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {"message", "asctime"}


class KeyValueFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        if not record.name.startswith("remixq"):
            return line  # other libraries' extras (Celery's trace data) are not ours to print
        extras = {
            k: v for k, v in record.__dict__.items() if k not in _STANDARD and not k.startswith("_")
        }
        if extras:
            line += " " + " ".join(f"{k}={_value(v)}" for k, v in sorted(extras.items()))
        return line


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
