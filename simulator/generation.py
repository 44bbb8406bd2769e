"""What accepting an imageInference task decides up front, as a ``TaskRecord``.

Everything random about a task is drawn once, when it is accepted: each result's processing
time and completion order, seed, NSFW flag and structured prompt, its cost, and whether the task
will fail. Finishing the task later only reveals these decisions.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from simulator import assumptions, errors
from simulator.config import FaultKnobs, SimulatorConfig
from simulator.faults import Faults
from simulator.images import ImageSpec
from simulator.models import rendering_speed, safety_checked
from simulator.stats import Stats
from simulator.store import ResultRecord, TaskRecord

_CENT_FRACTION = Decimal("0.0001")  # A10: costs carry at most 4 decimals


def new_record(
    task: Mapping[str, Any],
    knobs: FaultKnobs,
    *,
    config: SimulatorConfig,
    faults: Faults,
    stats: Stats,
    start: float,
    base_url: str,
) -> TaskRecord:
    """The record of a validated ``task`` accepted at scheduler time ``start``."""
    rng = faults.rng
    count = int(task.get("numberResults", 1))
    latencies = sorted(faults.latency_s(knobs) for _ in range(count))
    order = list(range(count))
    if count > 1 and faults.chance(knobs.webhook_reorder_rate):
        stats.fault("webhook_reorder")
        while order == sorted(order):
            rng.shuffle(order)
    # Result order[k] finishes k-th; 1 ms apart so the order holds even at zero latency.
    due = {index: start + latencies[k] + k / 1000.0 for k, index in enumerate(order)}
    cost = None
    if task.get("includeCost") is True:
        price = config.price(str(task["model"]), rendering_speed(task))
        cost = price.quantize(_CENT_FRACTION)
    checked = safety_checked(task)
    prompt = str(task["positivePrompt"])
    results = []
    for index in range(count):
        seed = rng.randint(0, assumptions.SEED_MAX)
        image = ImageSpec(
            prompt=prompt,
            seed=seed,
            width=int(task["width"]),
            height=int(task["height"]),
            output_format=str(task.get("outputFormat", "JPG")),
            quality=int(task.get("outputQuality", 95)),
        )
        results.append(
            ResultRecord(
                index=index,
                image_uuid=str(uuid.uuid4()),
                seed=seed,
                image=image,
                due=due[index],
                cost=cost,
                nsfw=faults.chance(knobs.nsfw_rate) if checked else None,
                structured_prompt=_structured_prompt(task, rng.random())
                if task["model"] == "ideogram:4@remix"
                else None,
            )
        )
    failure = None
    if faults.chance(knobs.failure_rate):
        failure = errors.generation_failed(
            knobs.failure_code, knobs.failure_message, str(task["taskUUID"])
        )
    output_type = str(task.get("outputType", "URL"))
    return TaskRecord(
        task_uuid=str(task["taskUUID"]),
        task=task,
        delivery=str(task.get("deliveryMethod", "sync")),
        output_type=output_type,
        base_url=(config.public_url or base_url).rstrip("/"),
        webhook_url=task.get("webhookURL"),
        upload_endpoint=task.get("uploadEndpoint"),
        # A16: a task without a ttl gets the image_ttl_s knob's lifetime (None: until reset).
        ttl_s=task.get("ttl", knobs.image_ttl_s) if output_type == "URL" else None,
        results=results,
        failure=failure,
        finish_at=max(r.due for r in results),
    )


def _structured_prompt(task: Mapping[str, Any], draw: float) -> dict[str, Any]:
    """An invented stand-in for Ideogram 4.0's structured prompt (assumptions A11)."""
    prompt = str(task["positivePrompt"])
    clauses = [c.strip() for c in re.split(r"[,.;\n]", prompt) if c.strip()]
    strength = task.get("strength")
    return {
        "summary": clauses[0] if clauses else prompt,
        "elements": clauses[1:9],
        "style": rendering_speed(task).lower(),
        # "When omitted, the strength is chosen automatically from the prompt."
        "strength": strength if strength is not None else round(0.3 + 0.5 * draw, 2),
    }
