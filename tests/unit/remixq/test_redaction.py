"""No webhook token, URL query, key or configured secret in a log line or a provider's error
message: the one rule (remixq.security.redact), our formatter, the filter for foreign
formatters, and the client's error messages."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator

import pytest

from remixq import logs
from remixq.logs import KeyValueFormatter, RedactingFilter, clean, hide
from remixq.providers.runware.client import RunwareClient
from remixq.providers.runware.errors import Unauthorized
from remixq.providers.runware.testing import FakeTransport, reply
from remixq.security import REDACTED, redact, webhook_token, webhook_url

TASK = "5f0c8e1a-1111-4111-8111-111111111111"
TOKEN = webhook_token(b"unit-secret", TASK)
URL = webhook_url("http://127.0.0.1:8701", b"unit-secret", TASK)
SIGNATURE = "X-Amz-Signature=0badc0ffee1234"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # gunicorn's line when the app raises: the taskUUID stays, the token goes
        (
            f"Error handling request POST /webhooks/runware/{TASK}/{TOKEN}",
            f"Error handling request POST /webhooks/runware/{TASK}/{REDACTED}",
        ),
        # gunicorn's invalid-request warning quotes the request target with repr()
        (
            f"Invalid HTTP request line: '/webhooks/runware/{TASK}/{TOKEN}\\x7f'",
            f"Invalid HTTP request line: '/webhooks/runware/{TASK}/{REDACTED}'",
        ),
        # junk before the token, or no taskUUID: everything after the prefix
        (f"/webhooks/runware/{TASK}/\\x00{TOKEN}", f"/webhooks/runware/{TASK}/{REDACTED}"),
        (f"POST /webhooks/runware/{TOKEN} HTTP/1.1", f"POST /webhooks/runware/{REDACTED} HTTP/1.1"),
        # the query form of earlier versions
        (
            f"POST /webhooks/runware?task={TASK}&token={TOKEN} HTTP/1.1",
            f"POST /webhooks/runware?{REDACTED} HTTP/1.1",
        ),
        # a webhook path with a query, without its origin
        (
            f"POST /webhooks/runware/{TASK}/{TOKEN}?token={TOKEN}&x=1 HTTP/1.1",
            f"POST /webhooks/runware/{TASK}/{REDACTED}?{REDACTED} HTTP/1.1",
        ),
        # a whole URL, inside a provider's message that quotes it
        (
            f"bad value '{URL}' for webhookURL",
            f"bad value '{URL.replace(TOKEN, REDACTED)}' for webhookURL",
        ),
        # an upload endpoint's presigned query
        (
            f"PUT https://bucket.s3.amazonaws.com/a.png?{SIGNATURE}&X-Amz-Date=1 failed",
            f"PUT https://bucket.s3.amazonaws.com/a.png?{REDACTED} failed",
        ),
        # keys: a header, a JSON authentication task, name=value pairs
        ("Authorization: Bearer sk-live-abc", f"Authorization: Bearer {REDACTED}"),
        ('{"apiKey": "sk-live-abc"}', f'{{"apiKey": "{REDACTED}"}}'),
        ("token=abc&sig=def api_key=ghi", f"token={REDACTED}&sig={REDACTED} api_key={REDACTED}"),
        # what must stay: plain key=value fields, URLs without a query, the taskUUID
        (
            f"webhook stored job_id=7 task_uuid={TASK} url=http://receiver:8701/healthz",
            f"webhook stored job_id=7 task_uuid={TASK} url=http://receiver:8701/healthz",
        ),
    ],
)
def test_redact(text: str, expected: str) -> None:
    assert redact(text) == expected
    assert redact(expected) == expected  # idempotent


def test_literal_secrets_go_wherever_they_are() -> None:
    assert redact("key is s3cr3t-value, again s3cr3t-value", ["s3cr3t-value"]) == (
        f"key is {REDACTED}, again {REDACTED}"
    )


@pytest.fixture
def hidden() -> Iterator[None]:
    before = set(logs._HIDDEN)
    yield
    logs._HIDDEN.clear()
    logs._HIDDEN.update(before)


def test_hide_registers_configured_secrets_but_not_short_words(hidden: None) -> None:
    hide("sk-e2e-0123456789", None, "", "short")
    assert clean("a sk-e2e-0123456789 b short") == f"a {REDACTED} b short"


def _record(
    name: str, msg: str, *args: object, exc: BaseException | None = None
) -> logging.LogRecord:
    info = (type(exc), exc, exc.__traceback__) if exc is not None else None
    return logging.LogRecord(name, logging.ERROR, __file__, 1, msg, args, info)


def _raised(message: str) -> BaseException:
    try:
        raise RuntimeError(message)
    except RuntimeError as exc:
        return exc


def test_the_key_value_formatter_cleans_message_extras_and_traceback(hidden: None) -> None:
    hide("sk-e2e-0123456789")
    record = _record("remixq.worker", "posted to %s", URL, exc=_raised(f"failed {URL}"))
    record.error = "Bearer sk-e2e-0123456789"
    record.task_uuid = TASK
    line = KeyValueFormatter().format(record)
    assert TOKEN not in line and "sk-e2e-0123456789" not in line
    assert f"task_uuid={TASK}" in line and "RuntimeError: failed" in line
    foreign = KeyValueFormatter().format(_record("celery.worker", "got %s", URL))
    assert TOKEN not in foreign and foreign.endswith(f"/{REDACTED}")


def test_the_filter_cleans_records_for_a_foreign_formatter() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("[%(levelname)s] %(message)s"))
    handler.addFilter(RedactingFilter())
    handler.handle(_record("gunicorn.error", "Error handling request %s", URL, exc=_raised(URL)))
    handler.handle(_record("gunicorn.error", "plain %d%%", 5))
    text = stream.getvalue()
    assert TOKEN not in text
    assert f"Error handling request {URL.replace(TOKEN, REDACTED)}" in text
    assert "RuntimeError: http://127.0.0.1:8701/webhooks/runware/" in text  # the traceback, cleaned
    assert "[ERROR] plain 5%" in text


def test_a_providers_error_message_never_carries_the_url_or_the_key() -> None:
    key = "sk-live-0123456789"
    echoed = f"Invalid value for 'webhookURL': '{URL}' (key {key})"
    transport = FakeTransport(
        reply(
            400, {"errors": [{"code": "invalidWebhookURL", "message": echoed, "taskUUID": TASK}]}
        ),
        reply(401, {"errors": [{"code": "invalidApiKey", "message": f"bad key {key}"}]}),
    )
    client = RunwareClient("https://api.runware.ai/v1", key, session=transport.session())
    task = {"taskType": "imageInference", "taskUUID": TASK, "webhookURL": URL}
    (error,) = client.submit([task]).values()
    assert error.code == "invalidWebhookURL"  # type: ignore[union-attr]
    assert TOKEN not in str(error) and key not in str(error)
    assert f"/webhooks/runware/{TASK}/{REDACTED}" in str(error)
    with pytest.raises(Unauthorized) as raised:
        client.submit([task])
    assert key not in str(raised.value) and REDACTED in str(raised.value)
