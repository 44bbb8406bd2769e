"""Budgets end to end with real processes (the embedded default: SQLite, its broker, the
simulator, a receiver and a worker): the provider charges more than the price table says, the
overrun is recorded, and the worker's claim holds the campaign before actual spend could pass
its budget; a raised budget lets it finish, and `remixq costs` adds up exactly."""

from __future__ import annotations

import json
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest

from remixq.cli.processes import wait_until
from tests.support.stack import Stack, running_stack

pytestmark = pytest.mark.e2e

JOB = {
    "model": "ideogram:4@2",
    "positivePrompt": "a tea tin",
    "width": 1024,
    "height": 1024,
    "inputs": {"referenceImages": ["c64351d5-4c59-42f7-95e1-eace013eddab"]},
}  # one image at the default speed: 0.06 USD by the price table
CHARGED = Decimal("0.10")  # what the simulator charges for it


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[Stack]:
    prices = json.dumps({"ideogram:4@2": {"DEFAULT": str(CHARGED)}})
    with running_stack(
        tmp_path,
        backend="sqlite",
        sim_args=("--prices", prices, "--latency-ms", "20"),
        # One job per provider call, one call every two seconds: each job's webhook lands
        # before the next claim, so the claim sees the overrun of the jobs before it.
        env={"REMIXQ_RATE_LIMIT": "0.5", "REMIXQ_SUBMIT_BATCH": "1"},
    ) as running:
        yield running


def report(stack: Stack) -> dict[str, object]:
    done = stack.run_cli("status", "tins", "--json", check=False)
    answer: dict[str, object] = json.loads(done.stdout)
    return answer


def test_an_overrun_holds_the_campaign_before_spend_passes_its_budget(stack: Stack) -> None:
    path = stack.tmp / "tins.jsonl"
    lines = [json.dumps(JOB | {"positivePrompt": f"a tea tin, {n}"}) for n in range(5)]
    path.write_text("".join(line + "\n" for line in lines))
    stack.run_cli("submit", str(path), "--campaign", "tins", "--budget", "0.30")

    # The first job costs 0.10 against its 0.06 estimate: 0.10 spent + 4 x 0.06 reserved is
    # past the budget, so the next claim pauses the campaign instead of submitting.
    def held() -> bool:
        stack.check_alive()
        return report(stack)["paused_by"] == "budget"

    wait_until(held, timeout=60, interval=0.2, what="the budget's hold")
    head = report(stack)
    assert head["counts"] == {"completed": 1, "pending": 4}
    assert (head["spent_usd"], head["reserved_usd"], head["overrun_usd"]) == (
        "0.10", "0.24", "0.04"
    )  # fmt: skip
    assert "past its budget of 0.30 USD" in str(head["pause_reason"])
    assert len(stack.sim_stats()["tasks"]) == 1  # nothing more reached the provider
    table = stack.run_cli("status", "tins", check=False).stdout
    assert "overrun 0.04 USD" in table and "paused since" in table

    raised = stack.run_cli("budget", "tins", "0.60")
    assert "resumed: 4 waiting job(s)" in raised.stdout
    jobs = stack.wait_final(int(str(head["campaign_id"])))
    assert [job.status for job in jobs] == ["completed"] * 5

    costs = json.loads(stack.run_cli("costs", "--campaign", "tins", "--json").stdout)
    images = sum((image.cost or Decimal(0) for job in jobs for image in job.images), Decimal(0))
    assert Decimal(costs["total"]["spent_usd"]) == images == 5 * CHARGED
    assert Decimal(stack.sim_stats()["cost_total"]) == images
    assert costs["total"]["estimated_usd"] == "0.30"
    assert costs["total"]["overrun_usd"] == "0.20" and costs["total"]["reserved_usd"] == "0.00"


SPEC = """\
name: matrix-tins
budget_usd: "5.00"
defaults:
  width: 1024
  height: 1024
  numberResults: 2
  inputs: {referenceImages: ["c64351d5-4c59-42f7-95e1-eace013eddab"]}
matrix:
  model: ["ideogram:4@2", "ideogram:1@2"]
  positivePrompt: ["a tea tin, autumn palette", "a tea tin, winter palette"]
  providerSettings.ideogram.renderingSpeed: ["TURBO", "DEFAULT", "QUALITY"]
"""


def test_a_matrix_spec_costs_what_its_dry_run_said(tmp_path: Path) -> None:
    with running_stack(tmp_path, backend="sqlite", sim_args=("--latency-ms", "20")) as stack:
        spec = stack.tmp / "tins.yaml"
        spec.write_text(SPEC)
        dry = json.loads(stack.run_cli("submit", str(spec), "--dry-run", "--json").stdout)
        assert (dry["jobs"], dry["images"]) == (12, 24)
        # Followed to the end (off a terminal: one line per change), exit 0: none failed.
        watched = stack.run_cli("submit", str(spec), "--watch")
        lines = watched.stdout.strip().splitlines()
        assert "12 jobs enqueued" in lines[0]
        assert "12/12 final (12 completed)" in lines[-1] and lines[-1].endswith("done")
        assert "of 5.00 (reserved 0.00)" in lines[-1]
        head = json.loads(stack.run_cli("status", "matrix-tins", "--json").stdout)
        jobs = stack.wait_final(int(head["campaign_id"]))

        costs = json.loads(stack.run_cli("costs", "--campaign", "matrix-tins", "--json").stdout)
        images = [image.cost for job in jobs for image in job.images]
        assert len(images) == 24 and None not in images
        spent = sum((cost or Decimal(0) for cost in images), Decimal(0))
        assert Decimal(costs["total"]["spent_usd"]) == spent  # exactly, to the last digit
        assert Decimal(stack.sim_stats()["cost_total"]) == spent
        assert Decimal(dry["estimated_cost_usd"]) == spent  # the table matched the provider
        assert costs["total"]["estimated_usd"] == dry["estimated_cost_usd"]
        assert costs["total"]["overrun_usd"] == "0.00"
        by_variant = json.loads(
            stack.run_cli("costs", "--campaign", "matrix-tins", "--by", "variant", "--json").stdout
        )
        assert len(by_variant["rows"]) == 12
        assert {row["jobs"] for row in by_variant["rows"]} == {1}
        by_model = json.loads(
            stack.run_cli("costs", "--campaign", "matrix-tins", "--by", "model", "--json").stdout
        )
        for row in by_model["rows"]:  # 2 prompts x 3 speeds x 2 images: 0.06+0.12+0.18 twice
            assert (row["jobs"], row["spent_usd"]) == (6, "0.72")
