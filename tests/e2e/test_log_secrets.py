"""Every log line of an end-to-end run, read for secrets: no webhook token, webhook secret, API
key or upload-URL query appears in the output of any process (simulator, receiver and its
writer, worker, beat) or of the CLI, although the run goes through each path that used to print
them: gunicorn's invalid-request lines with a real token in the
URI, the simulator's given-up webhooks and failed uploads, the worker's provider calls with a
key, and the reconciler's polls. Twice: in plain lines on the embedded default (whose worker
runs beat; its files end owner-only), and in JSON lines (REMIXQ_LOG_FORMAT=json, every line of
every process a JSON object) on PostgreSQL with a `remixq beat` of its own and gunicorn's access
log on, in a format given through GUNICORN_CMD_ARGS that prints each request's path and query."""

from __future__ import annotations

import json
import re
import socket
import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from remixq.cli.processes import wait_until
from remixq.examples import demo_lines
from remixq.security import webhook_token
from tests.support.stack import Stack, running_stack

pytestmark = pytest.mark.e2e

API_KEY = "rw-e2e-key-5d1f0c9a7b3e42d8a6c1"
SECRET = "e2e-log-scan-secret-8c2d7f10b4a9"
SIGNATURE = "X-Amz-Signature=9e1b7c3d5f"


# gunicorn's access log, as an operator may configure it: the path and the query of each request.
ACCESS_FORMAT = "%(r)s %(s)s path=%(U)s query=%(q)s"


@pytest.fixture(params=["plain", "json"])
def stack(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Stack]:
    env = {
        "REMIXQ_WEBHOOK_SECRET": SECRET,
        "REMIXQ_RECONCILE_AFTER": "1",
        "REMIXQ_RECONCILE_INTERVAL": "1",
        "REMIXQ_RELAY_INTERVAL": "1",
    }
    json_lines = request.param == "json"
    if json_lines:
        env |= {
            "REMIXQ_LOG_FORMAT": "json",
            "REMIXQ_ACCESS_LOG": "1",
            "GUNICORN_CMD_ARGS": f"--access-logformat '{ACCESS_FORMAT}'",
        }
    with running_stack(
        tmp_path,
        # plain: the embedded default, whose files are checked too
        backend="postgresql" if json_lines else "sqlite",
        sim_args=("--api-key", API_KEY, "--latency-ms", "20"),
        env=env,
        processes=("simulator", "receiver"),
        beat=json_lines,
    ) as running:
        # The worker talks to the simulator as to Runware: with a key, which the simulator
        # requires (--api-key), so a run that did not send it would not complete.
        running.start(
            "worker",
            RUNWARE_API_KEY=API_KEY,
            RUNWARE_API_URL=f"{running.sim_url}/v1",
            REMIXQ_PUBLIC_URL=running.receiver_url,
        )
        yield running


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def _raw(stack: Stack, request_line: bytes) -> bytes:
    port = int(stack.receiver_url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(request_line + b"\r\nHost: receiver\r\nContent-Length: 0\r\n\r\n")
        return sock.recv(4096)


def test_no_secret_in_any_log_line(stack: Stack) -> None:
    cli_output: list[str] = []

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        done = stack.run_cli(*args)
        cli_output.extend((done.stdout, done.stderr))
        return done

    # 1. A campaign, one job with an upload endpoint nobody listens on (a failed PUT, logged).
    lines = demo_lines()[:4]
    upload = f"http://127.0.0.1:{_closed_port()}/bucket/out.png?{SIGNATURE}&X-Amz-Date=1"
    lines[0] = {**lines[0], "uploadEndpoint": upload}
    first = stack.submit(lines, "scan")
    jobs = stack.wait_final(first, timeout=40)
    assert {job.status for job in jobs} == {"completed"}
    wait_until(
        lambda: stack.sim_stats(tasks=False)["uploads"]["failed"] >= 1,
        timeout=10,
        what="the failed upload",
    )

    # 2. Webhooks given up: the receiver is down while a job's results are posted, without
    #    retries; the reconciler's getResponse then completes the job once it is back.
    stack.set_faults(webhook_retries=0)
    stack.stop("receiver")
    second = stack.submit(demo_lines()[4:5], "scan-given-up")
    wait_until(
        lambda: stack.sim_stats(tasks=False)["webhooks"]["gave_up"] >= 1,
        timeout=20,
        what="a webhook given up",
    )
    stack.start("receiver")
    stack.wait_receiver()
    stack.set_faults(webhook_retries=8)
    (polled,) = stack.wait_final(second, timeout=40)
    assert polled.status == "completed"

    # 3. The receiver's error paths, with the real token of a job in the URI.
    job = jobs[0]
    path = f"/webhooks/runware/{job.task_uuid}/{webhook_token(SECRET.encode(), job.task_uuid)}"
    # A token that is not ASCII is a wrong token (it once made the check raise: a 500 and
    # gunicorn's "Error handling request POST <uri>" line, whose redaction
    # tests/unit/webhook_receiver/test_gunicorn_logs.py shows).
    wrong = requests.post(f"{stack.receiver_url}{path}%C3%A9", data=b"{}", timeout=10)
    assert wrong.status_code == 401
    # A request target with a byte HTTP does not allow: gunicorn's invalid-request warning,
    # which quotes the target.
    assert _raw(stack, b"POST " + path.encode() + b"\xff HTTP/1.1").startswith(b"HTTP/1.1 400")
    # The older query form and a wrong token: answered, nothing logged with them.
    older = requests.post(
        f"{stack.receiver_url}/webhooks/runware",
        params={"task": job.task_uuid, "token": "0" * 64},
        data=b"{}",
        timeout=10,
    )
    assert older.status_code == 401

    cli("status", "scan")
    cli("status", "scan-given-up", "--json")

    # Every line of every process, once each has flushed (gunicorn's lines are written by the
    # worker process that served the request).
    logs = stack.tmp / "logs"

    def written() -> str:
        return "\n".join(p.read_text(errors="replace") for p in sorted(logs.glob("*.log")))

    wait_until(
        lambda: "Invalid request from" in written(),
        timeout=10,
        what="gunicorn's error lines",
    )
    stack.check_alive()
    text = written() + "\n".join(cli_output)
    json_lines = stack.env.get("REMIXQ_LOG_FORMAT") == "json"
    if json_lines:  # every line of every process is one JSON object
        for path in sorted(logs.glob("*.log")):
            for line in path.read_text(errors="replace").splitlines():
                if line.strip():
                    assert isinstance(json.loads(line), dict), f"{path.name}: {line[:200]}"
        names = {p.stem for p in logs.glob("*.log")}
        assert {"simulator", "receiver", "worker", "beat"} <= names
        # gunicorn's access lines are there, the webhook's path without its token
        assert re.search(rf"path=/webhooks/runware/{job.task_uuid}/\[redacted\]", text)

    with stack.engine.connect() as connection:
        task_uuids = [row[0] for row in connection.exec_driver_sql("SELECT task_uuid FROM jobs")]
    assert len(task_uuids) == len(lines) + 1
    forbidden = {
        "API key": API_KEY,
        "webhook secret": SECRET,
        "upload signature": SIGNATURE,
        "upload query": "X-Amz-Date",
        **{f"token of {t}": webhook_token(SECRET.encode(), str(t)) for t in task_uuids},
    }
    leaks = {name: value for name, value in forbidden.items() if value in text}
    assert not leaks, f"secrets in the logs: {sorted(leaks)}"

    # What each path wrote, redacted: the scan above read the lines it had to.
    redacted_path = re.escape(f"/webhooks/runware/{job.task_uuid}/[redacted]")
    assert "Error handling request" not in text
    assert re.search(rf"Invalid HTTP request line: '[^'\n]*{redacted_path}", text)
    assert re.search(r"webhook for task \S+ to http://127\.0\.0\.1:\d+/\.\.\. given up", text)
    assert re.search(r"upload to http://127\.0\.0\.1:\d+/\.\.\. failed", text)

    if json_lines:
        return
    # The embedded default's files: the folder and the databases, owner-only.
    data = stack.tmp / "data"
    assert stat.S_IMODE(data.stat().st_mode) == 0o700
    # (The folder covers the rest, Celery beat's schedule: no secret in it.)
    databases = {p.name: stat.S_IMODE(p.stat().st_mode) for p in data.glob("*.sqlite*")}
    assert {"remixq.sqlite", "broker.sqlite"} <= set(databases)
    assert databases == dict.fromkeys(databases, 0o600)
