"""A matrix spec end to end with real processes (simulator, worker, receiver, PostgreSQL +
Redis): the dry run's estimate, made with the default price table, is exactly what the
simulator charged and what the ledger stored, in all and per variant; `remixq costs` (and the
API's /costs, the same document) equals the sum of the images' costs, to the last digit."""

from __future__ import annotations

import json
from collections import defaultdict
from decimal import Decimal
from pathlib import Path

import pytest
import requests

from tests.support.images import png_bytes
from tests.support.stack import running_stack

pytestmark = pytest.mark.e2e

SPEC = """\
name: tins-e2e
budget_usd: "5"
defaults:
  model: "ideogram:4@2"
  width: 1024
  height: 1024
  inputs: {referenceImages: ["tins/green.png"]}
matrix:
  positivePrompt: ["a tea tin, autumn palette", "a tea tin, winter palette"]
  providerSettings.ideogram.renderingSpeed: ["TURBO", "DEFAULT", "QUALITY"]
  numberResults: [1, 3]
jobs:
  - model: "ideogram:1@2"
    positivePrompt: "a 1.0 tin"
    providerSettings: {ideogram: {renderingSpeed: QUALITY}}
    numberResults: 2
  - model: "ideogram:4@remix"
    width: 2048
    height: 2048
    positivePrompt: "a 4.0 tin"
    inputs: {referenceImages: null, seedImage: "tins/red.png"}
    settings: {renderingSpeed: TURBO}
"""


def test_the_dry_run_estimate_is_what_the_matrix_cost(tmp_path: Path) -> None:
    (tmp_path / "tins").mkdir()
    (tmp_path / "tins" / "green.png").write_bytes(png_bytes((4, 4)))
    (tmp_path / "tins" / "red.png").write_bytes(png_bytes((5, 5)))
    path = tmp_path / "tins.yaml"
    path.write_text(SPEC)
    with running_stack(
        tmp_path, backend="postgresql", sim_args=("--latency-ms", "10"), database="spec_e2e"
    ) as stack:
        estimate = json.loads(stack.run_cli("submit", str(path), "--dry-run", "--json").stdout)
        # 2 prompts x 3 speeds x (1 + 3) images at 0.03/0.06/0.09, + 2 x 0.09 + 1 x 0.03
        assert (estimate["jobs"], estimate["images"]) == (14, 27)
        assert estimate["estimated_cost_usd"] == "1.65"

        made = json.loads(stack.run_cli("submit", str(path), "--json").stdout)
        assert made["jobs"] == 14 and made["name"] == "tins-e2e"
        jobs = stack.wait_final(made["campaign_id"], timeout=120)
        assert {job.status for job in jobs} == {"completed"}
        assert stack.campaign(made["campaign_id"]).budget_usd == Decimal(5)

        stored = sum((image.cost or Decimal(0) for job in jobs for image in job.images), Decimal(0))
        charged = Decimal(str(stack.sim_stats(tasks=False)["cost_total"]))
        assert stored == charged == Decimal(estimate["estimated_cost_usd"])
        assert all(image.cost is not None for job in jobs for image in job.images)

        # Per variant, too: the export groups the stored costs by each job's variant (its keys
        # in PostgreSQL's jsonb order, not the axes').
        export = stack.run_cli("export", "tins-e2e", "--format", "jsonl").stdout.splitlines()
        by_variant: dict[str, Decimal] = defaultdict(Decimal)
        for line in export:
            row = json.loads(line)
            by_variant[json.dumps(row["variant"], sort_keys=True)] += Decimal(row["cost_usd"])
        expected = {
            json.dumps(group["variant"], sort_keys=True): Decimal(group["estimated_cost_usd"])
            for group in estimate["by_variant"]
        }
        assert dict(by_variant) == expected

        # remixq costs: spent is the sum of the images' costs exactly, estimated the dry run's,
        # nothing reserved or overrun; per variant, each spent what its estimate said.
        costs = json.loads(stack.run_cli("costs", "--campaign", "tins-e2e", "--json").stdout)
        total = costs["total"]
        assert Decimal(total["spent_usd"]) == stored
        assert total["estimated_usd"] == estimate["estimated_cost_usd"]
        assert (total["reserved_usd"], total["overrun_usd"]) == ("0.00", "0.00")
        assert total["images"] == 27
        by_variant_costs = json.loads(
            stack.run_cli("costs", "--campaign", "tins-e2e", "--by", "variant", "--json").stdout
        )
        spent = {
            json.dumps(row["key"], sort_keys=True): Decimal(row["spent_usd"])
            for row in by_variant_costs["rows"]
        }
        assert spent == expected

        # The receiver's API answers the same report.
        made_key = json.loads(stack.run_cli("apikey", "create", "e2e", "--json").stdout)
        answer = requests.get(
            f"{stack.receiver_url}/api/v1/costs",
            params={"campaign": made["campaign_id"], "by": "variant"},
            headers={"Authorization": f"Bearer {made_key['key']}"},
            timeout=30,
        )
        assert answer.status_code == 200, answer.text
        assert answer.json() == by_variant_costs | {"campaign": made["campaign_id"]}
