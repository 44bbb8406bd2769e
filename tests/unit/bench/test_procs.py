"""The bench's memory series, read from /proc for a real process (this one)."""

from __future__ import annotations

import os
import time

from bench.procs import MemorySeries, rss_bytes


def test_the_series_samples_each_group_from_the_start_to_the_end_of_the_block() -> None:
    ballast: list[bytes] = []
    with MemorySeries(lambda: {"me": [os.getpid()], "gone": [2**22 + 1]}, interval=0.02) as m:
        deadline = time.monotonic() + 10
        while len(m.samples) < 3 and time.monotonic() < deadline:
            time.sleep(0.01)
        ballast.append(os.urandom(64 * 2**20))  # touched pages: resident
    assert len(m.samples) >= 4  # one at the start, the thread's, one at the end
    times = [t for t, _ in m.samples]
    assert times == sorted(times) and times[0] < 0.02
    assert all(sample["gone"] == 0 for _, sample in m.samples)  # no such process
    first, last = m.samples[0][1]["me"], m.samples[-1][1]["me"]
    assert last - first >= 60 * 2**20
    assert abs(last - rss_bytes([os.getpid()])) < 8 * 2**20
