"""The key=value log formatter writes logfmt: one record, one line, every value read back."""

from __future__ import annotations

import json
import logging

import pytest

from remixq.logs import JsonFormatter, KeyValueFormatter, bound, configure, use_format


def _line(**extra: object) -> str:
    record = logging.LogRecord("remixq.test", logging.INFO, __file__, 1, "hello", (), None)
    record.__dict__.update(extra)
    return KeyValueFormatter().format(record)


def test_a_value_with_quotes_equals_spaces_and_newlines_is_quoted_and_escaped() -> None:
    line = _line(error='bad "thing" a=b\nnext\\line')
    assert "\n" not in line
    assert line.endswith(r' error="bad \"thing\" a=b\nnext\\line"')


def test_plain_values_stay_bare_and_empty_ones_are_quoted() -> None:
    line = _line(job_id=7, task_uuid="5f0c", empty="", tab="a\tb", bell="\x07")
    assert line.endswith(r' bell="\u0007" empty="" job_id=7 tab="a\tb" task_uuid=5f0c')


def test_a_value_with_only_an_equals_sign_is_quoted() -> None:
    assert _line(query="a=b").endswith(' query="a=b"')


def _json(name: str = "remixq.test", msg: str = "hello", **extra: object) -> dict[str, object]:
    record = logging.LogRecord(name, logging.INFO, __file__, 1, msg, (), None)
    record.__dict__.update(extra)
    return json.loads(JsonFormatter().format(record))  # type: ignore[no-any-return]


def test_a_json_line_has_the_time_level_logger_message_and_our_fields() -> None:
    line = _json(job_id=7, task_uuid="5f0c", error='bad "thing"\nnext')
    assert set(line) == {"time", "level", "logger", "message", "job_id", "task_uuid", "error"}
    assert (line["level"], line["logger"], line["message"]) == ("INFO", "remixq.test", "hello")
    assert line["job_id"] == 7 and line["error"] == 'bad "thing"\nnext'  # escaped, read back


def test_bound_fields_reach_every_line_of_the_context_a_library_line_included() -> None:
    with bound(campaign_id=3, task_uuid="aaaa"):
        ours = _json(job_id=9)
        theirs = _json("celery.app.trace", "Task succeeded", data={"args": [1]})
        plain = KeyValueFormatter().format(
            logging.LogRecord("celery.worker", logging.INFO, __file__, 1, "hi", (), None)
        )
    assert ours["campaign_id"] == 3 and ours["task_uuid"] == "aaaa" and ours["job_id"] == 9
    assert theirs["campaign_id"] == 3 and "data" not in theirs  # a library's extras stay out
    assert plain.endswith(" campaign_id=3 task_uuid=aaaa")
    assert "campaign_id" not in _json()  # gone with the context


def test_an_extra_wins_over_a_bound_field() -> None:
    with bound(job_id=1):
        assert _json(job_id=2)["job_id"] == 2


def test_json_values_are_redacted_before_they_are_encoded() -> None:
    task = "5f0c8e1a-1111-4111-8111-111111111111"
    line = _json(
        msg=f"posting to /webhooks/runware/{task}/deadbeefcafe",
        url="https://h.example/up.png?X-Amz-Signature=abc",
        header="Bearer rw-secret-key-123",
    )
    assert line["message"] == f"posting to /webhooks/runware/{task}/[redacted]"
    assert line["url"] == "https://h.example/up.png?[redacted]"
    assert "rw-secret-key-123" not in json.dumps(line)


def test_use_format_refuses_an_unknown_format_and_configure_writes_the_chosen_one(
    root_restored: None, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(ValueError, match="'xml' is not one of plain, json"):
        use_format("xml")
    logging.getLogger().handlers[:] = []
    use_format("json")
    try:
        configure("INFO")
        configure("INFO")  # idempotent: one handler
        logging.getLogger("remixq.test").info("hi", extra={"job_id": 4})
    finally:
        use_format("plain")
        logging.captureWarnings(False)
    (written,) = capsys.readouterr().err.splitlines()
    assert json.loads(written)["job_id"] == 4
