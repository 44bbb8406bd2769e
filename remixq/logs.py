"""Structured log lines, one configuration for every process (the receiver and its writer, the
worker, beat, the simulator, the CLI): `configure`.

Two formats, chosen by REMIXQ_LOG_FORMAT (`use_format`, called when the settings are read):
`plain`, `time level logger message key=value ...` (logfmt values), and `json`, one JSON object
per line (python-json-logger) with `time`, `level`, `logger`, `message` and the same fields.
The fields are the `extra` of our own records (job_id, task_uuid, ...) and what is bound to the
request or task in progress (`bound`: campaign_id, job_id, task_uuid, celery_task_id), which
every line written meanwhile carries, a library's lines included.

Every line is redacted as it is written (remixq.security.redact): webhook tokens, URL queries,
keys, and the configured secrets registered with `hide`, in the message, the exception and
every field's value. Handlers whose formatter is not ours (gunicorn's) get the same through
`RedactingFilter`.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar, Token
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any, Literal

from pythonjsonlogger.json import JsonFormatter as _JsonFormatter

from remixq.security import redact

_STANDARD = set(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {"message", "asctime"}

LogFormat = Literal["plain", "json"]
FORMATS: tuple[LogFormat, ...] = ("plain", "json")

# What the request or task in progress is about; contextvars follow threads' and greenlets' own
# contexts, so two requests served at once never see each other's.
_BOUND: ContextVar[Mapping[str, object]] = ContextVar(
    "remixq_log_fields", default=MappingProxyType({})
)


def bind(**fields: object) -> Token[Mapping[str, object]]:
    """Add `fields` (None values left out) to every line of this context until `unbind`."""
    added = {k: v for k, v in fields.items() if v is not None}
    return _BOUND.set({**_BOUND.get(), **added})


def unbind(token: Token[Mapping[str, object]]) -> None:
    _BOUND.reset(token)


@contextmanager
def bound(**fields: object) -> Iterator[None]:
    """`fields` on every line written inside the block (by this thread or greenlet)."""
    token = bind(**fields)
    try:
        yield
    finally:
        unbind(token)


def _fields(record: logging.LogRecord) -> dict[str, object]:
    """The record's fields: what is bound, then its own extras (ours only: other libraries'
    extras, Celery's trace data, are not ours to print)."""
    fields = dict(_BOUND.get())
    if record.name.startswith("remixq"):
        fields.update(
            (k, v)
            for k, v in record.__dict__.items()
            if k not in _STANDARD and not k.startswith("_")
        )
    return fields


class KeyValueFormatter(logging.Formatter):
    """`plain`: `time level logger message key=value ...`. `scrub` cleans the line further (the
    simulator's: URLs shown as their origin)."""

    def __init__(self, scrub: Callable[[str], str] | None = None) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s %(message)s")
        self._scrub = scrub

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        fields = _fields(record)
        if fields:
            line += " " + " ".join(f"{k}={_value(v)}" for k, v in sorted(fields.items()))
        line = clean(line)
        return self._scrub(line) if self._scrub else line


class JsonFormatter(_JsonFormatter):
    """`json`: one object per line, `{"time", "level", "logger", "message", ...fields,
    "exc_info"}`, every string cleaned (and scrubbed) before it is serialized, so that a
    pattern never spans a quote of the encoding."""

    def __init__(self, scrub: Callable[[str], str] | None = None) -> None:
        super().__init__(reserved_attrs=[*_STANDARD, "message", "asctime"])
        self._scrub = scrub

    def add_fields(
        self, log_data: dict[str, Any], record: logging.LogRecord, message_dict: dict[str, Any]
    ) -> None:
        log_data["time"] = datetime.fromtimestamp(record.created, UTC).isoformat(
            timespec="milliseconds"
        )
        log_data["level"] = record.levelname
        log_data["logger"] = record.name
        log_data["message"] = record.message
        for key, value in _fields(record).items():
            log_data.setdefault(key, value)
        log_data.update(message_dict)

    def process_log_record(self, log_data: dict[str, Any]) -> dict[str, Any]:
        return {key: self._clean(value) for key, value in log_data.items()}

    def _clean(self, value: object) -> object:
        if isinstance(value, bool | int | float) or value is None:
            return value
        text = clean(str(value))
        return self._scrub(text) if self._scrub else text


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


_format: LogFormat = "plain"


def use_format(fmt: str) -> None:
    """The format of this process's lines from now on (REMIXQ_LOG_FORMAT; the CLI calls it when
    it reads the settings, before any process configures its logging)."""
    global _format
    if fmt not in FORMATS:
        raise ValueError(f"log format {fmt!r} is not one of {', '.join(FORMATS)}")
    _format = fmt


def formatter(scrub: Callable[[str], str] | None = None) -> logging.Formatter:
    """A formatter of the chosen format (for a handler of one's own: gunicorn's)."""
    return JsonFormatter(scrub) if _format == "json" else KeyValueFormatter(scrub)


def line(message: str, *, logger: str, level: int = logging.WARNING) -> str:
    """One line of the chosen format, made without the logging machinery's locks: for what a
    library prints from a signal handler (Celery's shutdown words), where taking a handler's
    lock could deadlock."""
    record = logging.LogRecord(logger, level, __file__, 0, message, (), None)
    return formatter().format(record)


class _Handler(logging.StreamHandler):  # type: ignore[type-arg]
    """The root handler `configure` installs (so that a second call finds it)."""


def configure(level: str | int = "INFO", *, scrub: Callable[[str], str] | None = None) -> None:
    """Log to stderr in the chosen format, at `level`: the one configuration of every process.
    Idempotent; a second call only changes the level. `scrub` cleans lines further."""
    root = logging.getLogger()
    if not any(isinstance(h, _Handler) for h in root.handlers):
        handler = _Handler(sys.stderr)
        handler.setFormatter(formatter(scrub))
        root.addHandler(handler)
        logging.captureWarnings(True)  # a library's warnings are lines of the same format
    root.setLevel(level)
