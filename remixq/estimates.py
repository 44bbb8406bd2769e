"""What a submission would cost, before anything is stored: the figures of `remixq submit
--dry-run` and of the API's `POST /api/v1/estimates`, made by one function so that both say
the same.

The jobs are estimated as they would be stored (the task `remixq.producing` would insert, so a
request's defaults count as they will), with the price table's prices (`remixq.pricing`):
jobs, images and estimated USD in all, per model and per variant (a spec's axis values, or its
explicit job; a plain request has none).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import Any

from remixq.pricing import Estimate, PriceTable, estimate_all
from remixq.producing import NewJob
from remixq.providers import provider_for
from remixq.reports import money
from remixq.specs import variant_label


def estimate_jobs(new_jobs: Iterable[NewJob], table: PriceTable) -> Estimate:
    """The estimate of validated jobs (a campaign file's, a spec's, an API body's)."""
    stored = (
        (
            provider_for(new.provider).build_task(new.request, task_uuid=str(uuid.uuid4())),
            new.variant,
            new.provider,
        )
        for new in new_jobs
    )
    return estimate_all(stored, table, label=variant_label)


def estimate_document(estimate: Estimate) -> dict[str, Any]:
    """The estimate for machines: `{"jobs", "images", "estimated_cost_usd", "by_model": {model:
    {"jobs", "images", "estimated_cost_usd"}}, "by_variant": [{"variant", "jobs", "images",
    "estimated_cost_usd"}]}`, amounts as decimal strings, variants in the order they first
    appear."""
    return {
        "jobs": estimate.total.jobs,
        "images": estimate.total.images,
        "estimated_cost_usd": money(estimate.total.cost),
        "by_model": {model: tally.as_json() for model, tally in estimate.by_model.items()},
        "by_variant": [
            {"variant": variant, **tally.as_json()}
            for variant, tally in estimate.by_variant.values()
        ],
    }
