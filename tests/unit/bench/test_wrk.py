"""bench.wrk: the file the Lua replay script reads, and the summary line it prints."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.loadgen import Request
from bench.wrk import SCRIPT, parse, write_replay


def test_the_replay_file_has_one_request_a_line(tmp_path: Path) -> None:
    requests = [
        Request("/webhooks/runware/a/t1", b'{"taskUUID": "a", "x": [1, 2]}'),
        Request("/webhooks/runware/b/t2", b'{"data": [{"taskUUID": "b"}]}'),
    ]
    path = tmp_path / "replay.txt"
    assert write_replay(requests, path) == 2
    lines = path.read_bytes().split(b"\n")
    assert lines[-1] == b""
    # The Lua script splits each line at its first space: the path, then the body as sent.
    for line, request in zip(lines[:-1], requests, strict=True):
        path_part, _, body = line.partition(b" ")
        assert path_part.decode() == request.path
        assert body == request.body


def test_a_body_with_a_line_break_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="line break"):
        write_replay([Request("/w/a/t", b'{\n"a": 1}')], tmp_path / "replay.txt")


def test_the_summary_line_is_read_in_milliseconds() -> None:
    output = (
        "Running 10s test @ http://127.0.0.1:1\n  2 threads and 16 connections\n"
        "remixq-wrk requests=25000 duration_us=10002000 p50_us=5100 p99_us=14000 "
        "p999_us=98000 max_us=230000 non2xx=3 connect=0 read=1 write=0 timeout=2\n"
    )
    run = parse(output)
    assert run.requests == 25_000
    assert run.seconds == pytest.approx(10.002)
    assert run.rate == pytest.approx(25_000 / 10.002)
    assert (run.p50_ms, run.p99_ms, run.p999_ms, run.max_ms) == (5.1, 14.0, 98.0, 230.0)
    assert run.non2xx == 3
    assert run.socket_errors == 3
    window = run.window(20.0)
    assert window.start_s == 20.0
    assert window.p999_ms == 98.0


def test_no_summary_is_an_error() -> None:
    with pytest.raises(RuntimeError, match="no summary"):
        parse("unable to connect to 127.0.0.1:1 Connection refused\n")


def test_the_script_prints_the_line_parse_reads() -> None:
    text = SCRIPT.read_text()
    assert "remixq-wrk requests=%d" in text
    for key in ("duration_us", "p50_us", "p99_us", "p999_us", "max_us", "non2xx", "timeout"):
        assert f"{key}=%d" in text
