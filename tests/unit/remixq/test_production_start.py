"""A production deployment without a webhook secret cannot work (every job's webhook URL, and
every check of one, is made from it): its processes refuse to start with one line, instead of
starting, answering /healthz and failing every webhook with a 500."""

from __future__ import annotations

from pathlib import Path

import pytest

from remixq.cli.processes import free_port
from remixq.config import load_settings
from remixq.errors import InvalidInput
from tests.support.cli import remixq
from webhook_receiver.app import create_app

PRODUCTION_WITHOUT_SECRET = {"REMIXQ_PRODUCTION": "1", "REMIXQ_WEBHOOK_SECRET": ""}


@pytest.mark.parametrize(
    "command",
    [["receiver", "--port", "{port}", "--workers", "1"], ["worker"], ["beat"]],
    ids=["receiver", "worker", "beat"],
)
def test_a_production_process_without_a_secret_refuses_to_start(
    tmp_path: Path, command: list[str]
) -> None:
    args = [arg.format(port=free_port()) for arg in command]
    done = remixq(tmp_path, *args, env=PRODUCTION_WITHOUT_SECRET)
    assert done.returncode != 0
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("error: REMIXQ_WEBHOOK_SECRET: ")
    assert "required when REMIXQ_PRODUCTION is on" in lines[0]
    assert "listening" not in done.stderr and "Traceback" not in done.stderr


def test_the_receiver_app_refuses_to_load(tmp_path: Path) -> None:
    """Under any WSGI server: the app factory refuses, so the server fails at load."""
    settings = load_settings(production=True, webhook_secret="", data_dir=tmp_path)
    with pytest.raises(InvalidInput, match="REMIXQ_WEBHOOK_SECRET"):
        create_app(settings)


def test_without_production_a_secret_is_made_once(tmp_path: Path) -> None:
    settings = load_settings(production=False, webhook_secret="", data_dir=tmp_path)
    assert create_app(settings) is not None
    assert settings.secret() == load_settings(webhook_secret="", data_dir=tmp_path).secret()
