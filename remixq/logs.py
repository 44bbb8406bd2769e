"""Structured log lines: `time level logger message key=value ...`, with the `extra` fields
(job_id, task_uuid, campaign_id, ...) that the code attaches to its records."""

from __future__ import annotations

import logging
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
    text = str(value)
    return f'"{text}"' if " " in text or not text else text


def configure(level: str | int = "INFO") -> None:
    """Log to stderr with the key=value formatter (idempotent)."""
    root = logging.getLogger()
    if any(isinstance(h.formatter, KeyValueFormatter) for h in root.handlers):
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(KeyValueFormatter())
    root.addHandler(handler)
    root.setLevel(level)
