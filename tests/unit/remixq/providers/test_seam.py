"""The provider seam: both providers behind one protocol, and one exception tree whose old
Runware import paths still name the same classes."""

from __future__ import annotations

import uuid
from decimal import Decimal

import pytest

from remixq.errors import InvalidInput
from remixq.examples import campaign_lines
from remixq.pricing import PriceTable
from remixq.providers import PROVIDERS, provider_for
from remixq.providers import errors as neutral
from remixq.providers.runware import errors as runware_errors
from tests.support.ideogram_requests import request


def test_each_provider_validates_stores_and_prices_its_requests() -> None:
    table = PriceTable.default()
    runware, ideogram = provider_for("runware"), provider_for("ideogram")
    assert (runware.delivery, ideogram.delivery) == ("webhook", "sync")
    assert (runware.reports_cost, ideogram.reports_cost) == (True, False)

    line = dict(campaign_lines(1)[0])
    task_uuid = str(uuid.uuid4())
    task = runware.build_task(runware.parse_request(line), task_uuid=task_uuid)
    assert task["taskUUID"] == task_uuid and runware.model_of(task) == line["model"]
    assert runware.estimate(task, table) == runware.number_results(task) * Decimal("0.06")
    assert runware.renewed(task, task_uuid="x")["taskUUID"] == "x"

    stored = ideogram.build_task(
        ideogram.parse_request(request(num_images=4, rendering_speed="FLASH")), task_uuid=task_uuid
    )
    assert "taskUUID" not in stored and ideogram.renewed(stored, task_uuid="x") == stored
    assert ideogram.model_of(stored) == "ideogram-v3-remix"
    assert ideogram.number_results(stored) == 4
    assert ideogram.estimate(stored, table) == Decimal("0.060")
    assert ideogram.prompt_of(stored) == "A seaside ticket booth"
    assert ideogram.source_image_of(stored) == stored["image"]


def test_every_provider_model_has_a_price_at_each_speed() -> None:
    table = PriceTable.default()
    for provider in PROVIDERS.values():
        for model, speeds in provider.speeds.items():
            for speed in speeds:
                assert table.price(model, speed) >= 0


def test_an_unknown_provider_names_the_allowed_ones() -> None:
    with pytest.raises(InvalidInput) as caught:
        provider_for(None)
    (error,) = caught.value.errors
    assert (error.field, error.value, error.allowed) == (
        "provider",
        None,
        "one of runware, ideogram",
    )


def test_the_exception_tree_is_one_whatever_the_import_path() -> None:
    assert runware_errors.RunwareError is neutral.ProviderCallError
    for name in (
        "TransientError", "PermanentError", "RateLimited", "ServerError", "RequestTimeout",
        "ConnectionFailed", "BadRequest", "Unauthorized", "Forbidden", "PaymentRequired",
        "NotFound", "UnexpectedResponse", "AnswerLost", "SafetyRejected",
    ):  # fmt: skip
        assert getattr(runware_errors, name) is getattr(neutral, name), name
    assert issubclass(neutral.AnswerLost, neutral.TransientError)
    assert issubclass(neutral.SafetyRejected, neutral.PermanentError)
    lost = neutral.AnswerLost("gone", retry_after=None)
    assert isinstance(lost, runware_errors.RunwareError) and lost.errors == []
