"""The second load generator: wrk (Debian's package) replaying the bench's webhooks with a small
Lua script (bench/replay.lua), so that the latencies do not rest on one client's measurement.

wrk reports one latency distribution per run, not per window, so a sustained wrk run is a
series of consecutive 10-s runs against the same server (new connections at each start, a few
milliseconds apart). `make bench` installs wrk when it is missing (scripts/ensure-wrk).
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from bench.loadgen import Request
from bench.windows import Window

SCRIPT = Path(__file__).with_name("replay.lua")
_LINE = re.compile(r"remixq-wrk (.*)$", re.MULTILINE)


def available() -> bool:
    return shutil.which("wrk") is not None


def write_replay(requests: Sequence[Request], path: Path) -> int:
    """The file replay.lua reads: one request a line, its path, a space, its body. Returns the
    number of lines. A body must be one line (JSON as the bench writes it)."""
    with path.open("wb") as out:
        for request in requests:
            if b"\n" in request.body or b"\r" in request.body or " " in request.path:
                raise ValueError(f"cannot replay a body with a line break: {request.path}")
            out.write(request.path.encode() + b" " + request.body + b"\n")
    return len(requests)


@dataclass(frozen=True)
class WrkRun:
    requests: int
    seconds: float
    p50_ms: float
    p99_ms: float
    p999_ms: float
    max_ms: float
    non2xx: int
    socket_errors: int

    @property
    def rate(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    def window(self, start_s: float) -> Window:
        return Window(
            start_s=start_s,
            seconds=self.seconds,
            requests=self.requests,
            p50_ms=self.p50_ms,
            p99_ms=self.p99_ms,
            p999_ms=self.p999_ms,
            max_ms=self.max_ms,
        )


def parse(output: str) -> WrkRun:
    """The summary line replay.lua's `done` prints."""
    match = _LINE.search(output)
    if match is None:
        raise RuntimeError(f"wrk printed no summary: {output[-500:]}")
    fields = {k: int(v) for k, v in (item.split("=") for item in match.group(1).split())}
    return WrkRun(
        requests=fields["requests"],
        seconds=fields["duration_us"] / 1e6,
        p50_ms=fields["p50_us"] / 1e3,
        p99_ms=fields["p99_us"] / 1e3,
        p999_ms=fields["p999_us"] / 1e3,
        max_ms=fields["max_us"] / 1e3,
        non2xx=fields["non2xx"],
        socket_errors=sum(fields[k] for k in ("connect", "read", "write", "timeout")),
    )


def run_wrk(
    port: int,
    replay: Path,
    *,
    seconds: float = 10,
    connections: int = 16,
    threads: int = 2,
    offset: int = 0,
) -> WrkRun:
    command = [
        "wrk",
        f"-t{threads}",
        f"-c{connections}",
        f"-d{seconds:g}s",
        "--timeout",
        "10s",
        "-s",
        str(SCRIPT),
        f"http://127.0.0.1:{port}",
        "--",
        str(replay),
        str(offset),
        str(threads),
    ]
    done = subprocess.run(
        command, capture_output=True, text=True, timeout=seconds + 60, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"wrk failed ({done.returncode}): {done.stderr[-1000:]}")
    return parse(done.stdout)
