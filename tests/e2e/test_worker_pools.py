"""A worker's pools apart (worker.pools), with real processes: in a campaign paced by the
provider's limit, every thread of the main pool waits for its turn with more submissions queued
behind, yet beat's ticks and the image downloads, on the background pool, go on: images are
copied within seconds while the campaign still runs. And a background pool that dies is
started again by its worker."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from remixq.cli.processes import wait_until
from remixq.models import Image, Job
from remixq.states import FINAL
from tests.support.stack import Stack, running_stack

pytestmark = pytest.mark.e2e

JOBS = 60  # one per message: far more than the main pool's 16 threads
PACE = 3  # provider calls per second: the campaign takes about 20 s
LINE = {
    "model": "ideogram:4@2",
    "positivePrompt": "A tin of tea on a shelf",
    "width": 1024,
    "height": 1024,
    "numberResults": 1,
    "inputs": {"referenceImages": ["https://example.com/in.jpg"]},
}


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[Stack]:
    with running_stack(
        tmp_path,
        backend="postgresql",
        env={
            "REMIXQ_RATE_LIMIT": str(PACE),
            "REMIXQ_SUBMIT_BATCH": "1",
            "REMIXQ_ASSET_SWEEP_INTERVAL": "1",
        },
        beat=True,
    ) as running:
        yield running


def copies(stack: Stack, campaign_id: int) -> tuple[list[Image], int]:
    """The campaign's images, and how many of its jobs are not final yet."""
    with Session(stack.engine) as session:
        found = list(
            session.scalars(
                select(Image)
                .join(Job, Image.job_id == Job.id)
                .where(Job.campaign_id == campaign_id)
            )
        )
        open_jobs = sum(
            1
            for status in session.scalars(select(Job.status).where(Job.campaign_id == campaign_id))
            if status not in FINAL
        )
    return found, open_jobs


def test_copies_go_on_while_submissions_wait_for_the_provider_limit(stack: Stack) -> None:
    campaign_id = stack.submit(
        [{**LINE, "positivePrompt": f"a tin, {i}"} for i in range(JOBS)], "paced"
    )

    def copied_mid_campaign() -> bool:
        stack.check_alive()
        found, open_jobs = copies(stack, campaign_id)
        stored = [i for i in found if i.asset_status == "stored"]
        return len(stored) >= 10 and open_jobs >= JOBS // 3

    wait_until(copied_mid_campaign, timeout=30, interval=0.2, what="copies while the campaign runs")
    found, _ = copies(stack, campaign_id)
    delays = [
        (i.fetched_at - i.created_at).total_seconds()
        for i in found
        if i.asset_status == "stored" and i.fetched_at and i.created_at
    ]
    assert max(delays) < 8, sorted(delays)  # a sweep (1 s) and a download, not the backlog
    stack.wait_final(campaign_id, timeout=120)


def test_a_background_pool_that_dies_is_started_again(stack: Stack) -> None:
    worker = stack.processes["worker"].pid

    def background_pools() -> list[int]:
        found = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                argv = (entry / "cmdline").read_bytes().split(b"\0")
                parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
            if parent == worker and b"background" in argv:
                found.append(int(entry.name))
        return found

    wait_until(lambda: len(background_pools()) == 1, timeout=30, what="the background pool")
    (first,) = background_pools()
    # Its many threads share two malloc arenas (worker.pools: its memory crept up with one each).
    assert b"MALLOC_ARENA_MAX=2" in Path(f"/proc/{first}/environ").read_bytes().split(b"\0")
    os.kill(first, signal.SIGKILL)
    wait_until(
        lambda: len(pools := background_pools()) == 1 and pools[0] != first,
        timeout=30,
        what="the background pool started again",
    )
    # And it works: a campaign's images are copied.
    campaign_id = stack.submit([LINE], "after")
    stack.wait_final(campaign_id)
    wait_until(
        lambda: {i.asset_status for i in copies(stack, campaign_id)[0]} == {"stored"},
        timeout=30,
        what="the copy",
    )
