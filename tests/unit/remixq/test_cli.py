"""The CLI as a user meets it: real subprocesses, one readable line on bad input, nothing stored."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from tests.support.cli import remixq
from tests.support.images import png_bytes

VALID = {
    "model": "ideogram:4@2",
    "positivePrompt": "a poster",
    "width": 1024,
    "height": 1024,
    "inputs": {"referenceImages": ["c64351d5-4c59-42f7-95e1-eace013eddab"]},
}


def write_jsonl(path: Path, *rows: object) -> Path:
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))
    return path


@pytest.mark.parametrize(
    ("row", "expected"),
    [
        ({**VALID, "model": "ideogram:1@2", "width": 1000, "height": 768}, "line 2: width"),
        ({**VALID, "numberResults": 21}, "line 2: numberResults: 21"),
        ({**VALID, "webhookURL": "http://x"}, "line 2: webhookURL"),
        ({**VALID, "model": "ideogram:9@9"}, "line 2: model: 'ideogram:9@9'"),
        ("{not json", "line 2: (line)"),
    ],
)
def test_a_bad_line_refuses_the_whole_file(tmp_path: Path, row: object, expected: str) -> None:
    file = write_jsonl(tmp_path / "c.jsonl", VALID, row, VALID)
    done = remixq(tmp_path, "submit", str(file), "--json")
    assert done.returncode == 2
    assert expected in done.stderr and "Traceback" not in done.stderr
    assert done.stderr.startswith("error: ")
    assert done.stdout == ""
    status = remixq(tmp_path, "status", "--json")
    assert status.returncode == 2 and "CAMPAIGN" in status.stderr  # no campaign was stored


def test_submit_and_status_on_the_embedded_default(tmp_path: Path) -> None:
    (tmp_path / "ref.png").write_bytes(png_bytes())
    local = {**VALID, "inputs": {"referenceImages": ["ref.png"]}, "numberResults": 2}
    file = write_jsonl(tmp_path / "c.jsonl", VALID, local)
    done = remixq(tmp_path, "submit", str(file), "--campaign", "spring", "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {
        "campaign_id": 1,
        "name": "spring",
        "jobs": 2,
        "enqueued": True,
        "broker_error": None,
        "replayed": False,
    }
    report = json.loads(remixq(tmp_path, "status", "spring", "--json").stdout)
    assert report["cost_usd"] == "0.00"
    assert [job["status"] for job in report["jobs"]] == ["queued", "queued"]
    table = remixq(tmp_path, "status", "spring")
    assert "spring" in table.stdout and "queued" in table.stdout


def test_csv_campaign(tmp_path: Path) -> None:
    file = tmp_path / "c.csv"
    file.write_text(
        "model,positivePrompt,width,height,inputs.referenceImages,"
        "providerSettings.ideogram.magicPrompt,numberResults\n"
        "ideogram:1@2,123 bold poster,1024,768,https://example.com/a.jpg,ON,3\n"
        "ideogram:1@2,second,1024,768,c64351d5-4c59-42f7-95e1-eace013eddab,OFF,\n"
    )
    done = remixq(tmp_path, "submit", str(file), "--json")
    assert done.returncode == 0, done.stderr
    report = json.loads(remixq(tmp_path, "status", "--json").stdout)
    assert [job["results_expected"] for job in report["jobs"]] == [3, 1]


def test_csv_errors_name_the_line(tmp_path: Path) -> None:
    file = tmp_path / "c.csv"
    file.write_text(
        "model,positivePrompt,width,height,inputs.referenceImages\n"
        "ideogram:1@2,ok,1024,768,https://example.com/a.jpg\n"
        "ideogram:1@2,bad,1024,768,no-such-file.png\n"
    )
    done = remixq(tmp_path, "submit", str(file))
    assert done.returncode == 2
    assert "line 3: inputs.referenceImages[0]: 'no-such-file.png'" in done.stderr


def test_missing_file_is_one_line(tmp_path: Path) -> None:
    done = remixq(tmp_path, "submit", str(tmp_path / "nope.jsonl"))
    assert done.returncode == 2 and done.stderr.count("\n") == 1 and "FILE" in done.stderr


def test_simulator_help_documents_the_fault_knobs(tmp_path: Path) -> None:
    done = remixq(tmp_path, "simulator", "--help")
    for knob in (
        "--submit-429-rate",
        "--webhook-drop-rate",
        "--webhook-duplicate-rate",
        "--webhook-before-ack-rate",
        "--failure-rate",
        "--latency-ms",
    ):
        assert knob in done.stdout


def test_a_given_task_uuid_is_kept_and_cannot_be_submitted_twice(tmp_path: Path) -> None:
    task_uuid = "6ba7b826-9dad-41d1-80b4-00c04fd430c8"
    file = write_jsonl(tmp_path / "c.jsonl", {**VALID, "taskUUID": task_uuid})
    assert remixq(tmp_path, "submit", str(file)).returncode == 0
    report = json.loads(remixq(tmp_path, "status", "--json").stdout)
    assert report["jobs"][0]["task_uuid"] == task_uuid
    again = remixq(tmp_path, "submit", str(file), "--again")
    assert again.returncode == 2 and f"taskUUID: '{task_uuid}'" in again.stderr
    upper = write_jsonl(tmp_path / "d.jsonl", {**VALID, "taskUUID": task_uuid.upper()})
    other = remixq(tmp_path, "submit", str(upper))
    assert other.returncode == 2 and "already used by campaign 'c-" in other.stderr


def test_db_upgrade_on_postgresql(tmp_path: Path) -> None:
    from sqlalchemy import create_engine, inspect

    from tests.support.databases import recreate_pg_database, scratch_pg_url

    url = scratch_pg_url("cli_upgrade")
    recreate_pg_database(url)
    env = {**os.environ, "REMIXQ_DATABASE_URL": url, "REMIXQ_DATA_DIR": str(tmp_path)}
    done = subprocess.run(
        [sys.executable, "-m", "remixq.cli", "db", "upgrade"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "postgres" in done.stdout and "database at head" in done.stdout
    engine = create_engine(url)
    assert {"campaigns", "jobs", "images", "webhook_events"} <= set(
        inspect(engine).get_table_names()
    )
    engine.dispose()


def test_retry_makes_one_new_attempt_per_failed_job(tmp_path: Path) -> None:
    from sqlalchemy import create_engine, update

    from remixq.models import Job

    file = write_jsonl(tmp_path / "c.jsonl", VALID, VALID)
    assert remixq(tmp_path, "submit", str(file), "--campaign", "spring").returncode == 0
    first = json.loads(remixq(tmp_path, "status", "spring", "--json").stdout)["jobs"][0]
    engine = create_engine(f"sqlite:///{tmp_path / 'data' / 'remixq.sqlite'}")
    with engine.begin() as connection:
        connection.execute(
            update(Job)
            .where(Job.task_uuid == first["task_uuid"])
            .values(status="failed", error_code="timeoutProvider", error_message="slow")
        )
    engine.dispose()
    failed = remixq(tmp_path, "status", "spring", "--json")
    assert failed.returncode == 3 and json.loads(failed.stdout)["counts"]["failed"] == 1
    done = remixq(tmp_path, "retry", "spring", "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"retried": 1, "enqueued": True, "broker_error": None}
    again = json.loads(remixq(tmp_path, "retry", "spring", "--json").stdout)
    assert again["retried"] == 0
    after = remixq(tmp_path, "status", "spring", "--json")
    assert after.returncode == 0, after.stderr  # the campaign's outcome: no job failed (yet)
    report = json.loads(after.stdout)
    assert report["counts"] == {"queued": 2} and report["outcome"] == "running"
    jobs, (old,) = report["jobs"], report["superseded"]
    assert [job["status"] for job in jobs] == ["queued", "queued"]
    assert old["task_uuid"] == first["task_uuid"] and old["retried_as"] == jobs[1]["task_uuid"]
    assert jobs[1]["retry_of"] == first["task_uuid"]
    table = remixq(tmp_path, "status", "spring", "--history")
    assert f"→ {jobs[1]['task_uuid']}" in table.stdout and "1 superseded" in table.stdout
    for task in (first["task_uuid"], jobs[1]["task_uuid"], str(uuid.uuid4())):
        again = remixq(tmp_path, "retry", "--job", task)
        assert again.returncode == 2 and f"--job: '{task}'" in again.stderr, again.stderr
    assert "retried as" in remixq(tmp_path, "retry", "--job", first["task_uuid"]).stderr
    assert "this one is queued" in remixq(tmp_path, "retry", "--job", jobs[1]["task_uuid"]).stderr


def test_retry_and_replay_refuse_bad_options_in_one_line(tmp_path: Path) -> None:
    bad_job = remixq(tmp_path, "retry", "--job", "nope")
    assert bad_job.returncode == 2 and "--job: 'nope'" in bad_job.stderr
    bad_status = remixq(tmp_path, "replay", "--status", "lost")
    assert bad_status.returncode == 2 and "--status: 'lost'" in bad_status.stderr
    nothing = remixq(tmp_path, "replay")
    assert nothing.returncode == 0 and nothing.stdout.strip() == "nothing to replay"


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (("costs", "--by", "week"), "Invalid value for '--by': 'week' is not one of 'campaign',"),
        (("submit", "--nope"), "No such option '--nope'. (see 'remixq submit --help')"),
        (("export",), "Missing argument 'CAMPAIGN'. (see 'remixq export --help')"),
        (("nosuch",), "No such command 'nosuch'. (see 'remixq --help')"),
    ],
)
def test_a_usage_error_is_one_line_naming_the_option(
    tmp_path: Path, args: tuple[str, ...], said: str
) -> None:
    bad = remixq(tmp_path, *args)
    assert bad.returncode == 2
    assert bad.stderr.splitlines() == [bad.stderr.strip()] and said in bad.stderr


def test_submit_with_the_broker_unreachable_stores_and_says_so(tmp_path: Path) -> None:
    from remixq.cli.processes import free_port

    closed = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there
    file = write_jsonl(tmp_path / "c.jsonl", VALID, VALID)
    done = remixq(
        tmp_path, "submit", str(file), "--campaign", "spring", env={"REMIXQ_BROKER_URL": closed}
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("stored campaign 'spring' (id 1): 2 jobs; the broker is")
    assert "handed to it when it is reachable" in done.stdout and "Traceback" not in done.stderr
    report = json.loads(remixq(tmp_path, "status", "spring", "--json").stdout)
    assert [job["status"] for job in report["jobs"]] == ["pending", "pending"]
    as_json = remixq(
        tmp_path, "submit", str(file), "--again", "--json", env={"REMIXQ_BROKER_URL": closed}
    )
    answer = json.loads(as_json.stdout)
    assert as_json.returncode == 0 and answer["jobs"] == 2 and answer["enqueued"] is False
    assert answer["broker_error"]


def test_retry_with_the_broker_unreachable_stores_and_says_so(tmp_path: Path) -> None:
    from sqlalchemy import create_engine, update

    from remixq.cli.processes import free_port
    from remixq.models import Job

    closed = {"REMIXQ_BROKER_URL": f"redis://127.0.0.1:{free_port()}/0"}  # nothing listens
    file = write_jsonl(tmp_path / "c.jsonl", VALID)
    assert remixq(tmp_path, "submit", str(file), "--campaign", "spring", env=closed).returncode == 0
    engine = create_engine(f"sqlite:///{tmp_path / 'data' / 'remixq.sqlite'}")
    with engine.begin() as connection:
        connection.execute(update(Job).values(status="failed", error_code="timeoutProvider"))
    engine.dispose()

    done = remixq(tmp_path, "retry", "spring", env=closed)

    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("1 failed job(s) retried with new taskUUIDs; the broker is")
    assert "Traceback" not in done.stderr
    report = json.loads(remixq(tmp_path, "status", "spring", "--json").stdout)
    assert [job["status"] for job in report["jobs"]] == ["pending"]  # the retry, stored
    again = remixq(tmp_path, "retry", "spring", "--json", env=closed)
    assert json.loads(again.stdout) == {"retried": 0, "enqueued": True, "broker_error": None}


def test_the_same_file_twice_is_refused_unless_again(tmp_path: Path) -> None:
    file = write_jsonl(tmp_path / "c.jsonl", VALID)
    assert remixq(tmp_path, "submit", str(file), "--campaign", "spring").returncode == 0
    copy = tmp_path / "copy.jsonl"
    copy.write_bytes(file.read_bytes())
    again = remixq(tmp_path, "submit", str(copy), "--campaign", "autumn")
    assert again.returncode == 2 and again.stderr.count("\n") == 1
    assert (
        "the same content is campaign 'spring' (id 1)" in again.stderr and "--again" in again.stderr
    )
    second = remixq(tmp_path, "submit", str(copy), "--campaign", "autumn", "--again", "--json")
    assert second.returncode == 0 and json.loads(second.stdout)["campaign_id"] == 2


def test_a_binary_file_is_one_line(tmp_path: Path) -> None:
    file = tmp_path / "c.jsonl"
    file.write_bytes(png_bytes())
    done = remixq(tmp_path, "submit", str(file))
    assert done.returncode == 2 and done.stderr.count("\n") == 1, done.stderr
    assert done.stderr.startswith("error: FILE: '") and "Traceback" not in done.stderr
    assert "is not allowed; a UTF-8 text file" in done.stderr


def test_a_campaign_named_like_an_id(tmp_path: Path) -> None:
    file = write_jsonl(tmp_path / "c.jsonl", VALID)
    assert remixq(tmp_path, "submit", str(file), "--campaign", "2").returncode == 0
    assert remixq(tmp_path, "submit", str(file), "--campaign", "x", "--again").returncode == 0
    assert json.loads(remixq(tmp_path, "status", "2", "--json").stdout)["name"] == "2"
    assert json.loads(remixq(tmp_path, "status", "#2", "--json").stdout)["name"] == "x"
    assert json.loads(remixq(tmp_path, "status", "1", "--json").stdout)["name"] == "2"


def test_the_status_table_keeps_ids_and_costs_whole_at_80_columns(tmp_path: Path) -> None:
    from decimal import Decimal

    from sqlalchemy import create_engine, insert, select, update

    from remixq.models import Image, Job

    file = write_jsonl(tmp_path / "c.jsonl", {**VALID, "numberResults": 2}, VALID)
    assert remixq(tmp_path, "submit", str(file), "--campaign", "spring").returncode == 0
    engine = create_engine(f"sqlite:///{tmp_path / 'data' / 'remixq.sqlite'}")
    images = [str(uuid.uuid4()), str(uuid.uuid4())]
    with engine.begin() as connection:
        job_id, task_uuid = connection.execute(
            select(Job.id, Job.task_uuid).order_by(Job.id)
        ).first()
        connection.execute(
            update(Job).where(Job.id == job_id).values(status="completed", results_received=2)
        )
        for image, cost in zip(images, ("123.0456789", "0.0384"), strict=True):
            connection.execute(
                insert(Image).values(
                    job_id=job_id,
                    image_uuid=image,
                    image_url="https://im.test/x.png",
                    seed=4294967295,
                    cost=Decimal(cost),
                    raw={},
                )
            )
    engine.dispose()
    done = remixq(tmp_path, "status", "spring", env={"COLUMNS": "80"})
    assert done.returncode == 0, done.stderr
    assert max(len(row) for row in done.stdout.splitlines()) <= 80
    for whole in (str(task_uuid), *images, "123.0456789", "0.0384", "123.0840789", "4294967295"):
        assert whole in done.stdout, whole


def test_beat_help_agrees_with_the_readme_that_several_beats_are_safe() -> None:
    from click.testing import CliRunner

    from remixq.cli import cli

    result = CliRunner().invoke(cli, ["beat", "--help"], terminal_width=200)
    assert result.exit_code == 0, result.output
    assert "several are safe" in result.output and "SKIP LOCKED" in result.output
    assert "Run one per deployment" not in result.output
    readme = (Path(__file__).parents[3] / "README.md").read_text()
    assert "several are safe" in readme


def test_a_bad_setting_is_one_line_naming_it_and_what_is_allowed(tmp_path: Path) -> None:
    done = remixq(tmp_path, "campaigns", env={"REMIXQ_LOG_FORMAT": "xml"})
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert done.stderr.strip() == (
        "error: REMIXQ_LOG_FORMAT: 'xml' is not allowed: Input should be 'plain' or 'json'"
    )


def test_health_exits_1_with_one_line_when_nothing_answers(tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{sock.getsockname()[1]}/healthz"
    done = remixq(tmp_path, "health", url)
    assert done.returncode == 1
    assert done.stderr.strip() == f"Error: {url}: no answer (ConnectionError)"
