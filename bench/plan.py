"""What a bench run measures (`Plan`: the full run's sizes, `QUICK`'s, the sections) and what
it gathers on the way (`Results`)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from bench.campaign import CampaignResult
from bench.ingest import IngestResult
from bench.peer import PeerPoint
from bench.submit import SubmitResult
from bench.sustained import SustainedResult

SECTIONS = (
    "ingest",
    "sustained",
    "submit",
    "profiles",
    "campaign",
    "embedded",
    "assets",
    "peer",
)


@dataclass
class Plan:
    webhooks: int = 10_000
    ingest_pairs: int = 3  # alternating bare/receiver pairs; the ratio is their median
    connections: int = 16
    client_processes: int = 2
    server_sweep: tuple[str, ...] = ()  # other gunicorn settings, with --server-sweep
    submit_jobs: int = 5_000
    latency_ms: float = 300.0
    batched_concurrency: tuple[int, ...] = (16, 32, 64)
    # One job per request is held at the provider limit (100 requests/s) by any thread count.
    single_concurrency: tuple[int, ...] = (32,)
    seconds_per_point: float = 6.0
    campaign_sizes: tuple[int, ...] = (1_000, 10_000)  # 100,000 with --large
    profile_webhooks: int = 3_000
    profile_jobs: int = 2_000
    budget_minutes: float = 15.0
    sections: tuple[str, ...] = SECTIONS
    sustained_seconds: float = 60.0
    sustained_rate: float = 2_800.0  # webhooks/s the receiver's corpus is sized for
    sustained_generators: tuple[str, ...] = ("loadgen", "wrk")
    embedded_sizes: tuple[int, ...] = (10_000,)  # beside PostgreSQL's campaign of the same size
    embedded_backends: tuple[str, ...] = ("embedded", "postgres")  # 4b's pair, or one of them
    assets_sizes: tuple[int, ...] = (10_000,)  # campaigns whose images are copied too
    # (jobs, jobs/s): a campaign paced below what the machine can do, whose copies
    # show the delay from an image's webhook to its copy when the cores are not saturated.
    assets_paced: tuple[tuple[int, float], ...] = ((600, 30.0),)
    peer_jobs: int = 2_000
    peer_latencies_ms: tuple[float, ...] = (0.0, 2_000.0)


QUICK = Plan(
    webhooks=3_000,
    ingest_pairs=1,
    submit_jobs=1_000,
    batched_concurrency=(8, 32),
    single_concurrency=(32,),
    seconds_per_point=3.0,
    campaign_sizes=(500, 2_000),
    profile_webhooks=800,
    profile_jobs=500,
    budget_minutes=6.0,  # the projection from 500 jobs overestimates (start-up dominates)
    sustained_seconds=15.0,
    embedded_sizes=(2_000,),
    assets_sizes=(2_000,),
    assets_paced=((500, 30.0),),
    peer_jobs=500,
)

# --server-sweep: benchmark 1's bare/receiver pair again under other gunicorn settings (3 and 4
# gevent workers, the earlier gthread set-up), which chose the deployed ones.
SERVER_SWEEP = (
    "--workers 3",
    "--workers 4",
    "--set worker_class=gthread --set threads=8",
)

# --large: the 100,000-job campaigns, on PostgreSQL + Redis and on the embedded default (they
# do not fit the full run's 15 minutes on two cores).
LARGE_SIZES = (100_000,)


@dataclass
class Results:
    started: float = field(default_factory=time.monotonic)
    ingest: IngestResult | None = None
    sweep: list[IngestResult] = field(default_factory=list)
    submit_deployed: SubmitResult | None = None
    submit_unlimited: SubmitResult | None = None
    submit_sweep: list[SubmitResult] = field(default_factory=list)
    profiles: list[Any] = field(default_factory=list)
    campaigns: list[CampaignResult] = field(default_factory=list)
    assets: list[CampaignResult] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    sustained: SustainedResult | None = None
    embedded: list[CampaignResult] = field(default_factory=list)
    peer: list[PeerPoint] = field(default_factory=list)
    # Campaigns on PostgreSQL + Redis as deployed by default (beat sweeping, every image copied),
    # by size: one per size and run, shared by sections 3-4, 4b and 4c.
    deployed: dict[int, CampaignResult] = field(default_factory=dict)
    section_seconds: dict[str, float] = field(default_factory=dict)  # wall time of each section

    def elapsed(self) -> float:
        return time.monotonic() - self.started
