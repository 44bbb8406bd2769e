"""Benchmark 5: the peer baseline. The same N jobs, all in flight at once, sent by what a user
would write instead of remixq (bench/peer_client.py: Runware's Python SDK, REST, sync delivery)
and by remixq (a whole campaign: `remixq submit`, the worker, the receiver, PostgreSQL and
Redis), against the simulator at 0 ms and at 2 s of generation latency, in the same run.

Wall time: the script's, from its launch to its last result written; remixq's, from the launch
of `remixq submit` to the last job's `finished_at` (every image stored); both include a Python
start-up and imports. CPU per job: the script's
process; remixq's submit, worker and receiver, PostgreSQL's backends apart; the simulator's
apart for both (it is the provider).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from dataclasses import dataclass
from typing import Any

import requests as http

from bench import procs
from bench.campaign import CampaignResult, run_campaign
from bench.env import BenchEnv
from remixq.cli.processes import free_port, start, wait_until
from remixq.examples import campaign_lines

REMIXQ_PROCESSES = ("producer (remixq submit)", "worker", "receiver")


@dataclass
class PeerPoint:
    latency_ms: float
    jobs: int
    script: dict[str, Any]  # the client's summary line
    script_simulator_cpu_s: float
    remixq: CampaignResult

    @property
    def remixq_cpu_ms(self) -> float:
        return sum(self.remixq.cpu_ms_per_job(name) for name in REMIXQ_PROCESSES)

    @property
    def script_cpu_ms(self) -> float:
        return float(self.script["cpu_s"]) / self.jobs * 1000

    @property
    def wall_ratio(self) -> float:
        return self.remixq.wall_s / float(self.script["wall_s"])

    def rows(self) -> list[dict[str, Any]]:
        common = {"latency ms": self.latency_ms, "jobs": self.jobs}
        return [
            {
                **common,
                "who": "SDK script (REST, sync)",
                "wall s": round(float(self.script["wall_s"]), 2),
                "jobs/s": round(self.jobs / float(self.script["wall_s"])),
                "client CPU ms/job": round(self.script_cpu_ms, 3),
                "postgres CPU ms/job": 0.0,
                "simulator CPU ms/job": round(self.script_simulator_cpu_s / self.jobs * 1000, 3),
                "images": self.script["images"],
                "failed": self.script["failed"],
            },
            {
                **common,
                "who": "remixq (submit + worker + receiver)",
                "wall s": round(self.remixq.wall_s, 2),
                "jobs/s": round(self.remixq.rate),
                "client CPU ms/job": round(self.remixq_cpu_ms, 3),
                "postgres CPU ms/job": round(self.remixq.cpu_ms_per_job("postgres"), 3),
                "simulator CPU ms/job": round(self.remixq.cpu_ms_per_job("simulator"), 3),
                "images": self.remixq.images,
                "failed": sum(v for k, v in self.remixq.statuses.items() if k != "completed"),
            },
        ]


def run_script(env: BenchEnv, jobs: int, latency_ms: float) -> tuple[dict[str, Any], float]:
    """The SDK script against a simulator of its own; its summary and the simulator's CPU."""
    port = free_port()
    simulator = start(
        f"p-simulator-{port}",
        ["simulator", "--port", str(port), "--latency-ms", str(latency_ms)],
        env=env.env(),
        log_dir=env.logs,
        new_session=True,
    )
    try:
        wait_until(
            lambda: _ok(f"http://127.0.0.1:{port}/_control/stats"),
            timeout=60,
            what="simulator",
            alive=[simulator],
        )
        campaign = env.root / f"peer-{jobs}.jsonl"
        campaign.write_text("".join(json.dumps(line) + "\n" for line in campaign_lines(jobs)))
        cpu0 = procs.cpu(simulator)
        launched = time.time()
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "bench.peer_client",
                str(campaign),
                "--url",
                f"http://127.0.0.1:{port}/v1",
                "--out",
                str(env.root / f"peer-{jobs}-{latency_ms:g}.results.jsonl"),
            ],
            capture_output=True,
            text=True,
            timeout=900,
            check=False,
        )
        simulator_cpu = procs.cpu(simulator) - cpu0
    finally:
        simulator.stop()
    if not done.stdout.strip():
        raise RuntimeError(f"the SDK script failed: {done.stderr[-2000:]}")
    summary: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    summary["wall_s"] = summary["ended_at"] - launched  # from the launch, as remixq's
    return summary, simulator_cpu


def run_peer(
    env: BenchEnv, *, jobs: int, latencies_ms: tuple[float, ...] = (0.0, 2000.0)
) -> list[PeerPoint]:
    points = []
    for latency in latencies_ms:
        script, simulator_cpu = run_script(env, jobs, latency)
        time.sleep(1)
        remixq = run_campaign(
            env,
            jobs_count=jobs,
            duplicate_rate=0.0,
            simulator_args=("--latency-ms", str(latency)),
        )
        points.append(PeerPoint(latency, jobs, script, simulator_cpu, remixq))
    return points


def _ok(url: str) -> bool:
    try:
        return http.get(url, timeout=1).status_code == 200
    except http.RequestException:
        return False
