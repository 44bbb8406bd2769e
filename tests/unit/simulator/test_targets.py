"""Where the simulator listens and sends (assumptions A15): loopback unless allowed, a refused
target answered at submission with nothing sent, and no target URL in a log line."""

from __future__ import annotations

import logging
import socket

import pytest
from click.testing import CliRunner

from simulator.cli import simulator
from simulator.config import SimulatorConfig
from simulator.server import build_server
from simulator.targets import TargetFormatter, is_loopback
from tests.support.simulator import AUTH, MakeClient, Receiver, simulator_of, task, wait_for

TOKEN = "9f2c4e6a8b0d1f3e5a7c9b1d3f5e7a9c"
SIGNATURE = "X-Amz-Signature=0badc0ffee"
EVERY_INTERFACE = "0.0.0.0"  # noqa: S104 (what the simulator must refuse without a flag)


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.8.9.10", True),
        ("::1", True),
        ("[::1]", True),
        ("::ffff:127.0.0.1", True),
        ("localhost", True),
        ("LOCALHOST.", True),
        ("api.localhost", True),
        (EVERY_INTERFACE, False),
        ("::", False),
        ("10.0.0.5", False),
        ("169.254.169.254", False),
        ("receiver", False),
        ("localhost.example.com", False),
        ("", False),
    ],
)
def test_loopback_is_what_the_url_says_without_dns(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


def test_the_command_refuses_a_remote_interface_in_one_line() -> None:
    result = CliRunner().invoke(simulator, ["--host", EVERY_INTERFACE, "--port", "0"])
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 1, result.output
    assert lines[0].startswith("error: --host 0.0.0.0 is not a loopback address")
    assert "--allow-remote" in lines[0] and "REMIXQ_SIM_ALLOW_REMOTE=1" in lines[0]


def test_a_server_off_loopback_needs_allow_remote() -> None:
    with pytest.raises(ValueError, match="not a loopback address"):
        build_server(SimulatorConfig(), EVERY_INTERFACE, 0)
    server = build_server(SimulatorConfig(allow_remote=True), EVERY_INTERFACE, 0)
    try:
        with socket.create_connection(("127.0.0.1", server.port), timeout=2):
            pass  # bound on every interface, loopback included
    finally:
        server.server_close()
        server.app.extensions["remixq_simulator"].close()  # type: ignore[attr-defined]


def test_the_environment_allows_remote_listening_and_targets() -> None:
    config = SimulatorConfig.from_env(
        {
            "REMIXQ_SIM_ALLOW_REMOTE": "1",
            "REMIXQ_SIM_ALLOW_TARGET": "receiver, Hooks.Example.com",
            "REMIXQ_SIM_ALLOW_ANY_TARGET": "false",
        }
    )
    assert config.allow_remote is True and config.allow_any_target is False
    assert config.allow_target == ("receiver", "hooks.example.com")


@pytest.mark.parametrize(
    ("field", "url", "code"),
    [
        ("webhookURL", f"http://10.0.0.5:8701/webhooks/runware/x/{TOKEN}", "invalidWebhookURL"),
        ("webhookURL", "http://169.254.169.254/latest/meta-data", "invalidWebhookURL"),
        (
            "uploadEndpoint",
            f"https://bucket.example.com/a.png?{SIGNATURE}",
            "invalidUploadEndpoint",
        ),
    ],
)
def test_a_target_off_loopback_is_refused_at_submission_and_nothing_is_sent(
    client: object, field: str, url: str, code: str
) -> None:
    body = task(deliveryMethod="async", **{field: url})
    response = client.post("/v1", json=[body], headers=AUTH)  # type: ignore[attr-defined]
    assert response.status_code == 400
    (error,) = response.get_json()["errors"]
    assert error["code"] == code and error["parameter"] == field
    assert error["taskUUID"] == body["taskUUID"]
    assert "is not an allowed target" in error["message"] and "--allow-target" in error["message"]
    assert TOKEN not in error["message"] and SIGNATURE not in error["message"]  # the host only
    stats = simulator_of(client).stats.snapshot()  # type: ignore[arg-type]
    assert stats["tasks_accepted"] == 0 and stats["webhooks"]["attempted"] == 0
    assert stats["uploads"]["attempted"] == 0


def test_a_named_target_and_any_target_are_accepted(make_client: MakeClient) -> None:
    named = make_client(allow_target=("hooks.example.com",), webhook_drop_rate=1.0)
    body = task(deliveryMethod="async", webhookURL="https://HOOKS.example.com/hook")
    assert named.post("/v1", json=[body], headers=AUTH).status_code == 200
    other = task(deliveryMethod="async", webhookURL="https://elsewhere.example.com/hook")
    assert named.post("/v1", json=[other], headers=AUTH).status_code == 400

    anywhere = make_client(allow_any_target=True, webhook_drop_rate=1.0)
    assert anywhere.post("/v1", json=[other], headers=AUTH).status_code == 200


def test_a_malformed_url_keeps_its_own_error(client: object) -> None:
    body = task(deliveryMethod="async", webhookURL="ftp://10.0.0.5/x")
    response = client.post("/v1", json=[body], headers=AUTH)  # type: ignore[attr-defined]
    assert "not an absolute http(s) URL" in response.get_json()["errors"][0]["message"]


def test_a_given_up_webhook_is_logged_without_its_path(
    make_client: MakeClient, receiver: Receiver, caplog: pytest.LogCaptureFixture
) -> None:
    client = make_client(webhook_retries=0)
    receiver.fail_next([500])
    url = receiver.url(f"/webhooks/runware/5f0c8e1a-1111-4111-8111-111111111111/{TOKEN}")
    with caplog.at_level(logging.INFO, logger="simulator"):
        client.post("/v1", json=[task(deliveryMethod="async", webhookURL=url)], headers=AUTH)
        wait_for(lambda: simulator_of(client).stats.snapshot()["webhooks"]["gave_up"])
        # The count comes before the line, from the sender's thread: wait for the line too.
        wait_for(lambda: any("given up" in r.getMessage() for r in caplog.records))
    (line,) = [r.getMessage() for r in caplog.records if "given up" in r.getMessage()]
    assert TOKEN not in line and "/webhooks/" not in line
    assert f"{receiver.origin}/..." in line


def test_a_failed_upload_is_logged_without_its_query(
    make_client: MakeClient, caplog: pytest.LogCaptureFixture
) -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    client = make_client()
    url = f"http://127.0.0.1:{port}/bucket/a.png?{SIGNATURE}"
    with caplog.at_level(logging.INFO, logger="simulator"):
        client.post("/v1", json=[task(deliveryMethod="async", uploadEndpoint=url)], headers=AUTH)
        wait_for(lambda: simulator_of(client).stats.snapshot()["uploads"]["failed"])
    (line,) = [r.getMessage() for r in caplog.records if "upload to" in r.getMessage()]
    assert line == f"upload to http://127.0.0.1:{port}/... failed: ConnectionError"


def test_the_log_filter_shows_any_url_as_its_origin() -> None:
    try:
        raise ConnectionError(f"Max retries exceeded with url: /bucket/a.png?{SIGNATURE}")
    except ConnectionError as exc:
        record = logging.LogRecord(
            "simulator", logging.ERROR, __file__, 1, "posting to %s", (f"https://u:p@h:9/x?{SIGNATURE}",),
            (type(exc), exc, exc.__traceback__),
        )  # fmt: skip
    text = TargetFormatter().format(record)
    assert "posting to https://h:9/..." in text and "with url: /..." in text
    assert SIGNATURE not in text and "u:p" not in text
    # The record itself is left as it was, for any other handler.
    assert SIGNATURE in record.getMessage()
