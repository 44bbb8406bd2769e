"""The processes a benchmark starts, and what they cost: CPU seconds and peak memory per process
tree, read from /proc (Linux), so nothing outside the standard library is needed.

Every process is started with its own log file, waited on by condition with a deadline, and
stopped with SIGTERM, then SIGKILL for whatever of its tree is still alive.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from remixq.cli.processes import Process

_TICK = os.sysconf("SC_CLK_TCK")
_PAGE = os.sysconf("SC_PAGE_SIZE")


def _stat_fields(pid: int) -> list[str] | None:
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name may hold spaces and parentheses: split after its closing one.
    return raw[raw.rindex(")") + 2 :].split()


def _children_map() -> dict[int, list[int]]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        fields = _stat_fields(int(entry))
        if fields is not None:
            children.setdefault(int(fields[1]), []).append(int(entry))
    return children


def tree(pid: int) -> list[int]:
    """`pid` and all its live descendants."""
    children = _children_map()
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        todo.extend(children.get(current, []))
    return found


def cpu_seconds(pids: Sequence[int]) -> float:
    """User + system CPU of these processes, including their reaped children."""
    total = 0
    for pid in pids:
        fields = _stat_fields(pid)
        if fields is not None:
            # utime, stime, cutime, cstime are fields 14-17 of stat; [0] here is field 3.
            total += sum(int(fields[i]) for i in (11, 12, 13, 14))
    return total / _TICK


def cpu_by_pid(pids: Sequence[int]) -> dict[int, float]:
    return {pid: cpu_seconds([pid]) for pid in pids}


class BackendCPU:
    """CPU spent by the PostgreSQL backends of one database between `__init__` and `spent()`,
    including backends that connect in between."""

    def __init__(self, database: str):
        self.database = database
        self.before = cpu_by_pid(postgres_backends(database))

    def spent(self) -> float:
        after = cpu_by_pid(postgres_backends(self.database))
        return sum(cpu - self.before.get(pid, 0.0) for pid, cpu in after.items())


def peak_rss_bytes(pids: Sequence[int]) -> int:
    """The sum over these processes of each one's peak resident set (VmHWM)."""
    total = 0
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    total += int(line.split()[1]) * 1024
        except OSError:
            continue
    return total


def postgres_backends(database: str) -> list[int]:
    """The PostgreSQL server processes serving connections to `database`."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes()
        except OSError:
            continue
        if cmdline.startswith(b"postgres: ") and f" {database} ".encode() in cmdline:
            found.append(int(entry))
    return found


@dataclass
class Usage:
    cpu_s: float
    peak_rss: int


class Proc(Process):
    """A remixq process (remixq.cli.processes) that also reports its tree's CPU and memory."""

    @property
    def pid(self) -> int:
        return self.popen.pid

    def pids(self) -> list[int]:
        return tree(self.pid) if self.alive() else []

    def cpu(self) -> float:
        return cpu_seconds(self.pids())

    def usage(self) -> Usage:
        pids = self.pids()
        return Usage(cpu_seconds(pids), peak_rss_bytes(pids))

    def check(self) -> None:
        if not self.alive():
            raise RuntimeError(f"{self.name} exited ({self.popen.returncode}):\n{self.log_tail()}")

    def stop(self, timeout: float = 20) -> int:
        """SIGTERM, wait; then SIGKILL whatever of the tree is left."""
        pids = self.pids()
        code = super().stop(timeout)
        for pid in pids[1:]:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        return code


def start(
    name: str, argv: Sequence[str], *, env: Mapping[str, str], log_dir: Path, python: bool = True
) -> Proc:
    """Run `python ARGV` (or ARGV itself) with `env` added to this process's environment."""
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / f"{name}.log"
    log = log_path.open("ab")
    command = [sys.executable, *argv] if python else list(argv)
    popen = subprocess.Popen(
        command,
        env={**os.environ, **env},
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
    )
    return Proc(name, popen, log_path, log)


def wait_until(
    condition: Callable[[], bool],
    *,
    timeout: float,
    interval: float = 0.05,
    what: str = "condition",
    alive: Sequence[Proc] = (),
) -> None:
    """Poll `condition` until true; fail after `timeout` or as soon as a watched process dies."""
    deadline = time.monotonic() + timeout
    while not condition():
        for proc in alive:
            proc.check()
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)
