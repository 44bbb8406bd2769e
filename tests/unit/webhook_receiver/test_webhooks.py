"""The webhook endpoint through Flask's test client, on a real database (both backends)."""

from __future__ import annotations

import io
import json
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from flask.testing import FlaskClient
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session
from werkzeug.test import EnvironBuilder

from remixq.models import Image, Job, WebhookEvent
from remixq.security import webhook_token
from tests.support.factories import new_job
from tests.support.webhooks import SECRET, count, issued_url, receiver_client, result, url


@pytest.fixture
def client(engine: Engine, tmp_path: Path) -> Iterator[FlaskClient]:
    with receiver_client(engine, tmp_path, max_webhook_bytes=4096) as test_client:
        yield test_client


# The issued path form is served by the app's fast path, the query form by Flask's route
# (webhook_receiver.webhooks): both must answer alike.
both_forms = pytest.mark.parametrize("form", [issued_url, url], ids=["path form", "query form"])


@both_forms
def test_result_is_stored_once_and_completes_the_job(
    client: FlaskClient, engine: Engine, form: Callable[[str], str]
) -> None:
    task = new_job(engine)
    item = result(task)
    first = client.post(form(task), json=item)
    assert first.status_code == 200 and first.json == {
        "status": "processed",
        "images_stored": 1,
        "duplicates": 0,
    }
    again = client.post(form(task), json={"data": [item]})
    assert again.status_code == 200 and again.json["duplicates"] == 1
    with Session(engine) as session:
        job = session.scalar(select(Job).where(Job.task_uuid == task))
        assert job is not None and job.status == "completed" and job.results_received == 1


@pytest.mark.parametrize("token", ["", "0" * 64, "not-a-token"])
def test_wrong_or_missing_token_is_401_and_stores_nothing(
    client: FlaskClient, engine: Engine, token: str
) -> None:
    task = new_job(engine)
    before = count(engine, WebhookEvent), count(engine, Image)
    response = client.post(url(task, token), json=result(task))
    assert response.status_code == 401 and response.json["error"] == "unauthorized"
    assert (count(engine, WebhookEvent), count(engine, Image)) == before
    with Session(engine) as session:
        job = session.scalar(select(Job).where(Job.task_uuid == task))
        assert job is not None and job.results_received == 0


@pytest.mark.parametrize("token", ["0" * 64, "not-a-token", "é" * 64])
def test_wrong_token_in_the_path_is_401(client: FlaskClient, engine: Engine, token: str) -> None:
    task = new_job(engine)
    response = client.post(issued_url(task, token), json=result(task))
    assert response.status_code == 401 and response.json["error"] == "unauthorized"
    assert count(engine, WebhookEvent, task_uuid=task) == 0
    response = client.post(issued_url("not-a-uuid", "0" * 64), json=result(task))
    assert response.status_code == 401


def test_the_right_token_with_a_non_ascii_tail_is_401_not_500(
    client: FlaskClient, engine: Engine
) -> None:
    task = new_job(engine)
    response = client.post(issued_url(task, webhook_token(SECRET.encode(), task) + "é"), json={})
    assert response.status_code == 401 and response.json["error"] == "unauthorized"
    response = client.post(url(task, webhook_token(SECRET.encode(), task) + "é"), json={})
    assert response.status_code == 401


def test_token_of_another_task_is_401(client: FlaskClient, engine: Engine) -> None:
    task, other = new_job(engine), new_job(engine)
    response = client.post(url(task, webhook_token(SECRET.encode(), other)), json=result(task))
    assert response.status_code == 401


@both_forms
def test_malformed_json_is_400_and_kept_as_invalid(
    client: FlaskClient, engine: Engine, form: Callable[[str], str]
) -> None:
    task = new_job(engine)
    response = client.post(form(task), data=b'{"taskUUID": ', content_type="application/json")
    assert response.status_code == 400 and response.json["status"] == "invalid"
    assert "JSON" in response.json["message"]
    assert count(engine, WebhookEvent, task_uuid=task, status="invalid") == 1


@both_forms
def test_unknown_task_is_kept_as_an_orphan(
    client: FlaskClient, engine: Engine, form: Callable[[str], str]
) -> None:
    stranger = str(uuid.uuid4())
    images_before = count(engine, Image)
    response = client.post(form(stranger), json=result(stranger))
    assert response.status_code == 202 and response.json["status"] == "orphan"
    assert count(engine, WebhookEvent, task_uuid=stranger, status="orphan") == 1
    assert count(engine, Image) == images_before


@both_forms
def test_item_of_another_task_is_refused(
    client: FlaskClient, engine: Engine, form: Callable[[str], str]
) -> None:
    task, other = new_job(engine), new_job(engine)
    response = client.post(form(task), json=result(other))
    assert response.status_code == 400 and response.json["status"] == "rejected"
    with Session(engine) as session:
        job = session.scalar(select(Job).where(Job.task_uuid == other))
        assert job is not None and job.results_received == 0


@both_forms
def test_oversized_body_is_413_and_stores_nothing(
    client: FlaskClient, engine: Engine, form: Callable[[str], str]
) -> None:
    task = new_job(engine)
    before = count(engine, WebhookEvent)
    big = json.dumps({**result(task), "padding": "x" * 5000})
    response = client.post(form(task), data=big, content_type="application/json")
    assert response.status_code == 413 and response.json["error"] == "request_entity_too_large"
    assert count(engine, WebhookEvent) == before


@both_forms
def test_error_envelope_fails_the_job(
    client: FlaskClient, engine: Engine, form: Callable[[str], str]
) -> None:
    task = new_job(engine, number_results=2)
    body = {"errors": [{"code": "timeoutProvider", "message": "too slow", "taskUUID": task}]}
    assert client.post(form(task), json=body).status_code == 200
    with Session(engine) as session:
        job = session.scalar(select(Job).where(Job.task_uuid == task))
        assert job is not None and (job.status, job.error_code) == ("failed", "timeoutProvider")


def test_unknown_route_is_a_json_404(client: FlaskClient) -> None:
    response = client.get("/nope")
    assert response.status_code == 404 and response.json["error"] == "not_found"


@both_forms
def test_a_body_without_a_length_is_stored(
    client: FlaskClient, engine: Engine, form: Callable[[str], str]
) -> None:
    """A chunked body (no Content-Length) is read to its end and stored like any other."""
    task = new_job(engine)
    body = json.dumps(result(task)).encode()
    response = client.post(
        form(task),
        input_stream=io.BytesIO(body),
        headers={"Transfer-Encoding": "chunked", "Content-Type": "application/json"},
    )
    assert response.status_code == 200 and response.json["images_stored"] == 1
    assert count(engine, WebhookEvent, task_uuid=task, status="processed") == 1


@both_forms
def test_a_body_without_a_length_over_the_limit_is_413_and_stores_nothing(
    client: FlaskClient, engine: Engine, form: Callable[[str], str]
) -> None:
    """Read up to the limit and one byte more: a 413, not a truncated body stored as invalid."""
    task = new_job(engine)
    body = json.dumps({**result(task), "padding": "x" * 5000}).encode()
    response = client.post(
        form(task),
        input_stream=io.BytesIO(body),
        headers={"Transfer-Encoding": "chunked", "Content-Type": "application/json"},
    )
    assert response.status_code == 413 and response.json["error"] == "request_entity_too_large"
    assert response.json["message"] == "the body is over the limit of 4096 bytes"
    assert count(engine, WebhookEvent, task_uuid=task) == 0


def test_a_body_cut_short_is_400_and_stores_nothing(client: FlaskClient, engine: Engine) -> None:
    """The client goes away before sending the Content-Length it declared."""
    task = new_job(engine)
    body = json.dumps(result(task)).encode()
    environ = EnvironBuilder(
        path=issued_url(task), method="POST", data=body[:-10], content_type="application/json"
    ).get_environ()
    environ["CONTENT_LENGTH"] = str(len(body))
    answered: list[str] = []
    chunks = client.application(environ, lambda status, _headers: answered.append(status))
    document = json.loads(b"".join(chunks))
    assert answered == ["400 Bad Request"] and document["error"] == "bad_request"
    assert count(engine, WebhookEvent, task_uuid=task) == 0


@pytest.mark.parametrize("method", ["GET", "PUT"])
def test_other_methods_on_a_webhook_url_are_405(
    client: FlaskClient, engine: Engine, method: str
) -> None:
    task = new_job(engine)
    response = client.open(issued_url(task), method=method, json=result(task))
    assert response.status_code == 405 and response.json["error"] == "method_not_allowed"
    assert count(engine, WebhookEvent, task_uuid=task) == 0


@both_forms
def test_a_database_error_is_a_json_500_and_stores_nothing(
    client: FlaskClient, engine: Engine, poison: str, form: Callable[[str], str]
) -> None:
    task = new_job(engine)
    response = client.post(form(task), json={**result(task), "imageURL": poison})
    assert response.status_code == 500 and response.json == {
        "error": "internal_error",
        "message": "unexpected error",
    }
    assert count(engine, WebhookEvent, task_uuid=task) == 0
    assert client.post(form(task), json=result(task)).status_code == 200  # the next one is fine
