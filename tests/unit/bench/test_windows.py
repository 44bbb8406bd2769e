"""bench.windows: the statistics of a sustained run per window, and its stalls."""

from __future__ import annotations

import math

import pytest

from bench.windows import percentile, stalls, windows

MS = 1_000_000
S = 1_000_000_000


def test_percentile_is_the_nearest_rank() -> None:
    values = list(range(1, 101))
    assert percentile(values, 50) == 50
    assert percentile(values, 99) == 99
    assert percentile(values, 99.9) == 100
    assert percentile(values, 100) == 100
    assert percentile([7], 99.9) == 7
    assert math.isnan(percentile([], 50))


def test_requests_fall_in_the_window_their_answer_ended_in() -> None:
    start = 5 * S
    ends = [start + 1 * S, start + 9 * S, start + 10 * S, start + 25 * S]
    latencies = [1 * MS, 3 * MS, 200 * MS, 2 * MS]
    found = windows(ends, latencies, start_ns=start, end_ns=start + 25 * S)
    assert [w.start_s for w in found] == [0, 10, 20]
    assert [w.requests for w in found] == [2, 1, 1]
    assert found[0].p50_ms == pytest.approx(1.0)
    assert found[0].max_ms == pytest.approx(3.0)
    assert found[1].p999_ms == pytest.approx(200.0)
    assert found[2].seconds == pytest.approx(5.0)  # the last window is shorter
    assert found[2].rate == pytest.approx(0.2)


def test_an_empty_window_is_reported_not_dropped() -> None:
    start = 0
    found = windows([1 * S, 25 * S], [MS, MS], start_ns=start, end_ns=30 * S)
    assert [w.requests for w in found] == [1, 0, 1]
    assert math.isnan(found[1].p99_ms)


def test_answers_outside_the_run_are_left_out() -> None:
    found = windows([-1, 5 * S, 31 * S], [MS, MS, MS], start_ns=0, end_ns=30 * S)
    assert sum(w.requests for w in found) == 1


def test_overlapping_slow_requests_are_one_stall() -> None:
    # (sent, answered) in ms from the start: two overlapping slow ones, a fast one, a late one.
    spans = [(1000, 1300), (1100, 1250), (2000, 2001), (5000, 5150)]
    ends = [end * MS for _, end in spans]
    latencies = [(end - sent) * MS for sent, end in spans]
    found = stalls(ends, latencies, start_ns=0, threshold_ms=100)
    assert len(found) == 2
    first, second = found
    assert (first.start_s, first.end_s, first.requests) == (1.0, 1.3, 2)
    assert first.max_ms == pytest.approx(300)
    assert (second.start_s, second.requests) == (5.0, 1)


def test_no_stall_when_nothing_is_slow() -> None:
    assert stalls([MS, 2 * MS], [MS, MS], start_ns=0) == []
