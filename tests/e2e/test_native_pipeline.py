"""Ideogram's own API beside Runware, end to end with real processes on PostgreSQL + the test
broker (simulator, receiver, a `remixq worker` with its native pool, beat): a campaign mixing
both providers completes with exactly the images each job asked for and exactly the costs
(Runware's as the simulator charged them, Ideogram's from the price table, marked estimated);
the native images are copied at once; unsafe results are stored without a URL; nothing is paid
twice."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from contextlib import closing
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import requests

from remixq.cli.processes import stable_port, wait_until
from remixq.models import Job
from remixq.pricing import PriceTable
from tests.support.images import png_bytes
from tests.support.stack import Stack, running_stack

pytestmark = pytest.mark.e2e

RUNWARE = {
    "model": "ideogram:4@2",
    "positivePrompt": "a tea tin on a shelf",
    "width": 1024,
    "height": 1024,
    "numberResults": 2,
    "inputs": {"referenceImages": ["https://example.com/in.jpg"]},
}
IDEOGRAM = {
    "provider": "ideogram",
    "prompt": "a tea tin on a shelf, as a travel poster",
    "image": "tin.png",  # a local file beside the campaign file: sent inline
    "rendering_speed": "TURBO",
    "num_images": 3,
}


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[Stack]:
    with running_stack(
        tmp_path,
        backend="postgresql",
        sim_args=("--latency-ms", "20"),
        env={
            "REMIXQ_ASSET_SWEEP_INTERVAL": "1",
            "REMIXQ_NATIVE_CONCURRENCY": "4",
            "REMIXQ_IDEOGRAM_RATE_LIMIT": "20",
        },
        beat=True,
    ) as running:
        (running.tmp / "tin.png").write_bytes(png_bytes((16, 16)))
        running.set_faults(ideogram_latency_ms=200)
        yield running


def costs(stack: Stack, campaign: str) -> dict[str, Any]:
    found: dict[str, Any] = json.loads(
        stack.run_cli("costs", "--campaign", campaign, "--by", "model", "--json").stdout
    )
    return found


def price(speed: str) -> Decimal:
    """The default price table's USD per image of Ideogram's own API at `speed`."""
    return PriceTable.default().price("ideogram-v3-remix", speed)


def copied(stack: Stack, campaign_id: int) -> list[Job]:
    def settled() -> bool:
        stack.check_alive()
        return all(
            image.asset_status != "pending"
            for job in stack.jobs(campaign_id)
            for image in job.images
        )

    wait_until(settled, timeout=60, interval=0.2, what="every image's copy to settle")
    return stack.jobs(campaign_id)


def test_a_campaign_mixing_both_providers_completes_with_exact_images_and_costs(
    stack: Stack,
) -> None:
    lines = [
        *({**RUNWARE, "positivePrompt": f"a tea tin, {n}"} for n in range(4)),
        *({**IDEOGRAM, "prompt": f"a tea tin poster, {n}"} for n in range(3)),
    ]
    campaign_id = stack.submit(lines, "mixed")
    jobs = stack.wait_final(campaign_id)

    assert [(j.provider, j.status) for j in jobs] == [
        *[("runware", "completed")] * 4,
        *[("ideogram", "completed")] * 3,
    ]
    for job in jobs:
        assert len(job.images) == job.number_results == (2 if job.provider == "runware" else 3)
        assert len({image.image_uuid for image in job.images}) == job.number_results
        assert job.lost_answers == 0 and job.call_sent_at is None
    native_images = [i for j in jobs if j.provider == "ideogram" for i in j.images]
    assert all(i.image_url and i.nsfw is False and i.raw["isImageSafe"] for i in native_images)
    assert all(i.cost == price("TURBO") for i in native_images)

    stats = stack.sim_stats()
    ideogram = stats["providers"]["ideogram"]
    assert (ideogram["calls"], ideogram["charged"]) == (3, 3)  # one call per job: none twice
    runware_spent = sum(
        (i.cost or Decimal(0) for j in jobs if j.provider == "runware" for i in j.images),
        Decimal(0),
    )
    assert Decimal(stats["cost_total"]) == runware_spent  # the simulator's Runware charges
    native_spent = 9 * price("TURBO")
    assert Decimal(ideogram["cost"]) == native_spent  # the price table matches what it charged

    report = costs(stack, "mixed")
    assert Decimal(report["total"]["spent_usd"]) == runware_spent + native_spent
    assert Decimal(report["total"]["spent_estimated_usd"]) == native_spent
    by_model = {row["key"]: row for row in report["rows"]}
    assert Decimal(by_model["ideogram-v3-remix"]["spent_estimated_usd"]) == native_spent
    assert by_model["ideogram:4@2"]["spent_estimated_usd"] == "0.00"

    status = json.loads(stack.run_cli("status", "mixed", "--json").stdout)
    assert Decimal(status["spent_estimated_usd"]) == native_spent
    flags = {job["provider"]: job["cost_estimated"] for job in status["jobs"]}
    assert flags == {"runware": False, "ideogram": True}
    table = " ".join(stack.run_cli("status", "mixed").stdout.split())
    assert f"of which {status['spent_estimated_usd']} USD estimated" in table

    exported = stack.run_cli("export", "mixed", "--format", "jsonl").stdout.splitlines()
    rows = [json.loads(line) for line in exported]
    assert len(rows) == 4 * 2 + 3 * 3
    assert {(r["provider"], r["cost_estimated"]) for r in rows} == {
        ("runware", False), ("ideogram", True)
    }  # fmt: skip

    # The native images were handed to the asset store at once and copied (PNG, as served).
    for job in copied(stack, campaign_id):
        for image in job.images:
            assert image.asset_status == "stored", image.asset_reason
            if job.provider == "ideogram":
                assert image.format == "PNG"


def test_unsafe_results_are_stored_without_a_url_and_cost_their_share(stack: Stack) -> None:
    stack.set_faults(ideogram_unsafe_rate=1.0)
    campaign_id = stack.submit([{**IDEOGRAM, "num_images": 2}], "unsafe")
    (job,) = stack.wait_final(campaign_id)

    assert (job.status, len(job.images)) == ("completed", 2)
    for image in job.images:
        assert (image.image_url, image.nsfw, image.raw["isImageSafe"]) == (None, True, False)
        assert image.cost == price("TURBO")
    (job,) = copied(stack, campaign_id)
    assert {image.asset_status for image in job.images} == {"failed"}
    assert all("unsafe" in (image.asset_reason or "") for image in job.images)
    assert stack.sim_stats()["providers"]["ideogram"]["charged"] == 1


def worker_metrics_ports() -> int:
    """A port free below the ephemeral range whose next two are free too (a worker's /metrics,
    its native pool's and its background pool's)."""
    for _ in range(50):
        port = stable_port()
        free = True
        for offset in (1, 2):
            with closing(socket.socket()) as sock:
                try:
                    sock.bind(("127.0.0.1", port + offset))
                except OSError:
                    free = False
        if free:
            return port
    raise AssertionError("no three consecutive free ports")


def lost_answers_counted(metrics_url: str) -> float:
    text = requests.get(metrics_url, timeout=5).text
    line = 'remixq_provider_answers_lost_total{provider="ideogram"} '
    found = [row for row in text.splitlines() if row.startswith(line)]
    return float(found[0].split()[-1]) if found else 0.0


@pytest.fixture
def faulty(tmp_path: Path) -> Iterator[Stack]:
    """A stack whose native calls time out after 2 s, and whose claims of a dead worker's call
    expire 2 s later (REMIXQ_IDEOGRAM_TIMEOUT + REMIXQ_CLAIM_LEASE), with beat's relay every
    second."""
    with running_stack(
        tmp_path,
        backend="postgresql",
        sim_args=("--latency-ms", "20"),
        env={
            "REMIXQ_IDEOGRAM_TIMEOUT": "2",
            "REMIXQ_CLAIM_LEASE": "2",
            "REMIXQ_RELAY_INTERVAL": "1",
            "REMIXQ_SUBMIT_MAX_RETRIES": "3",
        },
        beat=True,
    ) as running:
        (running.tmp / "tin.png").write_bytes(png_bytes((16, 16)))
        running.stop("worker")  # again with /metrics (beat would take the same port)
        running.start("worker", REMIXQ_METRICS_PORT=str(worker_metrics_ports()))
        yield running


def ideogram_calls(stack: Stack) -> tuple[int, int]:
    found = stack.sim_stats(tasks=False)["providers"]["ideogram"]
    return int(found["calls"]), int(found["charged"])


def test_422_429_and_lost_answers_behave_as_documented(faulty: Stack) -> None:
    faulty.set_faults(ideogram_422_rate=1.0)
    (job,) = faulty.wait_final(faulty.submit([{**IDEOGRAM, "prompt": "a tin, refused"}], "refused"))
    assert (job.status, job.error_code, job.images) == ("failed", "safetyRejected", [])
    assert "safety" in (job.error_message or "").lower()
    assert ideogram_calls(faulty) == (1, 0)

    # Two 429s, then an answer: retried with backoff, charged once.
    faulty.set_faults(ideogram_422_rate=0.0, ideogram_429_rate=1.0, retry_after_s=1)
    campaign_id = faulty.submit([{**IDEOGRAM, "prompt": "a tin, throttled"}], "throttled")
    wait_until(lambda: ideogram_calls(faulty)[0] >= 3, timeout=30, what="two 429s")
    faulty.set_faults(ideogram_429_rate=0.0)
    (job,) = faulty.wait_final(campaign_id)
    assert (job.status, len(job.images), job.lost_answers) == ("completed", 3, 0)
    calls, charged = ideogram_calls(faulty)
    assert charged == 1 and calls == job.attempts + 1  # + the 422's call

    # An answer held past the client's timeout: possibly charged, failed (the default policy).
    faulty.set_faults(ideogram_lost_answer_rate=1.0, ideogram_lost_answer_mode="hold",
                      ideogram_lost_answer_hold_s=4)  # fmt: skip
    (job,) = faulty.wait_final(faulty.submit([{**IDEOGRAM, "prompt": "a tin, lost"}], "lost"))
    assert (job.status, job.error_code, job.lost_answers, job.images) == (
        "failed", "possiblyCharged", 1, []
    )  # fmt: skip
    assert ideogram_calls(faulty)[1] == 2  # Ideogram did the work: it may have charged
    # Counted by the native pool, on the port after its worker's.
    port = int(faulty.process_env["worker"]["REMIXQ_METRICS_PORT"]) + 1
    native_metrics = f"http://127.0.0.1:{port}/metrics"
    assert lost_answers_counted(native_metrics) == 1
    status = json.loads(faulty.run_cli("status", "lost", "--json", check=False).stdout)
    assert status["jobs"][0]["lost_answers"] == 1
    assert status["jobs"][0]["error"]["code"] == "possiblyCharged"

    # A retry is a person's conscious choice: a new job, called once more.
    faulty.set_faults(ideogram_lost_answer_rate=0.0)
    faulty.run_cli("retry", "lost")
    jobs = faulty.wait_final(job.campaign_id or 0)
    assert [(j.status, len(j.images)) for j in jobs] == [("failed", 0), ("completed", 3)]
    assert ideogram_calls(faulty)[1] == 3


def test_a_worker_killed_mid_call_leaves_a_possibly_charged_job(faulty: Stack) -> None:
    faulty.set_faults(ideogram_latency_ms=1500)
    campaign_id = faulty.submit([{**IDEOGRAM, "prompt": "a tin, killed"}], "killed")

    def in_flight() -> bool:
        (job,) = faulty.jobs(campaign_id)
        return job.call_sent_at is not None

    wait_until(in_flight, timeout=30, interval=0.05, what="the call to be sent")
    faulty.kill("worker")  # its native pool with it, mid-call
    faulty.start("worker")

    (job,) = faulty.wait_final(campaign_id)
    assert (job.status, job.error_code, job.lost_answers) == ("failed", "possiblyCharged", 1)
    assert "may have been charged" in (job.error_message or "")
    assert ideogram_calls(faulty) == (1, 1)  # called once, never again blindly
