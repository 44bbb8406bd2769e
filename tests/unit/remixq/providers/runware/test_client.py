"""The Runware REST client against a scripted fake transport (no network, no mocks of our code).

``FakeTransport`` (shipped in ``remixq.providers.runware.testing``) is a real ``requests``
adapter: the client's own session machinery prepares and sends each request, the fake records
it and answers from a script.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from email.utils import format_datetime
from typing import Any

import pytest
import requests

from remixq.providers.runware import (
    Ack,
    BadRequest,
    ConnectionFailed,
    Forbidden,
    NotFound,
    PaymentRequired,
    PermanentError,
    PollResult,
    ProviderError,
    RateLimited,
    RequestTimeout,
    RunwareClient,
    RunwareError,
    ServerError,
    TransientError,
    Unauthorized,
    UnexpectedResponse,
    build_task,
    is_transient_code,
    parse_request,
)
from remixq.providers.runware.testing import Answer, FakeTransport, reply

API_URL = "https://api.runware.test/v1"
API_KEY = "rw-secret-key-0123456789"
U1 = "0b5a3e7c-2f4d-4c1e-9a8b-6d2f1e3c4b5a"
U2 = "5d0c6f1e-8a2b-4c3d-9e4f-a1b2c3d4e5f6"
U3 = "9f8e7d6c-5b4a-4392-8170-6a5b4c3d2e1f"


def make_client(
    *script: Answer | BaseException, **options: Any
) -> tuple[RunwareClient, FakeTransport]:
    transport = FakeTransport(*script)
    session = requests.Session()
    session.mount("https://", transport)
    options.setdefault("api_key", API_KEY)
    return RunwareClient(API_URL, session=session, **options), transport


def task(task_uuid: str = U1) -> dict[str, Any]:
    request = parse_request(
        {
            "model": "ideogram:1@2",
            "positivePrompt": "A retro cereal box",
            "width": 1024,
            "height": 768,
            "inputs": {"referenceImages": ["https://assets.example.test/a.jpg"]},
        }
    )
    return build_task(request, task_uuid=task_uuid, webhook_url="https://hooks.test/h/s3cr3t")


def ack(task_uuid: str) -> dict[str, str]:
    return {"taskType": "imageInference", "taskUUID": task_uuid}


def only_refusal(outcome: dict[str, Ack | ProviderError], *, transient: bool) -> ProviderError:
    """The answer's one outcome, for U1: a refusal, transient or not as said."""
    assert list(outcome) == [U1]
    refused = outcome[U1]
    assert isinstance(refused, ProviderError)
    assert refused.transient is transient
    return refused


def err(code: str, task_uuid: str | None = None, **extra: Any) -> dict[str, Any]:
    body = {"code": code, "message": f"{code} happened", "taskType": "imageInference", **extra}
    if task_uuid:
        body["taskUUID"] = task_uuid
    return body


# --- submission -------------------------------------------------------------------------------


def test_submit_sends_the_task_array_with_bearer_auth_and_timeouts() -> None:
    client, transport = make_client(reply(200, {"data": [ack(U1)]}))

    result = client.submit([task(U1)])

    assert result == {U1: Ack(U1, already_submitted=False)}
    (sent,) = transport.sent
    assert sent.method == "POST"
    assert sent.url == API_URL
    assert sent.headers["Authorization"] == f"Bearer {API_KEY}"
    assert sent.headers["Content-Type"] == "application/json"
    assert transport.body() == [task(U1)]
    assert transport.timeouts == [(3.05, 30.0)]


def test_the_key_is_never_shown() -> None:
    client, _ = make_client()

    assert API_KEY not in repr(client)
    assert "key=set" in repr(client)
    assert "key=none" in repr(make_client(api_key=None)[0])


def test_without_a_key_no_authorization_is_sent() -> None:
    client, transport = make_client(reply(200, {"data": [ack(U1)]}), api_key=None)

    client.submit([task(U1)])

    assert "Authorization" not in transport.sent[0].headers
    assert transport.body() == [task(U1)]


def test_task_auth_mode_sends_a_leading_authentication_task() -> None:
    auth_reply = {"taskType": "authentication", "connectionSessionUUID": U3}
    client, transport = make_client(reply(200, {"data": [auth_reply, ack(U1)]}), auth_mode="task")

    assert client.submit([task(U1)]) == {U1: Ack(U1)}
    assert "Authorization" not in transport.sent[0].headers
    assert transport.body() == [{"taskType": "authentication", "apiKey": API_KEY}, task(U1)]


def test_custom_timeouts_are_passed_on_every_call() -> None:
    client, transport = make_client(
        reply(200, {"data": [ack(U1)]}),
        reply(200, {"data": []}),
        timeout=(1.5, 9.0),
    )

    client.submit([task(U1)])
    client.get_response(U1)

    assert transport.timeouts == [(1.5, 9.0), (1.5, 9.0)]


@pytest.mark.parametrize("status", [200, 400])
def test_conflict_task_uuid_means_already_submitted(status: int) -> None:
    client, _ = make_client(reply(status, {"errors": [err("conflictTaskUUID", U1)]}))

    assert client.submit([task(U1)]) == {U1: Ack(U1, already_submitted=True)}


@pytest.mark.parametrize("status", [200, 400])
def test_a_permanent_per_task_error_rejects_the_task(status: int) -> None:
    error = err("invalidPositivePrompt", U1, parameter="positivePrompt")
    client, _ = make_client(reply(status, {"errors": [error]}))

    rejected = only_refusal(client.submit([task(U1)]), transient=False)
    assert rejected.code == "invalidPositivePrompt"
    assert rejected.parameter == "positivePrompt"
    assert rejected.task_uuid == U1
    assert rejected.raw == error


def test_a_transient_per_task_error_is_transient() -> None:
    client, _ = make_client(reply(200, {"errors": [err("timeoutProvider", U1)]}))

    refused = only_refusal(client.submit([task(U1)]), transient=True)
    assert refused.code == "timeoutProvider"


def test_a_mixed_batch_reports_each_task() -> None:
    client, transport = make_client(
        reply(
            200,
            {
                "data": [ack(U1)],
                "errors": [err("invalidWidth", U2), err("conflictTaskUUID", U3)],
            },
        )
    )

    outcome = client.submit([task(U1), task(U2), task(U3)])

    assert outcome[U1] == Ack(U1)
    assert outcome[U3] == Ack(U3, already_submitted=True)
    error = outcome[U2]
    assert isinstance(error, ProviderError)
    assert (error.code, error.task_uuid) == ("invalidWidth", U2)
    assert [t["taskUUID"] for t in transport.body()] == [U1, U2, U3]


def test_task_uuids_match_whatever_their_case() -> None:
    client, _ = make_client(
        reply(200, {"data": [ack(U1.upper())], "errors": [err("conflictTaskUUID", U2.upper())]}),
        reply(200, {"data": [{**ack(U1.upper()), "status": "processing"}]}),
    )

    assert client.submit([task(U1), task(U2)]) == {U1: Ack(U1), U2: Ack(U2, already_submitted=True)}
    assert client.get_response(U1).processing == 1


def test_a_task_without_an_answer_is_absent() -> None:
    client, _ = make_client(reply(200, {"data": []}))

    assert client.submit([task(U1)]) == {}


def test_errors_naming_no_task_of_the_request_are_unexpected() -> None:
    client, _ = make_client(reply(200, {"data": [ack(U1)], "errors": [err("somethingOdd")]}))

    with pytest.raises(UnexpectedResponse) as caught:
        client.submit([task(U1)])

    assert caught.value.errors[0].code == "somethingOdd"


def test_the_legacy_single_error_object_is_understood() -> None:
    client, _ = make_client(reply(200, {"error": err("invalidModel", U1)}))

    rejected = only_refusal(client.submit([task(U1)]), transient=False)
    assert rejected.code == "invalidModel"


def test_each_task_needs_its_own_uuid() -> None:
    client, transport = make_client()

    with pytest.raises(ValueError, match="taskUUID"):
        client.submit([task(U1), task(U1.upper())])
    with pytest.raises(ValueError, match="taskUUID"):
        client.submit([{"taskType": "imageInference"}])
    assert client.submit([]) == {}
    assert transport.sent == []


# --- whole-request failures -------------------------------------------------------------------

IN_PAST = format_datetime(datetime.now(UTC) - timedelta(minutes=5), usegmt=True)
IN_FUTURE = "<an HTTP date 120 s from now, made when the test runs>"

STATUS_CASES = [
    # status, body, headers, expected class, expected retry_after (None, a number, or a range)
    (400, {"errors": [err("invalidRequest")]}, {}, BadRequest, None),
    (400, {"errors": [err("invalidWidth", U2)]}, {}, BadRequest, None),  # not a task of ours
    (401, {"errors": [err("invalidApiKey", taskType="authentication")]}, {}, Unauthorized, None),
    (401, "", {}, Unauthorized, None),
    (402, {"errors": [err("insufficientCredits")]}, {}, PaymentRequired, None),
    (403, {"errors": [err("forbidden")]}, {}, Forbidden, None),
    (404, "<html>not here</html>", {"Content-Type": "text/html"}, NotFound, None),
    (408, "", {}, RequestTimeout, None),
    (429, {"errors": [err("rateLimitExceeded")]}, {}, RateLimited, None),
    (429, "", {"Retry-After": "7"}, RateLimited, 7.0),
    (429, "", {"Retry-After": "1.5"}, RateLimited, 1.5),
    (429, "", {"Retry-After": IN_FUTURE}, RateLimited, (100.0, 121.0)),
    (429, "", {"Retry-After": IN_PAST}, RateLimited, 0.0),
    (429, "", {"Retry-After": "soon"}, RateLimited, None),
    (500, "<html>oops</html>", {"Content-Type": "text/html"}, ServerError, None),
    (502, "", {}, ServerError, None),
    (503, {"errors": [err("serviceUnavailable")]}, {"Retry-After": "2"}, ServerError, 2.0),
    (504, "", {}, ServerError, None),
    (418, "", {}, UnexpectedResponse, None),
    (302, "", {"Location": "https://elsewhere.test/"}, UnexpectedResponse, None),
    (200, "this is not json", {}, UnexpectedResponse, None),
    (200, "[]", {}, UnexpectedResponse, None),
    (200, {"data": "nope"}, {}, UnexpectedResponse, None),
    (200, {"data": ["nope"]}, {}, UnexpectedResponse, None),
    (200, b"\xff\xfe\x00garbage", {}, UnexpectedResponse, None),
    (200, {"errors": [err("invalidApiKey", taskType="authentication")]}, {}, Unauthorized, None),
]


@pytest.mark.parametrize(
    ("status", "body", "headers", "expected", "retry_after"),
    STATUS_CASES,
    ids=[f"{c[0]}-{c[3].__name__}-{i}" for i, c in enumerate(STATUS_CASES)],
)
def test_http_status_maps_to_the_exception_tree(
    status: int, body: Any, headers: dict[str, str], expected: type[RunwareError], retry_after: Any
) -> None:
    if headers.get("Retry-After") == IN_FUTURE:
        soon = datetime.now(UTC) + timedelta(seconds=120)
        headers = {"Retry-After": format_datetime(soon, usegmt=True)}
    client, transport = make_client(reply(status, body, headers))

    with pytest.raises(expected) as caught:
        client.submit([task(U1)])

    error = caught.value
    assert error.status == status
    assert API_KEY not in str(error)
    assert error.message == str(error)
    if isinstance(error, TransientError):
        if isinstance(retry_after, tuple):
            assert error.retry_after is not None
            assert retry_after[0] <= error.retry_after <= retry_after[1]
        else:
            assert error.retry_after == retry_after
    else:
        assert isinstance(error, PermanentError)
    if isinstance(body, dict) and "errors" in body:
        assert [e.code for e in error.errors] == [e["code"] for e in body["errors"]]
    assert len(transport.sent) == 1  # no retries hidden in the client


@pytest.mark.parametrize(
    ("raised", "expected"),
    [
        (requests.ConnectionError("connection refused"), ConnectionFailed),
        (requests.ConnectTimeout("connect timed out"), ConnectionFailed),
        (requests.ReadTimeout("read timed out"), RequestTimeout),
        (requests.exceptions.ChunkedEncodingError("broken"), ConnectionFailed),
    ],
)
def test_transport_failures_are_transient(
    raised: BaseException, expected: type[TransientError]
) -> None:
    client, _ = make_client(raised, auth_mode="task")

    with pytest.raises(expected) as caught:
        client.submit([task(U1)])

    assert isinstance(caught.value, TransientError)
    assert caught.value.status is None
    assert caught.value.retry_after is None
    assert API_KEY not in str(caught.value)


def test_transient_and_permanent_are_disjoint_branches_of_one_tree() -> None:
    transient = {ConnectionFailed, RequestTimeout, RateLimited, ServerError}
    permanent = {BadRequest, Unauthorized, PaymentRequired, Forbidden, NotFound, UnexpectedResponse}
    assert all(
        issubclass(c, TransientError) and not issubclass(c, PermanentError) for c in transient
    )
    assert all(
        issubclass(c, PermanentError) and not issubclass(c, TransientError) for c in permanent
    )
    assert issubclass(TransientError, RunwareError) and issubclass(PermanentError, RunwareError)


@pytest.mark.parametrize(
    ("code", "transient"),
    [
        ("timeoutProvider", True),
        ("noAvailableServer", True),
        ("serviceUnavailable", True),
        ("internalServerError", True),
        ("rateLimitExceeded", True),
        ("invalidPositivePrompt", False),
        ("insufficientCredits", False),
        ("conflictTaskUUID", False),
        ("somethingNew", False),
    ],
)
def test_is_transient_code(code: str, transient: bool) -> None:
    assert is_transient_code(code) is transient


# --- getResponse ------------------------------------------------------------------------------


def test_get_response_sends_a_get_response_task() -> None:
    client, transport = make_client(reply(200, {"data": []}))

    assert client.get_response(U1) == PollResult(U1, [], [], 0)
    assert transport.body() == [{"taskType": "getResponse", "taskUUID": U1}]
    assert transport.sent[0].headers["Authorization"] == f"Bearer {API_KEY}"


def test_get_response_sorts_items_into_results_errors_and_processing() -> None:
    done = {**ack(U1), "status": "success", "imageUUID": U2, "imageURL": "https://im.test/a.jpg"}
    statusless = {**ack(U1), "imageUUID": U3, "imageURL": "https://im.test/b.jpg"}
    failed_item = {**ack(U1), "status": "error", "code": "contentModerated", "message": "no"}
    failed = {**err("timeoutProvider", U1), "status": "error"}
    client, _ = make_client(
        reply(
            200,
            {
                "data": [
                    {**ack(U1), "status": "processing"},
                    {**ack(U1), "status": "pending"},  # the older page's word
                    {**ack(U1), "status": "queued"},
                    done,
                    statusless,
                    failed_item,
                    {**ack(U2), "status": "success", "imageUUID": U3},  # another task's item
                ],
                "errors": [failed],
            },
        )
    )

    result = client.get_response(U1)

    assert result.task_uuid == U1
    assert result.results == [done, statusless]
    assert [(e.code, e.task_uuid) for e in result.errors] == [("contentModerated", U1)]
    # A transient code fails nothing: the reconciler asks again later.
    assert [(e.code, e.task_uuid) for e in result.deferred] == [("timeoutProvider", U1)]
    assert result.processing == 3


def test_get_response_reads_costs_as_exact_decimals() -> None:
    done = {**ack(U1), "status": "success", "imageUUID": U2}
    client, _ = make_client(reply(200, {"data": [{**done, "cost": 0.0013}]}))  # sent as text

    assert client.get_response(U1).results == [{**done, "cost": Decimal("0.0013")}]


def test_get_response_all_processing() -> None:
    client, _ = make_client(reply(200, {"data": [{**ack(U1), "status": "processing"}] * 2}))

    assert client.get_response(U1) == PollResult(U1, [], [], 2)


def test_get_response_for_an_unknown_task_reports_the_task_error() -> None:
    client, _ = make_client(reply(400, {"errors": [err("taskNotFound", U1)]}))

    result = client.get_response(U1)

    assert [e.code for e in result.errors] == ["taskNotFound"]
    assert result.results == [] and result.processing == 0


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        (reply(401, {"errors": [err("invalidApiKey")]}), Unauthorized),
        (reply(503, ""), ServerError),
        (reply(200, "{"), UnexpectedResponse),
        (requests.ReadTimeout("slow"), RequestTimeout),
    ],
)
def test_get_response_failures_use_the_same_tree(answer: Any, expected: type[RunwareError]) -> None:
    client, _ = make_client(answer)

    with pytest.raises(expected):
        client.get_response(U1)


# --- lifecycle --------------------------------------------------------------------------------


def test_close_leaves_an_injected_session_to_its_owner() -> None:
    client, transport = make_client()

    with client:
        pass

    assert transport.closed is False


@pytest.mark.parametrize(
    ("args", "options"),
    [
        (("ftp://api.test/v1", API_KEY), {}),
        ((API_URL, API_KEY), {"auth_mode": "query"}),
        ((API_URL, API_KEY), {"timeout": (0, 30.0)}),
    ],
)
def test_bad_configuration_is_refused(args: tuple[str, str], options: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="must be"):
        RunwareClient(*args, **options)


def test_own_session_reads_proxy_settings_once(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.internal.test:3128")
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/etc/ssl/certs/corp.pem")
    client = RunwareClient("https://api.runware.ai/v1", API_KEY)
    session = client._session
    assert session.trust_env is False  # no environment scan on every request
    assert session.proxies["https"] == "http://proxy.internal.test:3128"
    assert session.verify == "/etc/ssl/certs/corp.pem"
