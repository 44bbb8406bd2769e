"""RabbitMQ for the tests: a virtual host of the test machine's server per test process, or a
private node the chaos suite may restart.

The server on 127.0.0.1:5672 (guest/guest; `scripts/ensure-services` starts it) is shared with
other checkouts and other pytest-xdist workers, so each test process takes a vhost of its own,
named after its test database (`remixq_test_gw0` ...), created once with `rabbitmqctl`; a stack
empties the queues it uses before it starts (`amqp_broker_url`), as the Redis stacks flush
their db. A broker restart would disturb everyone on the shared node: the chaos suite starts a
private node on free ports instead (`RabbitNode`), whose application it stops and starts
(`rabbitmqctl stop_app` / `start_app`: the node stays up, its queues and persistent messages
survive, every connection is cut).
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from kombu import Connection
from sqlalchemy.engine import make_url

from remixq.cli.processes import free_port, stable_port, wait_until
from tests.support.databases import PG_URL
from worker.names import ASSETS_QUEUE, NATIVE_QUEUE, PERIODIC_QUEUE, QUEUE

SHARED_HOST = "127.0.0.1:5672"
_made: set[str] = set()


def rabbitmqctl(*args: str, node: str | None = None, check: bool = True) -> str:
    command = ["rabbitmqctl", *(["-n", node] if node else []), "-q", *args]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    if check and done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed: {done.stderr.strip()[:500]}")
    return done.stdout


def vhost_url(vhost: str, host: str = SHARED_HOST) -> str:
    return f"amqp://guest:guest@{host}/{vhost}"


def _vhost(name: str, node: str | None = None) -> None:
    """The vhost, with every right for guest (made once per process)."""
    key = f"{node}/{name}"
    if key in _made:
        return
    rabbitmqctl("add_vhost", name, node=node, check=False)  # an earlier run's is kept
    rabbitmqctl("set_permissions", "-p", name, "guest", ".*", ".*", ".*", node=node)
    _made.add(key)


def empty_queues(url: str) -> None:
    """Delete remixq's queues in the vhost of `url` (and so their messages): a clean broker."""
    with Connection(url, connect_timeout=5) as connection:
        for queue in (QUEUE, PERIODIC_QUEUE, ASSETS_QUEUE, NATIVE_QUEUE):
            with connection.channel() as channel:
                channel.queue_delete(queue)


def queue_counts(url: str, queue: str) -> tuple[int, int]:
    """(ready, unacknowledged) messages of `queue` in the vhost of `url`, as the server counts
    them (AMQP itself does not tell the unacknowledged ones)."""
    vhost = make_url(url.replace("amqp://", "amqp+x://", 1)).database or "/"
    out = rabbitmqctl(
        "list_queues", "-p", vhost, "name", "messages_ready", "messages_unacknowledged"
    )
    for line in out.splitlines():
        name, *counts = line.split("\t")
        if name == queue:
            return int(counts[0]), int(counts[1])
    return 0, 0


def amqp_broker_url() -> str:
    """The shared server's vhost of this test process, its queues emptied."""
    name = make_url(PG_URL).database or "remixq_test"
    _vhost(name)
    url = vhost_url(name)
    empty_queues(url)
    return url


@dataclass
class RabbitNode:
    """A RabbitMQ node of its own, on free ports, its data in a folder made at `start`."""

    directory: Path = Path()
    port: int = field(default_factory=stable_port)
    dist_port: int = field(default_factory=free_port)
    popen: subprocess.Popen[bytes] | None = None

    @property
    def node(self) -> str:
        return f"remixq{self.port}@localhost"

    def url(self, vhost: str = "remixq") -> str:
        return vhost_url(vhost, f"127.0.0.1:{self.port}")

    def start(self) -> None:
        # The server script runs the node as user rabbitmq where it exists, which may not
        # enter a test's folders (0700): the node's files go to a folder of /tmp open to it.
        self.directory = Path(tempfile.mkdtemp(prefix="remixq-rabbitmq-"))
        self.directory.chmod(0o777)
        (self.directory / "enabled_plugins").write_text("[].\n")
        (self.directory / "rabbitmq.conf").write_text(
            f"listeners.tcp.local = 127.0.0.1:{self.port}\nloopback_users = none\n"
        )
        env = {
            "RABBITMQ_NODENAME": self.node,
            "RABBITMQ_DIST_PORT": str(self.dist_port),
            "RABBITMQ_CONFIG_FILE": str(self.directory / "rabbitmq"),
            "RABBITMQ_MNESIA_BASE": str(self.directory / "mnesia"),
            "RABBITMQ_LOG_BASE": str(self.directory / "log"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(self.directory / "enabled_plugins"),
            "RABBITMQ_PID_FILE": str(self.directory / "pid"),
            "PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
        }
        log = (self.directory / "server.log").open("ab")
        self.popen = subprocess.Popen(
            ["rabbitmq-server"], env=env, stdout=log, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, start_new_session=True,
        )  # fmt: skip
        log.close()
        self.await_app()
        _vhost("remixq", node=self.node)

    def await_app(self) -> None:
        def up() -> bool:
            if self.popen is not None and self.popen.poll() is not None:
                tail = (self.directory / "server.log").read_text(errors="replace")[-2000:]
                raise RuntimeError(f"rabbitmq-server exited:\n{tail}")
            try:
                with Connection(self.url("/"), connect_timeout=1) as connection:
                    connection.ensure_connection(max_retries=1)
            except Exception:  # noqa: BLE001 (not up yet)
                return False
            return True

        wait_until(up, timeout=90, interval=0.5, what=f"RabbitMQ node {self.node}")

    def stop_app(self) -> None:
        rabbitmqctl("stop_app", node=self.node)

    def start_app(self) -> None:
        rabbitmqctl("start_app", node=self.node)
        self.await_app()

    def stop(self) -> None:
        if self.popen is None:
            return
        rabbitmqctl("stop", node=self.node, check=False)
        try:
            self.popen.wait(30)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            self.popen.wait(10)
        self.popen = None
        shutil.rmtree(self.directory, ignore_errors=True)


@contextmanager
def private_rabbitmq() -> Iterator[RabbitNode]:
    node = RabbitNode()
    node.start()
    try:
        yield node
    finally:
        node.stop()
