"""The control API: reading and patching knobs, counters, reset."""

from __future__ import annotations

from typing import Any

from flask.testing import FlaskClient

from simulator.config import FaultKnobs
from simulator.stats import FAULT_KINDS, GLOBAL_COUNTERS, UPLOAD_EVENTS, WEBHOOK_EVENTS
from tests.support.simulator import AUTH, MakeClient, get_response, task


def test_get_faults_lists_every_knob_with_its_value(make_client: MakeClient) -> None:
    client = make_client(latency_ms=12)
    knobs = client.get("/_control/faults").json
    assert set(knobs) == set(FaultKnobs.model_fields)
    assert knobs["latency_ms"] == 12 and knobs["webhook_envelope"] == "bare"
    assert knobs["webhook_retries"] == 8 and knobs["retry_after_s"] is None


def test_patch_changes_only_the_named_knobs(client: FlaskClient) -> None:
    answer = client.put("/_control/faults", json={"failure_rate": 0.25, "webhook_envelope": "data"})
    assert answer.status_code == 200
    assert answer.json["failure_rate"] == 0.25 and answer.json["webhook_envelope"] == "data"
    assert client.get("/_control/faults").json == answer.json
    assert answer.json["latency_ms"] == 0.0


def test_refused_patches_change_nothing(client: FlaskClient) -> None:
    before = client.get("/_control/faults").json
    for patch, parameter in [
        ({"no_such_knob": 1}, "no_such_knob"),
        ({"failure_rate": 1.5}, "failure_rate"),
        ({"webhook_envelope": "xml"}, "webhook_envelope"),
        ({"latency_ms": -1}, "latency_ms"),
        ({"submit_429_rate": 0.6, "submit_503_rate": 0.6}, None),  # shares add up to more than 1
    ]:
        answer = client.put("/_control/faults", json=patch)
        assert answer.status_code == 400, patch
        assert answer.json["errors"][0]["code"] == "invalidKnob"
        if parameter is not None:
            assert answer.json["errors"][0]["parameter"] == parameter
    assert client.put("/_control/faults", json=[1]).status_code == 400
    assert client.get("/_control/faults").json == before


def test_stats_shape(client: FlaskClient) -> None:
    stats = client.get("/_control/stats").json
    assert set(stats) == {
        *GLOBAL_COUNTERS,
        *("cost_total", "faults", "webhooks", "uploads", "tasks", "requests_per_second"),
        *("providers", "ideogram_prompts"),
    }
    assert set(stats["faults"]) == set(FAULT_KINDS)
    assert set(stats["webhooks"]) == set(WEBHOOK_EVENTS)
    assert set(stats["uploads"]) == set(UPLOAD_EVENTS)
    assert stats["cost_total"] == "0.0000" and stats["tasks"] == {}
    assert not {"tasks", "requests_per_second", "ideogram_prompts"} & set(
        client.get("/_control/stats?tasks=0").json
    )


def test_counters_add_up(client: FlaskClient) -> None:
    first = task(includeCost=True, numberResults=3)
    turbo = task(includeCost=True, providerSettings={"ideogram": {"renderingSpeed": "TURBO"}})
    client.post("/v1", json=[first, turbo], headers=AUTH)
    client.post("/v1", json=[first, task(numberResults=0)], headers=AUTH)  # conflict + invalid
    client.post("/v1", json=[get_response(first["taskUUID"])], headers=AUTH)
    stats: dict[str, Any] = client.get("/_control/stats").json
    assert stats["submissions"] == 3
    assert stats["tasks_accepted"] == 2
    assert stats["conflicts"] == 1 and stats["validation_errors"] == 1
    assert stats["results_generated"] == 4
    assert stats["cost_total"] == "0.2100"  # 3 x 0.06 + 0.03
    assert stats["get_response_calls"] == 1
    assert sum(stats["requests_per_second"].values()) == 3  # every POST /v1, by second
    assert stats["tasks"][first["taskUUID"]] == {
        "attempts": 2,
        "accepted": 1,
        "webhooks_delivered": 0,
    }
    assert all(counters["accepted"] <= 1 for counters in stats["tasks"].values())


def test_reset_forgets_tasks_and_counters_and_restores_knobs(make_client: MakeClient) -> None:
    client = make_client(latency_ms=5)
    body = task()
    client.post("/v1", json=[body], headers=AUTH)
    client.put("/_control/faults", json={"latency_ms": 0, "failure_rate": 1.0})
    assert client.post("/_control/reset").json == {"status": "reset"}
    stats = client.get("/_control/stats").json
    assert stats["submissions"] == 0 and stats["tasks"] == {}
    knobs = client.get("/_control/faults").json
    assert knobs["latency_ms"] == 5 and knobs["failure_rate"] == 0.0
    # The taskUUID is free again.
    assert client.post("/v1", json=[body], headers=AUTH).status_code == 200


def test_unknown_route_and_method_answer_json(client: FlaskClient) -> None:
    missing = client.get("/nope")
    assert missing.status_code == 404 and missing.json["errors"][0]["code"] == "httpError"
    assert client.get("/v1").status_code == 405
