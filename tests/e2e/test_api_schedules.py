"""The REST API's schedules, as a client sees them: a real `remixq receiver` on PostgreSQL, keys
made with `remixq apikey`. Add (a spec or a file), refusals (422 naming the field, 409 for a
name in use, 403 for a read-only key, nothing stored), list, read, change, pause, resume, run
now with the history, and remove."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.api import JOB, Api, api_env, api_receiver, new_key

pytestmark = pytest.mark.e2e

SPEC: dict[str, Any] = {
    "defaults": {k: v for k, v in JOB.items() if k != "positivePrompt"},
    "matrix": {"positivePrompt": ["a tin, autumn", "a tin, winter"]},
}


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Api, Api]]:
    tmp: Path = tmp_path_factory.mktemp("api-schedules")
    env = api_env("api_schedules", tmp / "data")
    with api_receiver(env, tmp) as base:
        yield (
            Api(base, new_key(env, tmp, "crm")),
            Api(base, new_key(env, tmp, "dashboard", read_only=True)),
        )


def create(api: Api, **body: Any) -> Any:
    return api.post("/schedules", json={"cron": "0 9 * * MON", "spec": SPEC, **body})


def test_add_read_change_and_remove(served: tuple[Api, Api]) -> None:
    api, reader = served
    made = create(api, name="weekly", timezone="Europe/Berlin", budget_usd="1.50")
    assert made.status_code == 201, made.text
    schedule = made.json()
    assert made.headers["Location"].endswith("/api/v1/schedules/weekly")
    assert (schedule["cron"], schedule["timezone"], schedule["catch_up"]) == (
        "0 9 * * MON",
        "Europe/Berlin",
        "latest",
    )
    assert schedule["budget_usd"] == "1.50" and schedule["file"] == "spec.json"
    assert schedule["next_occurrence_at"].endswith(("T09:00:00+01:00", "T09:00:00+02:00"))
    assert reader.get("/schedules/weekly").json() == schedule
    page = reader.get("/schedules", params={"limit": 1}).json()
    assert [s["name"] for s in page["items"]] == ["weekly"]

    changed = api.request(
        "PATCH", "/schedules/weekly", json={"cron": "30 8 * * *", "catch_up": "all"}
    )
    assert changed.status_code == 200, changed.text
    assert (changed.json()["cron"], changed.json()["catch_up"]) == ("30 8 * * *", "all")
    assert changed.json()["budget_usd"] == "1.50"  # kept
    unbudgeted = api.request("PATCH", "/schedules/weekly", json={"budget_usd": None})
    assert unbudgeted.json()["budget_usd"] is None

    paused = api.post("/schedules/weekly/pause").json()
    assert paused["paused"] and paused["next_occurrence_at"] is None
    resumed = api.post("/schedules/weekly/resume").json()
    assert not resumed["paused"] and resumed["next_occurrence_at"].endswith(
        ("T08:30:00+01:00", "T08:30:00+02:00")
    )

    run = api.post("/schedules/weekly/run")
    assert run.status_code == 201, run.text
    fired = run.json()
    occurrence = fired["occurrence"]
    assert occurrence["status"] == "fired" and occurrence["jobs"] == 2
    assert occurrence["campaign"].startswith("weekly@")
    assert fired["schedule"]["fired"] == 1
    campaign = api.get(f"/campaigns/{occurrence['campaign_id']}").json()
    assert campaign["name"] == occurrence["campaign"]
    history = reader.get("/schedules/weekly/occurrences").json()
    assert [o["id"] for o in history["items"]] == [occurrence["id"]]
    assert history["next_cursor"] is None

    removed = api.request("DELETE", "/schedules/weekly")
    assert removed.json() == {"name": "weekly", "removed": True, "occurrences": 1}
    gone = api.get("/schedules/weekly")
    assert gone.status_code == 404 and gone.json()["error"]["code"] == "not_found"
    assert api.get(f"/campaigns/{occurrence['campaign_id']}").status_code == 200


def test_a_file_is_stored_as_given(served: tuple[Api, Api]) -> None:
    api, _ = served
    content = json.dumps(JOB) + "\n"
    made = create(api, name="from-file", spec=None, file={"name": "one.jsonl", "content": content})
    assert made.status_code == 201, made.text
    assert made.json()["file"] == "one.jsonl"
    run = api.post("/schedules/from-file/run").json()
    assert run["occurrence"]["jobs"] == 1
    assert api.request("DELETE", "/schedules/from-file").status_code == 200


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "bad-cron", "cron": "0 25 * * *"}, "cron"),
        ({"name": "bad-zone", "timezone": "Europe/Atlantis"}, "timezone"),
        ({"name": "bad name"}, "name"),
        ({"name": "bad-policy", "catch_up": "sometimes"}, "catch_up"),
        (
            {"name": "bad-spec", "spec": {"defaults": {"model": "nope"}, "jobs": [{}]}},
            "jobs[0].model",
        ),
        ({"name": "no-source", "spec": None}, "spec"),
        (
            {
                "name": "local",
                "spec": {"jobs": [{**JOB, "inputs": {"referenceImages": ["a.png"]}}]},
            },
            "jobs[0].inputs.referenceImages[0]",
        ),
    ],
)
def test_bad_input_is_422_naming_the_field_and_stores_nothing(
    served: tuple[Api, Api], body: dict[str, Any], field: str
) -> None:
    api, _ = served
    refused = create(api, **body)
    assert refused.status_code == 422, refused.text
    error = refused.json()["error"]
    assert error["code"] == "invalid_input"
    assert field in [e["field"] for e in error["errors"]]
    assert api.get(f"/schedules/{body['name']}").status_code == 404


def test_a_name_in_use_is_409_and_a_read_only_key_is_403(served: tuple[Api, Api]) -> None:
    api, reader = served
    assert create(api, name="twice").status_code == 201
    again = create(api, name="twice")
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "schedule_name_taken"
    assert create(reader, name="by-reader").status_code == 403
    assert reader.post("/schedules/twice/run").status_code == 403
    assert api.get("/schedules/by-reader").status_code == 404
    assert api.request("DELETE", "/schedules/twice").status_code == 200


def test_a_run_over_its_budget_is_409_and_stores_nothing(served: tuple[Api, Api]) -> None:
    api, _ = served
    assert create(api, name="tight", budget_usd="0.05").status_code == 201  # 0.12 asked
    refused = api.post("/schedules/tight/run")
    assert refused.status_code == 409 and refused.json()["error"]["code"] == "budget_exceeded"
    assert api.get("/schedules/tight").json()["fired"] == 0
    assert api.request("DELETE", "/schedules/tight").json()["occurrences"] == 0
