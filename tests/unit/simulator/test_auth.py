"""Authentication: Bearer header or a leading authentication task; 401 codes."""

from __future__ import annotations

from typing import Any

import pytest
from flask.testing import FlaskClient

from tests.support.simulator import MakeClient, task


def _post(client: FlaskClient, body: list[Any], headers: dict[str, str] | None = None) -> Any:
    return client.post("/v1", json=body, headers=headers or {})


def test_no_key_is_missing_api_key(client: FlaskClient) -> None:
    answer = _post(client, [task()])
    assert answer.status_code == 401
    (error,) = answer.json["errors"]
    assert error["code"] == "missingApiKey"
    assert error["parameter"] == "apiKey" and error["taskType"] == "authentication"


@pytest.mark.parametrize("header", ["Bearer ", "Bearer", "Basic dXNlcjpwYXNz", "Token abc"])
def test_unreadable_or_empty_key_is_invalid(client: FlaskClient, header: str) -> None:
    answer = _post(client, [task()], {"Authorization": header})
    assert answer.status_code == 401
    assert answer.json["errors"][0]["code"] == "invalidApiKey"


def test_any_non_empty_key_is_accepted_by_default(client: FlaskClient) -> None:
    assert _post(client, [task()], {"Authorization": "Bearer whatever"}).status_code == 200


def test_authentication_task_first(client: FlaskClient) -> None:
    body = task()
    answer = _post(client, [{"taskType": "authentication", "apiKey": "k"}, body])
    assert answer.status_code == 200
    auth, result = answer.json["data"]
    assert auth["taskType"] == "authentication" and auth["connectionSessionUUID"]
    assert result["taskUUID"] == body["taskUUID"]


def test_authentication_task_alone(client: FlaskClient) -> None:
    answer = _post(client, [{"taskType": "authentication", "apiKey": "k"}])
    assert answer.status_code == 200
    assert [item["taskType"] for item in answer.json["data"]] == ["authentication"]


def test_authentication_task_not_first_does_not_authenticate(client: FlaskClient) -> None:
    answer = _post(client, [task(), {"taskType": "authentication", "apiKey": "k"}])
    assert answer.status_code == 401
    answer = _post(
        client,
        [task(), {"taskType": "authentication", "apiKey": "k"}],
        {"Authorization": "Bearer k"},
    )
    assert answer.status_code == 200
    assert answer.json["errors"][0]["code"] == "invalidTaskType"


def test_configured_key_is_required(make_client: MakeClient) -> None:
    client = make_client(api_key="s3cret")
    assert _post(client, [task()], {"Authorization": "Bearer wrong"}).status_code == 401
    answer = _post(client, [{"taskType": "authentication", "apiKey": "wrong"}, task()])
    assert answer.status_code == 401 and answer.json["errors"][0]["code"] == "invalidApiKey"
    assert _post(client, [task()], {"Authorization": "Bearer s3cret"}).status_code == 200
    body = [{"taskType": "authentication", "apiKey": "s3cret"}, task()]
    assert _post(client, body).status_code == 200


def test_auth_failure_accepts_nothing(client: FlaskClient) -> None:
    body = task()
    _post(client, [body])
    assert _post(client, [body], {"Authorization": "Bearer k"}).status_code == 200
    stats = client.get("/_control/stats").json
    assert stats["auth_failures"] == 1
    assert stats["tasks"][body["taskUUID"]] == {
        "attempts": 2,
        "accepted": 1,
        "webhooks_delivered": 0,
    }


@pytest.mark.parametrize("body", [[], {"taskType": "imageInference"}, None])
def test_auth_is_checked_before_the_body(client: FlaskClient, body: Any) -> None:
    assert client.post("/v1", json=body).status_code == 401
    assert client.post("/v1", json=body, headers={"Authorization": "Bearer "}).status_code == 401
    assert client.post("/v1", json=body, headers={"Authorization": "Bearer k"}).status_code == 400
