"""Chaos: a worker killed with SIGKILL while it downloads images (each GET held 3 s by the
simulator), on PostgreSQL + Redis and on the embedded default: the copies it held stay pending,
are handed over again when their lease ends, and end stored, each once."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from remixq.cli.processes import wait_until
from remixq.models import Image, Job
from tests.support.stack import Stack, running_stack

pytestmark = pytest.mark.chaos

LEASE_S = 8  # above the 3-s downloads, short enough for a test
LINE = {
    "model": "ideogram:4@2",
    "positivePrompt": "A tin of tea on a shelf",
    "width": 1024,
    "height": 1024,
    "numberResults": 2,
    "inputs": {"referenceImages": ["https://example.com/in.jpg"]},
}


@pytest.fixture(params=["postgresql", "sqlite"])
def stack(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Stack]:
    with running_stack(
        tmp_path,
        backend=request.param,
        sim_args=("--image-latency-ms", "3000"),
        env={"REMIXQ_ASSET_SWEEP_INTERVAL": "1", "REMIXQ_ASSET_LEASE": str(LEASE_S)},
        beat=request.param == "postgresql",
    ) as running:
        yield running


def images(stack: Stack, campaign_id: int) -> list[Image]:
    with Session(stack.engine) as session:
        return list(
            session.scalars(
                select(Image)
                .join(Job, Image.job_id == Job.id)
                .where(Job.campaign_id == campaign_id)
            )
        )


def test_a_worker_killed_mid_download_loses_no_copy(stack: Stack) -> None:
    campaign_id = stack.submit([LINE] * 4, "killed")
    stack.wait_final(campaign_id)

    def downloading() -> bool:
        found = images(stack, campaign_id)
        return len(found) == 8 and any(i.asset_attempts >= 1 for i in found)

    wait_until(downloading, timeout=60, interval=0.1, what="downloads in flight")
    stack.kill("worker")
    held = {i.id for i in images(stack, campaign_id) if i.asset_status == "pending"}
    assert held  # copies the dead worker held (claimed, not recorded)
    stack.start("worker")

    def all_stored() -> bool:
        stack.check_alive()
        return all(i.asset_status == "stored" for i in images(stack, campaign_id))

    wait_until(all_stored, timeout=LEASE_S + 90, interval=0.25, what="every copy stored")
    found = images(stack, campaign_id)
    files = [
        p for p in (stack.tmp / "data" / "images").rglob("*") if p.is_file() and p.name[0] != "."
    ]
    assert len(files) == len({i.sha256 for i in found}) == 8  # each stored once
    assert any(i.asset_attempts >= 2 for i in found if i.id in held)  # taken over after the lease
