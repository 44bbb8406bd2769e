"""gunicorn's lines for the receiver carry no webhook token: the logger class that
webhook_receiver.server hands gunicorn, fed the messages gunicorn writes when the app raises and
when a request line is malformed (the real server's lines: tests/e2e/test_log_secrets.py)."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from gunicorn.config import Config

from remixq.logs import KeyValueFormatter
from remixq.security import REDACTED, webhook_token, webhook_url
from webhook_receiver.gunicorn_logs import RedactingLogger
from webhook_receiver.server import gunicorn_options

TASK = "5f0c8e1a-1111-4111-8111-111111111111"
TOKEN = webhook_token(b"unit-secret", TASK)
PATH = webhook_url("", b"unit-secret", TASK)


@pytest.fixture
def root_restored() -> Iterator[None]:
    """The logger class configures the process's root logger, as the receiver wants; a test
    process gets its own back."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def _logger(tmp_path: Path) -> tuple[RedactingLogger, Path]:
    log_file = tmp_path / "gunicorn.log"
    cfg = Config()
    cfg.set("errorlog", str(log_file))
    cfg.set("loglevel", "warning")
    return RedactingLogger(cfg), log_file


def test_the_receiver_serves_with_the_redacting_logger() -> None:
    assert gunicorn_options("127.0.0.1", 0)["logger_class"] is RedactingLogger


def test_error_handling_and_invalid_request_lines_lose_the_token(
    tmp_path: Path, root_restored: None
) -> None:
    logger, log_file = _logger(tmp_path)
    try:
        raise ValueError(f"the app failed on {PATH}")
    except ValueError:
        logger.exception("Error handling request %s %s", "POST", PATH)  # gunicorn's words
    # gunicorn formats this one itself, before logging it
    invalid = f"Invalid request from ip=127.0.0.1: Invalid HTTP request line: '{PATH}\\x7f'"
    logger.warning(invalid)
    logger.error("Error handling request %s", f"/webhooks/runware?task={TASK}&token={TOKEN}")
    text = log_file.read_text()
    assert TOKEN not in text
    assert f"Error handling request POST /webhooks/runware/{TASK}/{REDACTED}" in text
    assert f"ValueError: the app failed on /webhooks/runware/{TASK}/{REDACTED}" in text
    assert f"Invalid HTTP request line: '/webhooks/runware/{TASK}/{REDACTED}'" in text
    assert f"Error handling request /webhooks/runware?{REDACTED}" in text


def test_setting_up_again_keeps_one_filter_and_our_loggers_get_the_redacting_handler(
    tmp_path: Path, root_restored: None
) -> None:
    logger, _ = _logger(tmp_path)
    logger.setup(logger.cfg)  # gunicorn does so again on SIGHUP
    assert len(logger.error_log.filters) == 1
    assert all(len(h.filters) == 1 for h in logger.error_log.handlers)
    # The receiver's own loggers (Flask's app logger, the writer's) reach the key=value handler.
    root = logging.getLogger()
    assert any(isinstance(h.formatter, KeyValueFormatter) for h in root.handlers)
