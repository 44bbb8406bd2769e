"""The key=value log formatter writes logfmt: one record, one line, every value read back."""

from __future__ import annotations

import logging

from remixq.logs import KeyValueFormatter


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
