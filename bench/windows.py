"""Latency over time: the statistics of a sustained run per window of its clock (p50, p99,
p99.9, max per 10 s), and the stalls in it (the requests that waited past a threshold, grouped
by overlap), so that a cold start, a stall or a slow drift shows where a run's summary hides it.

Pure functions over (end time, latency) pairs in nanoseconds of one monotonic clock
(CLOCK_MONOTONIC: the same in every process of the machine)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass


def percentile(ordered: Sequence[int | float], q: float) -> float:
    """The nearest-rank percentile `q` (0-100) of values sorted in ascending order."""
    if not ordered:
        return math.nan
    index = min(len(ordered) - 1, max(0, math.ceil(q / 100 * len(ordered)) - 1))
    return float(ordered[index])


@dataclass(frozen=True)
class Window:
    start_s: float  # from the run's start
    seconds: float
    requests: int
    p50_ms: float
    p99_ms: float
    p999_ms: float
    max_ms: float

    @property
    def rate(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    def row(self) -> dict[str, object]:
        return {
            "window s": f"{self.start_s:g}-{self.start_s + self.seconds:g}",
            "requests/s": round(self.rate),
            "p50 ms": round(self.p50_ms, 2),
            "p99 ms": round(self.p99_ms, 1),
            "p99.9 ms": round(self.p999_ms, 1),
            "max ms": round(self.max_ms, 1),
        }


def _window(start_s: float, seconds: float, latencies_ns: list[int]) -> Window:
    ordered = sorted(latencies_ns)
    return Window(
        start_s=start_s,
        seconds=seconds,
        requests=len(ordered),
        p50_ms=percentile(ordered, 50) / 1e6,
        p99_ms=percentile(ordered, 99) / 1e6,
        p999_ms=percentile(ordered, 99.9) / 1e6,
        max_ms=(ordered[-1] / 1e6) if ordered else math.nan,
    )


def windows(
    ends_ns: Sequence[int],
    latencies_ns: Sequence[int],
    *,
    start_ns: int,
    end_ns: int,
    width_s: float = 10.0,
) -> list[Window]:
    """The requests that ended in each `width_s` window from `start_ns` to `end_ns` (the last
    window may be shorter; a request is counted in the window its answer ended in)."""
    if end_ns <= start_ns:
        return []
    width = int(width_s * 1e9)
    count = max(1, math.ceil((end_ns - start_ns) / width))
    buckets: list[list[int]] = [[] for _ in range(count)]
    for end, latency in zip(ends_ns, latencies_ns, strict=True):
        if start_ns <= end <= end_ns:
            buckets[min(count - 1, (end - start_ns) // width)].append(latency)
    return [
        _window(
            i * width_s,
            min(width, end_ns - start_ns - i * width) / 1e9,
            bucket,
        )
        for i, bucket in enumerate(buckets)
    ]


def overall(latencies_ns: Sequence[int], seconds: float) -> Window:
    """The whole run as one window."""
    return _window(0.0, seconds, list(latencies_ns))


@dataclass(frozen=True)
class Stall:
    """Requests that waited longer than a threshold, with overlapping waits: one stall."""

    start_s: float  # when the first of them was sent, from the run's start
    end_s: float  # when the last of them was answered
    requests: int
    max_ms: float


def stalls(
    ends_ns: Sequence[int],
    latencies_ns: Sequence[int],
    *,
    start_ns: int,
    threshold_ms: float = 100.0,
) -> list[Stall]:
    """The slow requests (latency >= `threshold_ms`) grouped into stalls: requests whose waits
    (sent to answered) overlap belong to one stall. Ordered by time."""
    threshold = threshold_ms * 1e6
    slow = sorted(
        (end - latency, end, latency)
        for end, latency in zip(ends_ns, latencies_ns, strict=True)
        if latency >= threshold
    )
    found: list[Stall] = []
    group: list[tuple[int, int, int]] = []
    group_end = 0
    for sent, end, latency in slow:
        if group and sent > group_end:
            found.append(_stall(group, start_ns))
            group = []
        group.append((sent, end, latency))
        group_end = max(group_end, end) if len(group) > 1 else end
    if group:
        found.append(_stall(group, start_ns))
    return found


def _stall(group: list[tuple[int, int, int]], start_ns: int) -> Stall:
    return Stall(
        start_s=(min(g[0] for g in group) - start_ns) / 1e9,
        end_s=(max(g[1] for g in group) - start_ns) / 1e9,
        requests=len(group),
        max_ms=max(g[2] for g in group) / 1e6,
    )
