"""Starting and stopping real processes, shared by the demo, the end-to-end and chaos tests and
the benchmarks: free ports, waits by condition with a deadline, child processes with a log file
each, stopped with SIGTERM (SIGKILL after a deadline), optionally in a process group of their
own so that a stop or a kill takes their children (gunicorn's workers, beat's) too."""

from __future__ import annotations

import os
import random
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from contextlib import closing, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO


def free_port() -> int:
    with closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def stable_port() -> int:
    """A free port below the kernel's ephemeral range. While its server is down (a restart, an
    outage), no outgoing connection can take it as its local end, so it can be bound again."""
    try:
        low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        low = 32768
    for _ in range(200):
        port = random.randint(min(20000, low // 2), low - 1)
        with closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    return free_port()


def http_ready(url: str) -> Callable[[], bool]:
    # Imported here, not with the CLI: requests imports ssl, and the receiver's gevent workers
    # must patch ssl before anything imports it (gevent's MonkeyPatchWarning otherwise).
    import requests

    def probe() -> bool:
        try:
            return requests.get(url, timeout=1).status_code < 500
        except requests.RequestException:
            return False

    return probe


@dataclass
class Process:
    name: str
    popen: subprocess.Popen[bytes]
    log_path: Path
    _log: IO[bytes] = field(repr=False)
    group: bool = False  # leads a process group of its own

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def check(self) -> None:
        """Raise if the process has exited."""
        if not self.alive():
            raise RuntimeError(f"{self.name} exited ({self.popen.returncode}):\n{self.log_tail()}")

    def stop(self, timeout: float = 20) -> int:
        """SIGTERM, then SIGKILL after `timeout`; returns the exit code. A group leader's
        children still alive afterwards are killed too."""
        if self.alive():
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(5)
        self._reap()
        return self.popen.returncode

    def kill(self) -> None:
        """SIGKILL (the whole group, for a group leader): nothing runs its shutdown code."""
        if self.group:
            with suppress(ProcessLookupError):
                os.killpg(self.popen.pid, signal.SIGKILL)
        else:
            self.popen.kill()
        self.popen.wait(10)
        self._reap()

    def _reap(self) -> None:
        if self.group:
            with suppress(ProcessLookupError):
                os.killpg(self.popen.pid, signal.SIGKILL)
        self._log.close()

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


def start(
    name: str,
    args: Sequence[str],
    *,
    env: Mapping[str, str],
    log_dir: Path,
    module: str = "remixq.cli",
    new_session: bool = False,
) -> Process:
    """Run `python -m MODULE ARGS` with `env` added to this process's environment, its output
    in LOG_DIR/NAME.log (`new_session`: in a process group of its own)."""
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / f"{name}.log"
    log = log_path.open("ab")
    popen = subprocess.Popen(
        [sys.executable, "-m", module, *args],
        env={**os.environ, **env},
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=new_session,
    )
    return Process(name, popen, log_path, log, group=new_session)


def stop_all(processes: Sequence[Process], timeout: float = 30) -> None:
    """SIGTERM every process at once, then wait for each (SIGKILL after `timeout`)."""
    for process in processes:
        if process.alive():
            process.popen.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + timeout
    for process in processes:
        with suppress(subprocess.TimeoutExpired):
            process.popen.wait(max(0.1, deadline - time.monotonic()))
        process.kill()


def wait_until(
    condition: Callable[[], bool],
    *,
    timeout: float,
    interval: float = 0.05,
    what: str = "condition",
    alive: Sequence[Process] = (),
) -> None:
    """Poll `condition` until true; fail after `timeout`, or as soon as a process of `alive`
    has exited."""
    deadline = time.monotonic() + timeout
    while not condition():
        for process in alive:
            process.check()
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)
