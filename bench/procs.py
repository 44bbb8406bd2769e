"""What a benchmark's processes cost: CPU seconds, peak memory and a memory series per process
tree, and the CPU of the PostgreSQL backends, read from /proc (Linux), so nothing outside the
standard library is needed. The processes themselves are started, waited on and stopped with
`remixq.cli.processes` (in process groups of their own, so that a stop takes their whole
tree)."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Sequence
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
    for entry in (path.name for path in Path("/proc").iterdir()):
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


def _status_bytes(pids: Sequence[int], field: str) -> int:
    """The sum over these processes of one memory field of /proc/PID/status (in kB there)."""
    total = 0
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith(field):
                    total += int(line.split()[1]) * 1024
        except OSError:
            continue
    return total


def peak_rss_bytes(pids: Sequence[int]) -> int:
    """The sum over these processes of each one's peak resident set (VmHWM)."""
    return _status_bytes(pids, "VmHWM:")


def rss_bytes(pids: Sequence[int]) -> int:
    """The resident set (VmRSS) summed over these processes."""
    return _status_bytes(pids, "VmRSS:")


class MemorySeries:
    """The resident set of named groups of processes, sampled on a thread of its own every
    `interval` seconds from the start of a `with` block to its end. `groups()` names the pids of
    each group at the time of a sample (process trees change: a pool restarts, a child exits).
    `samples`: (seconds since the start, {group: bytes})."""

    def __init__(self, groups: Callable[[], dict[str, list[int]]], interval: float = 2.0):
        self.groups = groups
        self.interval = interval
        self.samples: list[tuple[float, dict[str, int]]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="memory-series", daemon=True)
        self._t0 = 0.0

    def _sample(self) -> None:
        at = time.monotonic() - self._t0
        self.samples.append((at, {k: rss_bytes(v) for k, v in self.groups().items()}))

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self._sample()

    def __enter__(self) -> MemorySeries:
        self._t0 = time.monotonic()
        self._sample()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
        self._sample()


def postgres_backends(database: str) -> list[int]:
    """The PostgreSQL server processes serving connections to `database`."""
    found = []
    for entry in (path.name for path in Path("/proc").iterdir()):
        if not entry.isdigit():
            continue
        try:
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes()
        except OSError:
            continue
        if cmdline.startswith(b"postgres: ") and f" {database} ".encode() in cmdline:
            found.append(int(entry))
    return found


def pids(process: Process) -> list[int]:
    """The process and its live descendants; none once it has exited."""
    return tree(process.pid) if process.alive() else []


def cpu(process: Process) -> float:
    """CPU seconds of the process's tree so far."""
    return cpu_seconds(pids(process))


def peak_rss(process: Process) -> int:
    """The sum of the peak resident sets of the process's tree."""
    return peak_rss_bytes(pids(process))


def pool_pid(process: Process, serve: str) -> int | None:
    """The pid of the child pool `remixq worker --serve SERVE` in the process's tree."""
    for pid in pids(process)[1:]:
        try:
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"--serve" in argv and serve.encode() in argv:
            return pid
    return None
