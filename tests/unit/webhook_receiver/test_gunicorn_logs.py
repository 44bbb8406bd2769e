"""gunicorn's lines for the receiver carry no webhook token: the logger class that
webhook_receiver.server hands gunicorn, fed the messages gunicorn writes when the app raises and
when a request line is malformed (the real server's lines: tests/e2e/test_log_secrets.py)."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
from gunicorn.config import Config

from remixq.logs import KeyValueFormatter, use_format
from remixq.security import REDACTED, webhook_token, webhook_url
from webhook_receiver.gunicorn_logs import RedactingLogger
from webhook_receiver.server import _Gunicorn, gunicorn_options

TASK = "5f0c8e1a-1111-4111-8111-111111111111"
TOKEN = webhook_token(b"unit-secret", TASK)
PATH = webhook_url("", b"unit-secret", TASK)


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


def test_gunicorn_cmd_args_are_honoured_but_not_for_what_the_receiver_needs(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(
        "GUNICORN_CMD_ARGS",
        "--graceful-timeout 61 --access-logformat '%(r)s %(s)s' --worker-class sync"
        " --logger-class gunicorn.glogging.Logger",
    )
    options = gunicorn_options("127.0.0.1", 0, access_log=True)
    cfg = _Gunicorn(lambda: None, options).cfg
    assert cfg.graceful_timeout == 61 and cfg.access_log_format == "%(r)s %(s)s"
    assert cfg.accesslog == "-"  # REMIXQ_ACCESS_LOG: on stderr, redacted
    assert cfg.settings["worker_class"].get() is options["worker_class"]  # slow-client guards
    assert cfg.logger_class is RedactingLogger  # never a logger that prints tokens


def test_gunicorns_own_lines_take_the_chosen_format(tmp_path: Path, root_restored: None) -> None:
    use_format("json")
    try:
        logger, log_file = _logger(tmp_path)
        logger.warning("Invalid request from ip=127.0.0.1: %s", f"bad line {PATH}")
    finally:
        use_format("plain")
    (line,) = log_file.read_text().splitlines()
    record = json.loads(line)
    assert record["logger"] == "gunicorn.error" and TOKEN not in line
    assert record["message"].endswith(f"/webhooks/runware/{TASK}/{REDACTED}")
