"""What a bench run measures (`Plan`: the full run's sizes, `QUICK`'s, the sections) and what
it gathers on the way (`Results`)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from bench.campaign import CampaignResult
from bench.ingest import IngestResult
from bench.submit import SubmitResult

SECTIONS = ("ingest", "submit", "profiles", "campaign")


@dataclass
class Plan:
    webhooks: int = 20_000
    ingest_pairs: int = 5  # alternating bare/receiver pairs; the ratio is their median
    connections: int = 16
    client_processes: int = 2
    server_sweep: tuple[str, ...] = (
        "--workers 3",
        "--workers 4",
        "--set worker_class=gthread --set threads=8",
    )
    submit_jobs: int = 5_000
    latency_ms: float = 300.0
    batched_concurrency: tuple[int, ...] = (4, 16, 32, 64)
    single_concurrency: tuple[int, ...] = (8, 32, 64)
    seconds_per_point: float = 6.0
    campaign_sizes: tuple[int, ...] = (1_000, 10_000, 100_000)
    profile_webhooks: int = 3_000
    profile_jobs: int = 2_000
    budget_minutes: float = 15.0
    sections: tuple[str, ...] = SECTIONS


QUICK = Plan(
    webhooks=3_000,
    ingest_pairs=1,
    server_sweep=(),
    submit_jobs=1_000,
    batched_concurrency=(8, 32),
    single_concurrency=(32,),
    seconds_per_point=3.0,
    campaign_sizes=(500, 2_000),
    profile_webhooks=800,
    profile_jobs=500,
    budget_minutes=2.5,  # the projection from 500 jobs overestimates (start-up dominates)
)


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
    notes: list[str] = field(default_factory=list)

    def elapsed(self) -> float:
        return time.monotonic() - self.started
