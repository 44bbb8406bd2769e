"""Async delivery: acknowledgement, one webhook per result, envelopes, getResponse, uploads."""

from __future__ import annotations

import base64
import io
import uuid
from typing import Any

from flask.testing import FlaskClient
from PIL import Image

from tests.support.simulator import (
    AUTH,
    MakeClient,
    Receiver,
    get_response,
    simulator_of,
    task,
    wait_for,
)


def _submit(client: FlaskClient, *bodies: dict[str, Any]) -> Any:
    return client.post("/v1", json=list(bodies), headers=AUTH)


def _poll(client: FlaskClient, task_uuid: str) -> Any:
    answer = client.post("/v1", json=[get_response(task_uuid)], headers=AUTH)
    assert answer.status_code == 200, answer.json
    return answer.json


def test_ack_is_task_type_and_uuid_only(client: FlaskClient, receiver: Receiver) -> None:
    body = task(deliveryMethod="async", webhookURL=receiver.url())
    answer = _submit(client, body)
    assert answer.status_code == 200
    assert answer.json == {"data": [{"taskType": "imageInference", "taskUUID": body["taskUUID"]}]}


def test_one_bare_webhook_per_result(client: FlaskClient, receiver: Receiver) -> None:
    body = task(
        deliveryMethod="async",
        webhookURL=receiver.url("/hook?token=abc"),
        numberResults=3,
        includeCost=True,
    )
    _submit(client, body)
    posts = receiver.wait(3)
    items = [post.json() for post in posts]
    assert all(
        post.path == "/hook" and post.headers["Content-Type"] == "application/json"
        for post in posts
    )
    assert {item["taskUUID"] for item in items} == {body["taskUUID"]}
    assert len({item["imageUUID"] for item in items}) == 3
    assert all(item["cost"] == 0.06 and "status" not in item for item in items)
    wait_for(lambda: simulator_of(client).stats.snapshot()["webhooks"]["succeeded"] == 3)
    stats = simulator_of(client).stats.snapshot()
    assert stats["tasks"][body["taskUUID"]]["webhooks_delivered"] == 3
    assert stats["webhooks"]["attempted"] == 3 and stats["webhooks"]["failed"] == 0


def test_data_envelope(make_client: MakeClient, receiver: Receiver) -> None:
    client = make_client(webhook_envelope="data")
    body = task(
        "ideogram:4@remix", deliveryMethod="async", webhookURL=receiver.url(), numberResults=2
    )
    _submit(client, body)
    for post in receiver.wait(2):
        (item,) = post.json()["data"]
        assert item["taskUUID"] == body["taskUUID"]
        assert isinstance(item["structuredPrompt"], dict)


def test_failed_task_posts_error_envelope(make_client: MakeClient, receiver: Receiver) -> None:
    client = make_client(failure_rate=1.0)
    body = task(deliveryMethod="async", webhookURL=receiver.url(), numberResults=2)
    assert _submit(client, body).status_code == 200  # accepted: it fails later
    (post,) = receiver.wait(1)
    (error,) = post.json()["errors"]
    assert error["code"] == "timeoutProvider" and error["status"] == "error"
    assert error["taskUUID"] == body["taskUUID"] and error["taskType"] == "imageInference"
    polled = _poll(client, body["taskUUID"])
    assert "data" not in polled and polled["errors"] == [error]
    stats = simulator_of(client).stats.snapshot()
    assert stats["tasks_failed"] == 1 and stats["results_generated"] == 0
    assert stats["faults"]["generation_failure"] == 1 and stats["cost_total"] == "0.0000"


def test_get_response_goes_from_processing_to_success(make_client: MakeClient) -> None:
    client = make_client(latency_ms=400)
    body = task(deliveryMethod="async", numberResults=2)
    _submit(client, body)
    first = _poll(client, body["taskUUID"])
    assert [item["status"] for item in first["data"]] == ["processing", "processing"]
    assert all(
        item == {"taskType": "imageInference", "taskUUID": body["taskUUID"], "status": "processing"}
        for item in first["data"]
    )

    def finished() -> Any:
        polled = _poll(client, body["taskUUID"])
        return polled if all(i["status"] == "success" for i in polled["data"]) else None

    done = wait_for(finished, timeout=5)
    assert len(done["data"]) == 2
    assert all(uuid.UUID(item["imageUUID"]) and item["imageURL"] for item in done["data"])
    # Cumulative: polling again gives the same results, and every poll is counted.
    before = simulator_of(client).stats.snapshot()["get_response_calls"]
    assert _poll(client, body["taskUUID"]) == done
    assert simulator_of(client).stats.snapshot()["get_response_calls"] == before + 1


def test_get_response_without_webhook(client: FlaskClient) -> None:
    body = task(deliveryMethod="async")
    _submit(client, body)
    done = wait_for(
        lambda: (p := _poll(client, body["taskUUID"]))["data"][0]["status"] == "success" and p
    )
    assert done["data"][0]["taskUUID"] == body["taskUUID"]


def test_sync_task_also_posts_its_webhook(client: FlaskClient, receiver: Receiver) -> None:
    body = task(webhookURL=receiver.url())
    answer = _submit(client, body)
    (item,) = answer.json["data"]
    (post,) = receiver.wait(1)
    assert post.json() == item


def test_upload_endpoint_receives_the_bytes(client: FlaskClient, receiver: Receiver) -> None:
    body = task(
        deliveryMethod="async",
        outputFormat="PNG",
        uploadEndpoint=receiver.url("/bucket/img.png?sig=x"),
    )
    _submit(client, body)
    (put,) = receiver.wait(1, method="PUT")
    assert put.path == "/bucket/img.png" and put.headers["Content-Type"] == "image/png"
    assert Image.open(io.BytesIO(put.body)).format == "PNG"
    wait_for(lambda: simulator_of(client).stats.snapshot()["uploads"]["succeeded"] == 1)


def test_base64_and_data_uri_outputs_in_webhooks(client: FlaskClient, receiver: Receiver) -> None:
    as_b64 = task(
        deliveryMethod="async",
        webhookURL=receiver.url(),
        outputType="base64Data",
        outputFormat="WEBP",
    )
    as_uri = task(deliveryMethod="async", webhookURL=receiver.url(), outputType="dataURI")
    _submit(client, as_b64, as_uri)
    by_task = {post.json()["taskUUID"]: post.json() for post in receiver.wait(2)}
    raw = base64.b64decode(by_task[as_b64["taskUUID"]]["imageBase64Data"])
    assert Image.open(io.BytesIO(raw)).format == "WEBP"
    uri = by_task[as_uri["taskUUID"]]["imageDataURI"]
    assert uri.startswith("data:image/jpeg;base64,")
    assert Image.open(io.BytesIO(base64.b64decode(uri.split(",", 1)[1]))).format == "JPEG"
    assert "imageURL" not in by_task[as_uri["taskUUID"]]
