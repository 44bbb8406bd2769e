"""The one reader of Runware's result and error items: the same rules for a webhook body, a
getResponse answer and a poll kept in the inbox."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest

from remixq.db import json_dumps
from remixq.providers.runware import ProviderError
from remixq.providers.runware.results import (
    InvalidPayload,
    ItemKind,
    RefusedPayload,
    kind_of,
    poll_envelope,
    poll_items,
    read_poll,
    read_webhook,
)

T1 = "0b5a3e7c-2f4d-4c1e-9a8b-6d2f1e3c4b5a"
T2 = "5d0c6f1e-8a2b-4c3d-9e4f-a1b2c3d4e5f6"
IMAGE = "9f8e7d6c-5b4a-4392-8170-6a5b4c3d2e1f"
CEILING = Decimal(10)  # USD per image (REMIXQ_MAX_IMAGE_COST's default)


@pytest.mark.parametrize(
    ("item", "kind"),
    [
        ({"status": "success", "imageUUID": IMAGE}, ItemKind.RESULT),
        ({"status": "success"}, ItemKind.RESULT),  # and then invalid: no imageUUID
        ({"imageUUID": IMAGE}, ItemKind.RESULT),  # STATUSLESS_ITEM_WITH_IMAGE_IS_SUCCESS
        ({"status": "error", "code": "x"}, ItemKind.ERROR),
        ({"status": "error"}, ItemKind.ERROR),
        ({"code": "timeoutProvider"}, ItemKind.ERROR),  # STATUSLESS_ITEM_WITH_ERROR_IS_ERROR
        ({"error": {"code": "x"}}, ItemKind.ERROR),
        ({"code": "x", "imageUUID": IMAGE}, ItemKind.ERROR),  # an error outranks an image
        ({"status": "success", "code": "x"}, ItemKind.RESULT),  # a status is authoritative
        ({"taskUUID": T1}, ItemKind.PROCESSING),  # status-less, no image: still running
        *[({"status": word}, ItemKind.PROCESSING) for word in ("processing", "pending")],
        *[({"status": word}, ItemKind.PROCESSING) for word in ("queued", "scheduled", "waiting")],
        ({"status": "rendering"}, ItemKind.PROCESSING),  # a word not known yet
    ],
)
def test_every_item_is_sorted_by_the_assumptions(item: dict[str, Any], kind: ItemKind) -> None:
    assert kind_of(item) is kind


def body(payload: Any) -> bytes:
    return json.dumps(payload).encode()


def test_a_webhook_with_an_in_progress_word_is_still_running() -> None:
    items = read_webhook(body({"data": [{"taskUUID": T1, "status": "queued"}]}), max_cost=CEILING)
    assert (items.results, items.errors, items.processing) == ([], [], 1)


def test_webhook_errors_are_read_as_the_client_reads_them() -> None:
    nested = {"taskUUID": T1, "status": "error", "error": {"code": "c", "message": "m"}}
    items = read_webhook(
        body({"data": [nested], "errors": [{"taskUUID": T1, "code": 5}]}), max_cost=CEILING
    )
    assert [(str(e.task_uuid), e.code, e.message) for e in items.errors] == [
        (T1, "c", "m"),
        (T1, "5", ""),  # a number as its text, as ProviderError reads it
    ]
    flat = read_webhook(body({"taskUUID": T1}), max_cost=CEILING)  # a bare item, still running
    assert flat.processing == 1


@pytest.mark.parametrize(
    "payload",
    [
        {"errors": [{"code": "x"}]},  # an error about no task
        {"data": [{"status": "success", "taskUUID": T1}]},  # a result without an image
        {"data": [{"imageUUID": IMAGE, "taskUUID": T1, "cost": -1}]},
        {"data": []},
    ],
)
def test_webhooks_the_provider_does_not_send_are_invalid(payload: dict[str, Any]) -> None:
    with pytest.raises(InvalidPayload):
        read_webhook(body(payload), max_cost=CEILING)


@pytest.mark.parametrize(
    ("cost", "shown"),
    [
        ('"1e5"', '"1e5"'),  # a string, even of a number: the attack that cost 100,000 USD
        ('"0.06"', '"0.06"'),
        ("true", "true"),
        ("-1", "-1"),
        ("-0.0001", "-0.0001"),
        ("1e5", "1E+5"),
        ("10.0001", "10.0001"),
        ("99999999", "99999999"),
        ("[0.06]", "[0.06]"),
        ('{"usd": 0.06}', '{"usd":0.06}'),
    ],
)
def test_a_cost_that_is_not_a_plausible_number_is_refused(cost: str, shown: str) -> None:
    raw = f'{{"taskUUID": "{T1}", "imageUUID": "{IMAGE}", "cost": {cost}}}'.encode()
    with pytest.raises(RefusedPayload) as refused:
        read_webhook(raw, max_cost=CEILING)
    assert str(refused.value) == (
        f"cost: {shown} is refused: a JSON number from 0 to 10 USD per image is allowed"
    )


@pytest.mark.parametrize("cost", ["0", "0.0013", "0.06", "10", "1"])
def test_a_cost_from_zero_to_the_ceiling_is_read_exactly(cost: str) -> None:
    raw = f'{{"taskUUID": "{T1}", "imageUUID": "{IMAGE}", "cost": {cost}}}'.encode()
    (result,) = read_webhook(raw, max_cost=CEILING).results
    assert result.cost == Decimal(cost)


def test_the_ceiling_is_the_callers() -> None:
    raw = f'{{"taskUUID": "{T1}", "imageUUID": "{IMAGE}", "cost": 0.06}}'.encode()
    assert read_webhook(raw, max_cost=Decimal("0.06")).results[0].cost == Decimal("0.06")
    with pytest.raises(RefusedPayload, match=r"from 0 to 0\.05 USD"):
        read_webhook(raw, max_cost=Decimal("0.05"))
    # No ceiling reaches past what the ledger's column holds.
    huge = raw.replace(b"0.06", b"100000000")
    with pytest.raises(RefusedPayload, match="from 0 to 99999999 USD"):
        read_webhook(huge, max_cost=Decimal("1e12"))


def test_a_body_invalid_otherwise_is_invalid_whatever_its_cost() -> None:
    raw = f'{{"taskUUID": "{T1}", "imageUUID": "not-a-uuid", "cost": "1e5"}}'.encode()
    with pytest.raises(InvalidPayload) as invalid:
        read_webhook(raw, max_cost=CEILING)
    assert not isinstance(invalid.value, RefusedPayload)
    assert str(invalid.value).startswith("imageUUID:")


def test_a_polls_absurd_cost_is_refused_as_a_webhooks_is() -> None:
    """getResponse answers go through the same reader (`poll_items`), so the reconciler
    cannot store what a webhook could not."""
    done = {"taskUUID": T1, "status": "success", "imageUUID": IMAGE, "cost": Decimal("1e5")}
    poll = read_poll(T1, [done], [])
    with pytest.raises(RefusedPayload, match="cost: 1E"):
        poll_items(poll, max_cost=CEILING)


def test_a_poll_keeps_its_task_and_defers_errors_that_may_not_fail_it() -> None:
    """Only an error naming the task, with a permanent code, is final; an untagged one or a
    transient code is deferred (the reconciler asks again later)."""
    done = {"taskUUID": T1, "status": "success", "imageUUID": IMAGE, "cost": Decimal("0.0013")}
    data = [done, {"taskUUID": T2, "status": "success"}, {"status": "processing"}]
    errors = [
        ProviderError.from_dict({"code": "contentModerated"}),
        ProviderError.from_dict({"code": "timeoutProvider", "taskUUID": T1}),
        ProviderError.from_dict({"code": "contentModerated", "taskUUID": T2}),
    ]
    poll = read_poll(T1, data, errors)
    assert poll.results == [done] and poll.processing == 1 and poll.errors == []
    assert [(e.code, e.task_uuid) for e in poll.deferred] == [
        ("contentModerated", None),
        ("timeoutProvider", T1),
    ]


def test_a_poll_kept_in_the_inbox_reads_back_to_the_same_items() -> None:
    done = {"taskUUID": T1, "status": "success", "imageUUID": IMAGE, "cost": Decimal("0.0013")}
    nested = {"taskUUID": T1, "status": "error", "error": {"code": "contentModerated"}}
    refused = ProviderError.from_dict({"code": "invalidSeed", "taskUUID": T1})
    poll = read_poll(T1, [done, nested], [refused])
    typed = poll_items(poll, max_cost=CEILING)
    replayed = read_webhook(json_dumps(poll_envelope(poll)).encode(), max_cost=CEILING)
    assert replayed.results == typed.results
    assert replayed.errors == typed.errors
    assert [(e.code, str(e.task_uuid)) for e in typed.errors] == [
        ("contentModerated", T1),
        ("invalidSeed", T1),
    ]
    assert typed.results[0].cost == Decimal("0.0013")
