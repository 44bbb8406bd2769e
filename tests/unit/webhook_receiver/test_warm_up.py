"""A receiver worker warms up before it freezes its heap (webhook_receiver.server's
post_worker_init hook): the engine and a first connection, which its writer then reuses; a
database that is down does not stop the worker from starting."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from flask import Flask

from remixq.config import load_settings
from webhook_receiver.app import create_app
from webhook_receiver.state import state, warm_up


def test_the_engine_and_a_first_connection_are_made(tmp_path: Path) -> None:
    app = create_app(
        load_settings(database_url=f"sqlite:///{tmp_path / 'r.sqlite'}", data_dir=tmp_path)
    )
    receiver = state(app)
    assert "engine" not in vars(receiver)  # made on first use
    warm_up(app)
    assert "engine" in vars(receiver)
    assert receiver.engine.pool.checkedin() == 1  # the writer takes it from the pool
    receiver.engine.dispose()


def test_a_database_that_is_down_only_postpones_it(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    url = "postgresql+psycopg://postgres@127.0.0.1:1/nowhere?connect_timeout=1"
    app = create_app(load_settings(database_url=url, data_dir=tmp_path))
    with caplog.at_level(logging.WARNING, logger="webhook_receiver.state"):
        warm_up(app)
    assert "the first webhook connects" in caplog.text


def test_another_wsgi_app_is_left_alone() -> None:
    warm_up(Flask("bare"))
    warm_up(object())
