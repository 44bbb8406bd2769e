"""Typed configuration of the simulator: static settings and the fault knobs.

``FaultKnobs`` holds everything that may change while the simulator runs (through
``PUT /_control/faults``); ``SimulatorConfig`` holds the rest plus the knobs' start values. Both
are read from the environment in one place, ``SimulatorConfig.from_env``: every field ``x`` has
the variable ``REMIXQ_SIM_X``. Open points of the contract are decided in ``assumptions.py``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from simulator import assumptions

ENV_PREFIX = "REMIXQ_SIM_"
# The port has the name the product's worker and demo read (one name everywhere); the
# simulator's own prefix is its older name, kept as an alias. The first one set wins.
PORT_ENV_VARS = ("REMIXQ_SIMULATOR_PORT", "REMIXQ_SIM_PORT")

Rate = Annotated[float, Field(ge=0.0, le=1.0)]
Envelope = Literal["bare", "data", "mixed"]

MODEL_IDS = ("ideogram:1@2", "ideogram:4@2", "ideogram:4@remix")
RENDERING_SPEEDS = ("TURBO", "DEFAULT", "QUALITY")
IDEOGRAM_MODEL = "ideogram-v3-remix"  # Ideogram's own endpoint (simulator.ideogram)
LostAnswerMode = Literal["close", "hold"]


def default_prices() -> dict[str, dict[str, Decimal]]:
    """USD per image; DEFAULT matches the 0.06 of every documented example (assumptions A10);
    Ideogram's own endpoint adds FLASH (assumptions I6)."""
    speeds = {"TURBO": Decimal("0.03"), "DEFAULT": Decimal("0.06"), "QUALITY": Decimal("0.09")}
    prices = {model: dict(speeds) for model in MODEL_IDS}
    prices[IDEOGRAM_MODEL] = {"FLASH": Decimal("0.015"), **speeds}
    return prices


class FaultKnobs(BaseModel):
    """Run-time knobs: latency, injected failures and webhook delivery behaviour."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    latency_ms: float = Field(0.0, ge=0, description="Mean processing time of each result (ms).")
    latency_jitter_ms: float = Field(
        0.0, ge=0, description="Each result's latency is uniform in latency_ms ± this (ms)."
    )
    submit_latency_ms: float = Field(
        0.0, ge=0, description="Delay before POST /v1 is answered, on every request (ms)."
    )
    submit_429_rate: Rate = Field(
        0.0, description="Share of POST /v1 answered 429 rateLimitExceeded; nothing accepted."
    )
    submit_500_rate: Rate = Field(
        0.0, description="Share of POST /v1 answered 500 internalServerError; nothing accepted."
    )
    submit_503_rate: Rate = Field(
        0.0, description="Share of POST /v1 answered 503 serviceUnavailable; nothing accepted."
    )
    submit_504_rate: Rate = Field(
        0.0, description="Share of POST /v1 answered 504 gatewayTimeout; nothing accepted."
    )
    retry_after_s: int | None = Field(
        None, ge=0, description="Send 'Retry-After: N' on injected 429/503 (unset: no header)."
    )
    submit_timeout_rate: Rate = Field(
        0.0,
        description="Share of POST /v1 held for submit_timeout_s and then answered 504, "
        "with nothing accepted.",
    )
    submit_timeout_after_accept_rate: Rate = Field(
        0.0,
        description="Share of POST /v1 whose tasks ARE accepted but whose answer is held for "
        "submit_timeout_s (the ambiguous case: resubmitting gets conflictTaskUUID).",
    )
    submit_timeout_s: float = Field(
        30.0, ge=0, description="How long a timed-out submission holds the connection (s)."
    )
    account_credit_tasks: int | None = Field(
        None,
        ge=0,
        description="Account balance in accepted tasks: once this many are accepted, every "
        "POST /v1 is answered 402 insufficientCredits (unset: unlimited; raise or unset it "
        "to top up).",
    )
    failure_rate: Rate = Field(
        0.0, description="Share of accepted tasks whose generation fails (the task ends in error)."
    )
    failure_code: str = Field(
        assumptions.DEFAULT_FAILURE_CODE, min_length=1, description="Error code of a failed task."
    )
    failure_message: str = Field(
        assumptions.DEFAULT_FAILURE_MESSAGE,
        min_length=1,
        description="Error message of a failed task.",
    )
    nsfw_rate: Rate = Field(
        0.0, description="Share of results flagged NSFWContent=true when safety checking is on."
    )
    webhook_envelope: Envelope = Field(
        "bare",
        description="Webhook body of a result: bare item, {'data': [item]}, or mixed per POST.",
    )
    webhook_drop_rate: Rate = Field(
        0.0, description="Share of webhooks never delivered (only getResponse knows the result)."
    )
    webhook_duplicate_rate: Rate = Field(0.0, description="Share of webhooks delivered twice.")
    webhook_delay_ms: float = Field(
        0.0, ge=0, description="Extra delay before the first attempt of every webhook (ms)."
    )
    webhook_reorder_rate: Rate = Field(
        0.0, description="Share of tasks whose result webhooks are delivered out of order."
    )
    webhook_before_ack_rate: Rate = Field(
        0.0,
        description="Share of async tasks with a webhookURL whose results are generated and "
        "posted before the POST /v1 acknowledgement is returned.",
    )
    webhook_retries: int = Field(
        8, ge=0, le=100, description="Retries after a failed webhook attempt (non-2xx/error)."
    )
    webhook_timeout_s: float = Field(
        5.0, gt=0, description="Per-attempt timeout of a webhook POST or upload PUT (s)."
    )
    webhook_backoff_base_ms: float = Field(
        250.0, ge=0, description="First webhook retry delay; doubles each retry (ms)."
    )
    webhook_backoff_cap_ms: float = Field(
        8000.0, ge=0, description="Upper bound of a webhook retry delay (ms)."
    )
    webhook_backoff_jitter: Rate = Field(
        0.2, description="Retry delays are multiplied by a uniform factor in 1 ± this."
    )

    image_ttl_s: int | None = Field(
        None,
        ge=1,
        description="Lifetime of an image URL whose task sets no ttl, from its generation (s); "
        "past it the URL answers 404 (unset: until reset; assumptions A16).",
    )
    image_latency_ms: float = Field(
        0.0, ge=0, description="Delay before an image GET is answered (ms): a slow download."
    )
    image_500_rate: Rate = Field(
        0.0, description="Share of image GETs answered 500 (the next may succeed)."
    )
    image_truncate_rate: Rate = Field(
        0.0,
        description="Share of image GETs whose body is cut short: the full Content-Length, "
        "half the bytes, then the connection closed.",
    )
    image_garbage_rate: Rate = Field(
        0.0, description="Share of image GETs answered 200 with an HTML page instead of the image."
    )

    # Ideogram's own Remix endpoint (simulator.ideogram, assumptions I1-I7).
    ideogram_latency_ms: float = Field(
        0.0, ge=0, description="Mean generation time of an Ideogram remix call (ms)."
    )
    ideogram_latency_jitter_ms: float = Field(
        0.0, ge=0, description="Each Ideogram call's generation time is uniform in ± this (ms)."
    )
    ideogram_429_rate: Rate = Field(
        0.0, description="Share of Ideogram remix calls answered 429; nothing generated."
    )
    ideogram_5xx_rate: Rate = Field(
        0.0, description="Share of Ideogram remix calls answered 500; nothing generated."
    )
    ideogram_422_rate: Rate = Field(
        0.0,
        description="Share of Ideogram remix calls refused 422 by the safety check; nothing "
        "generated.",
    )
    ideogram_lost_answer_rate: Rate = Field(
        0.0,
        description="Share of Ideogram remix calls whose images are made and charged, and "
        "whose answer is then lost (see ideogram_lost_answer_mode).",
    )
    ideogram_lost_answer_mode: LostAnswerMode = Field(
        "close",
        description="How an answer is lost: close (half the body, then the connection closed) "
        "or hold (answered after ideogram_lost_answer_hold_s, past the client's timeout).",
    )
    ideogram_lost_answer_hold_s: float = Field(
        30.0, ge=0, description="How long a held Ideogram answer waits (s)."
    )
    ideogram_unsafe_rate: Rate = Field(
        0.0,
        description="Share of Ideogram images flagged is_image_safe=false (no url; charged).",
    )

    @model_validator(mode="after")
    def _submit_outcomes_fit(self) -> FaultKnobs:
        # The submit faults are exclusive outcomes of one draw, so their shares must fit in 1.
        total = sum(getattr(self, name) for name in SUBMIT_FAULT_RATES)
        if total > 1.0 + 1e-9:
            raise ValueError(f"the submit_*_rate knobs add up to {total:g}; at most 1 is allowed")
        total = sum(getattr(self, name) for name in IMAGE_FAULT_RATES)
        if total > 1.0 + 1e-9:
            raise ValueError(f"the image_*_rate knobs add up to {total:g}; at most 1 is allowed")
        total = sum(getattr(self, name) for name in IDEOGRAM_FAULT_RATES)
        if total > 1.0 + 1e-9:
            raise ValueError(
                f"the ideogram 429/5xx/422/lost_answer rates add up to {total:g}; at most 1 is "
                "allowed"
            )
        return self

    def patched(self, patch: Mapping[str, Any]) -> FaultKnobs:
        """A new, validated set of knobs with ``patch`` applied (unknown names are refused)."""
        return FaultKnobs.model_validate({**self.model_dump(), **patch})


SUBMIT_FAULT_RATES = (
    "submit_429_rate",
    "submit_500_rate",
    "submit_503_rate",
    "submit_504_rate",
    "submit_timeout_rate",
    "submit_timeout_after_accept_rate",
)

IMAGE_FAULT_RATES = ("image_500_rate", "image_truncate_rate", "image_garbage_rate")

# One exclusive draw per Ideogram call (simulator.ideogram).
IDEOGRAM_FAULT_RATES = (
    "ideogram_429_rate",
    "ideogram_5xx_rate",
    "ideogram_422_rate",
    "ideogram_lost_answer_rate",
)


class SimulatorConfig(BaseModel):
    """Everything the simulator needs to start; ``faults`` are the knobs' initial values."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    api_key: str | None = Field(
        None, description="Require exactly this API key (unset: any non-empty key is accepted)."
    )
    public_url: str | None = Field(
        None,
        description="Base URL written into imageURL (unset: the URL the request came in on).",
    )
    worker_threads: int = Field(
        32, ge=1, le=1024, description="Background threads delivering webhooks and uploads."
    )
    image_max_side: int = Field(
        256, ge=8, le=4096, description="Longest side of served images (px); keeps them cheap."
    )
    random_seed: int | None = Field(
        None, description="Seed of the fault/seed random generator (unset: unpredictable)."
    )
    prices: dict[str, dict[str, Decimal]] = Field(
        default_factory=default_prices,
        description="USD per image, as JSON {model: {renderingSpeed: price}}; merged over the "
        "defaults (0.03 TURBO / 0.06 DEFAULT / 0.09 QUALITY for every model).",
    )
    allow_remote: bool = Field(
        False,
        description="Listen on a non-loopback interface (--host). The control API has no "
        "authentication and tasks name the hosts the simulator sends to: keep it on loopback "
        "unless the network is private (assumptions A15).",
    )
    allow_target: tuple[str, ...] = Field(
        (),
        description="A host (name or IP, as written in the URL) that webhookURL and "
        "uploadEndpoint may name besides loopback; repeat the option, or comma-separate the "
        "environment variable (assumptions A15).",
    )
    allow_any_target: bool = Field(
        False,
        description="Send webhooks and uploads to any host a task names (assumptions A15).",
    )
    faults: FaultKnobs = Field(default_factory=FaultKnobs)

    @field_validator("allow_target", mode="before")
    @classmethod
    def _split_targets(cls, value: object) -> object:
        if isinstance(value, str):  # the environment's comma-separated form
            value = value.split(",")
        if isinstance(value, list | tuple):
            hosts = (str(host).strip().strip("[]").lower() for host in value)
            return tuple(host for host in hosts if host)
        return value

    @field_validator("prices", mode="before")
    @classmethod
    def _merge_prices(cls, value: object) -> object:
        if isinstance(value, str):
            value = json.loads(value)
        if not isinstance(value, Mapping):
            return value
        merged: dict[str, dict[str, object]] = {m: dict(s) for m, s in default_prices().items()}
        for model, speeds in value.items():
            if not isinstance(speeds, Mapping):
                raise ValueError(f"prices[{model!r}] must be an object of speed -> price")
            merged.setdefault(str(model), {}).update(speeds)
        return merged

    @field_validator("prices")
    @classmethod
    def _prices_valid(cls, value: dict[str, dict[str, Decimal]]) -> dict[str, dict[str, Decimal]]:
        for model, speeds in value.items():
            for speed, price in speeds.items():
                if price < 0:
                    raise ValueError(f"price of {model} {speed} is negative")
            if "DEFAULT" not in speeds:
                raise ValueError(f"prices[{model!r}] needs a DEFAULT price")
        return value

    def price(self, model: str, speed: str) -> Decimal:
        """Price of one image; an unlisted speed costs the model's DEFAULT price."""
        speeds = self.prices.get(model, {})
        return speeds.get(speed, speeds.get("DEFAULT", Decimal(0)))

    def with_overrides(self, values: Mapping[str, Any]) -> SimulatorConfig:
        """A copy with static fields and knobs replaced by name (knobs are flat names)."""
        static = {k: v for k, v in values.items() if k in STATIC_FIELDS}
        knobs = {k: v for k, v in values.items() if k in FaultKnobs.model_fields}
        unknown = set(values) - set(static) - set(knobs)
        if unknown:
            raise ValueError(f"unknown simulator setting(s): {', '.join(sorted(unknown))}")
        data = self.model_dump()
        data.update(static)
        data["faults"] = self.faults.patched(knobs).model_dump()
        return SimulatorConfig.model_validate(data)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> SimulatorConfig:
        """Read ``REMIXQ_SIM_<FIELD>`` for every static field and every knob."""
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for name in (*STATIC_FIELDS, *FaultKnobs.model_fields):
            raw = env.get(env_var(name))
            if raw is None:
                continue
            # An empty value unsets an optional field instead of being a bad number.
            values[name] = None if raw.strip() == "" else raw
        return cls().with_overrides({k: v for k, v in values.items() if v is not None})


STATIC_FIELDS = tuple(name for name in SimulatorConfig.model_fields if name != "faults")


def env_var(name: str) -> str:
    """The environment variable of a setting or knob, e.g. ``REMIXQ_SIM_LATENCY_MS``."""
    return ENV_PREFIX + name.upper()
