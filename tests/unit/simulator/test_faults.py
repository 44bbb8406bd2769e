"""Every fault knob: injected HTTP errors, timeouts, latency, webhook faults, failures, NSFW."""

from __future__ import annotations

import time
from typing import Any

import pytest
import requests
from flask.testing import FlaskClient

from tests.support.simulator import (
    AUTH,
    LiveSimulator,
    MakeClient,
    Receiver,
    get_response,
    simulator_of,
    task,
    wait_for,
)


def _stats(client: FlaskClient) -> dict[str, Any]:
    stats = client.get("/_control/stats").json
    assert isinstance(stats, dict)
    return stats


@pytest.mark.parametrize(
    ("knob", "status", "code"),
    [
        ("submit_429_rate", 429, "rateLimitExceeded"),
        ("submit_500_rate", 500, "internalServerError"),
        ("submit_503_rate", 503, "serviceUnavailable"),
        ("submit_504_rate", 504, "gatewayTimeout"),
    ],
)
def test_injected_http_error_accepts_nothing(
    make_client: MakeClient, knob: str, status: int, code: str
) -> None:
    client = make_client(**{knob: 1.0})
    body = task()
    answer = client.post("/v1", json=[body], headers=AUTH)
    assert answer.status_code == status
    assert answer.json["errors"][0]["code"] == code
    assert "Retry-After" not in answer.headers
    stats = _stats(client)
    assert stats["faults"][f"http_{status}"] == 1
    assert stats["tasks_accepted"] == 0
    assert stats["tasks"][body["taskUUID"]] == {
        "attempts": 1,
        "accepted": 0,
        "webhooks_delivered": 0,
    }
    # Nothing was accepted, so the same taskUUID goes through once the fault is gone.
    client.put("/_control/faults", json={knob: 0.0})
    assert client.post("/v1", json=[body], headers=AUTH).status_code == 200
    assert _stats(client)["tasks"][body["taskUUID"]] == {
        "attempts": 2,
        "accepted": 1,
        "webhooks_delivered": 0,
    }


@pytest.mark.parametrize(("knob", "status"), [("submit_429_rate", 429), ("submit_503_rate", 503)])
def test_retry_after_on_429_and_503(make_client: MakeClient, knob: str, status: int) -> None:
    client = make_client(**{knob: 1.0}, retry_after_s=7)
    answer = client.post("/v1", json=[task()], headers=AUTH)
    assert answer.status_code == status and answer.headers["Retry-After"] == "7"


def test_retry_after_not_on_500(make_client: MakeClient) -> None:
    client = make_client(submit_500_rate=1.0, retry_after_s=7)
    assert "Retry-After" not in client.post("/v1", json=[task()], headers=AUTH).headers


def test_submit_fault_rates_are_shares(make_client: MakeClient) -> None:
    client = make_client(submit_429_rate=0.5, random_seed=7)
    statuses = [client.post("/v1", json=[task()], headers=AUTH).status_code for _ in range(200)]
    assert set(statuses) == {200, 429}
    assert 60 < statuses.count(429) < 140


def _post_live(live: LiveSimulator, body: list[Any], timeout: float = 3.0) -> requests.Response:
    return requests.post(f"{live.url}/v1", json=body, headers=AUTH, timeout=timeout)


def _live_stats(live: LiveSimulator) -> dict[str, Any]:
    stats = requests.get(f"{live.url}/_control/stats", timeout=3).json()
    assert isinstance(stats, dict)
    return stats


def test_submit_timeout_before_accept(make_live: Any) -> None:
    live = make_live(submit_timeout_rate=1.0, submit_timeout_s=1.0)
    body = task()
    with pytest.raises(requests.ReadTimeout):
        _post_live(live, [body], timeout=0.3)
    stats = _live_stats(live)
    assert stats["faults"]["submit_timeout"] == 1
    assert stats["tasks"][body["taskUUID"]] == {
        "attempts": 1,
        "accepted": 0,
        "webhooks_delivered": 0,
    }
    requests.put(f"{live.url}/_control/faults", json={"submit_timeout_rate": 0}, timeout=3)
    assert _post_live(live, [body]).status_code == 200


def test_submit_timeout_before_accept_finally_answers_504(make_live: Any) -> None:
    live = make_live(submit_timeout_rate=1.0, submit_timeout_s=0.2)
    answer = _post_live(live, [task()])
    assert answer.status_code == 504 and answer.json()["errors"][0]["code"] == "gatewayTimeout"


def test_submit_timeout_after_accept_then_resubmit_conflicts(make_live: Any) -> None:
    live = make_live(submit_timeout_after_accept_rate=1.0, submit_timeout_s=1.0)
    body = task(deliveryMethod="async")
    with pytest.raises(requests.ReadTimeout):
        _post_live(live, [body], timeout=0.3)
    requests.put(
        f"{live.url}/_control/faults", json={"submit_timeout_after_accept_rate": 0}, timeout=3
    )
    again = _post_live(live, [body])
    assert again.status_code == 400 and again.json()["errors"][0]["code"] == "conflictTaskUUID"
    polled = wait_for(
        lambda: (
            (p := _post_live(live, [get_response(body["taskUUID"])]).json())["data"][0]["status"]
            == "success"
            and p
        )
    )
    assert polled["data"][0]["taskUUID"] == body["taskUUID"]
    stats = _live_stats(live)
    assert stats["faults"]["submit_timeout_after_accept"] == 1
    assert stats["tasks"][body["taskUUID"]] == {
        "attempts": 2,
        "accepted": 1,
        "webhooks_delivered": 0,
    }


def test_processing_latency_holds_a_sync_answer(make_client: MakeClient) -> None:
    client = make_client(latency_ms=300, latency_jitter_ms=50)
    started = time.monotonic()
    # Two tasks in one request run in parallel: the answer waits ~one latency, not two.
    answer = client.post("/v1", json=[task(), task(numberResults=3)], headers=AUTH)
    elapsed = time.monotonic() - started
    assert answer.status_code == 200 and len(answer.json["data"]) == 4
    assert 0.25 <= elapsed < 0.6


def test_submit_latency_delays_every_answer(make_client: MakeClient) -> None:
    client = make_client(submit_latency_ms=200)
    started = time.monotonic()
    client.post("/v1", json=[task(deliveryMethod="async")], headers=AUTH)
    assert time.monotonic() - started >= 0.19


def test_webhook_drop(make_client: MakeClient, receiver: Receiver) -> None:
    client = make_client(webhook_drop_rate=1.0)
    body = task(deliveryMethod="async", webhookURL=receiver.url(), numberResults=2)
    client.post("/v1", json=[body], headers=AUTH)
    # Dropping is decided when a result finishes, before any POST could start.
    wait_for(lambda: _stats(client)["webhooks"]["dropped"] == 2)
    polled = client.post("/v1", json=[get_response(body["taskUUID"])], headers=AUTH).json
    assert [item["status"] for item in polled["data"]] == ["success", "success"]
    assert receiver.requests() == [] and _stats(client)["webhooks"]["attempted"] == 0


def test_webhook_duplicate(make_client: MakeClient, receiver: Receiver) -> None:
    client = make_client(webhook_duplicate_rate=1.0)
    body = task(deliveryMethod="async", webhookURL=receiver.url(), numberResults=2)
    client.post("/v1", json=[body], headers=AUTH)
    posts = receiver.wait(4)
    image_uuids = sorted(post.json()["imageUUID"] for post in posts)
    assert len(set(image_uuids)) == 2 and image_uuids[0] == image_uuids[1]
    assert _stats(client)["webhooks"]["duplicated"] == 2


def test_webhook_delay(make_client: MakeClient, receiver: Receiver) -> None:
    client = make_client(webhook_delay_ms=300)
    started = time.monotonic()
    client.post("/v1", json=[task(deliveryMethod="async", webhookURL=receiver.url())], headers=AUTH)
    (post,) = receiver.wait(1)
    assert post.at - started >= 0.29


@pytest.mark.parametrize("rate", [0.0, 1.0])
def test_webhook_reorder(make_client: MakeClient, receiver: Receiver, rate: float) -> None:
    # One worker thread: webhooks leave strictly in completion order.
    client = make_client(webhook_reorder_rate=rate, worker_threads=1)
    body = task(deliveryMethod="async", webhookURL=receiver.url(), numberResults=5)
    client.post("/v1", json=[body], headers=AUTH)
    arrived = [post.json()["imageUUID"] for post in receiver.wait(5)]
    polled = client.post("/v1", json=[get_response(body["taskUUID"])], headers=AUTH).json
    by_index = [item["imageUUID"] for item in polled["data"]]  # getResponse keeps result order
    assert sorted(arrived) == sorted(by_index)
    assert (arrived != by_index) is (rate == 1.0)
    assert _stats(client)["faults"]["webhook_reorder"] == int(rate)


def test_webhook_before_ack(make_client: MakeClient, receiver: Receiver) -> None:
    client = make_client(webhook_before_ack_rate=1.0, latency_ms=100)
    body = task(deliveryMethod="async", webhookURL=receiver.url(), numberResults=2)
    answer = client.post("/v1", json=[body], headers=AUTH)
    acked_at = time.monotonic()
    assert answer.json == {"data": [{"taskType": "imageInference", "taskUUID": body["taskUUID"]}]}
    posts = receiver.requests()  # no waiting: they must already be there
    assert len(posts) == 2 and all(post.at < acked_at for post in posts)
    assert _stats(client)["faults"]["webhook_before_ack"] == 1


def test_failure_rate_with_custom_code_in_sync(make_client: MakeClient) -> None:
    client = make_client(failure_rate=1.0, failure_code="inferenceError", failure_message="boom")
    body = task(includeCost=True)
    answer = client.post("/v1", json=[body], headers=AUTH)
    assert answer.status_code == 500
    (error,) = answer.json["errors"]
    assert (error["code"], error["message"], error["taskUUID"]) == (
        "inferenceError",
        "boom",
        body["taskUUID"],
    )
    # Accepted (it failed during generation), so resubmitting conflicts; polling tells the failure.
    assert (
        client.post("/v1", json=[body], headers=AUTH).json["errors"][0]["code"]
        == "conflictTaskUUID"
    )
    polled = client.post("/v1", json=[get_response(body["taskUUID"])], headers=AUTH)
    assert polled.status_code == 200 and polled.json["errors"][0]["code"] == "inferenceError"


def test_mixed_envelope_uses_both_shapes(make_client: MakeClient, receiver: Receiver) -> None:
    client = make_client(webhook_envelope="mixed", random_seed=3)
    client.post(
        "/v1",
        json=[task(deliveryMethod="async", webhookURL=receiver.url(), numberResults=12)],
        headers=AUTH,
    )
    bodies = [post.json() for post in receiver.wait(12)]
    wrapped = [body for body in bodies if "data" in body]
    assert 0 < len(wrapped) < 12


@pytest.mark.parametrize(
    ("model", "safety"),
    [
        ("ideogram:1@2", {"checkContent": True}),
        ("ideogram:4@2", {"mode": "fast"}),
        ("ideogram:4@remix", {"checkContent": True}),
    ],
)
def test_nsfw_flag_when_safety_is_on(
    make_client: MakeClient, model: str, safety: dict[str, Any]
) -> None:
    client = make_client(nsfw_rate=1.0)
    (item,) = client.post("/v1", json=[task(model, safety=safety)], headers=AUTH).json["data"]
    assert item["NSFWContent"] is True
    (item,) = client.post("/v1", json=[task(model)], headers=AUTH).json["data"]
    assert "NSFWContent" not in item
    (item,) = client.post(
        "/v1", json=[task("ideogram:1@2", safety={"mode": "none"})], headers=AUTH
    ).json["data"]
    assert "NSFWContent" not in item
    assert _stats(client)["faults"]["nsfw_flagged"] == 1


def test_knobs_change_at_run_time(client: FlaskClient) -> None:
    assert client.post("/v1", json=[task()], headers=AUTH).status_code == 200
    client.put("/_control/faults", json={"submit_503_rate": 1.0})
    assert client.post("/v1", json=[task()], headers=AUTH).status_code == 503
    client.post("/_control/faults", json={"submit_503_rate": 0.0})
    assert client.post("/v1", json=[task()], headers=AUTH).status_code == 200
    assert simulator_of(client).faults.knobs.submit_503_rate == 0.0
