"""The receiver's health and metrics: /healthz says the process is up, /readyz whether the
database and the broker answer and the writer runs, /metrics what it stored."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Engine
from sqlalchemy import text as sql

from remixq.cli.processes import free_port
from tests.support.factories import new_job
from tests.support.webhooks import issued_url, receiver_client, result
from webhook_receiver.state import Readiness


def test_healthz_readyz_and_metrics(engine: Engine, tmp_path: Path) -> None:
    task = new_job(engine)
    with receiver_client(engine, tmp_path) as client:
        assert client.get("/healthz").json == {"status": "ok"}
        ready = client.get("/readyz")
        assert ready.status_code == 200, ready.json
        assert ready.json is not None
        assert (ready.json["database"], ready.json["broker"]) == ("ok", "ok")

        assert client.post(issued_url(task), json=result(task)).status_code == 200
        assert client.post(issued_url(task, "0" * 64), json=result(task)).status_code == 401
        page = client.get("/metrics")
        assert page.status_code == 200 and page.content_type.startswith("text/plain")
        text = page.get_data(as_text=True)
    assert 'remixq_webhooks_total{outcome="stored"}' in text
    assert 'remixq_webhooks_total{outcome="unauthorized"}' in text
    assert "remixq_webhook_ingest_seconds_bucket" in text
    assert "remixq_ingest_batch_size_count" in text
    with engine.connect() as connection:  # the database's gauges: what it holds
        completed = connection.execute(
            sql("SELECT count(*) FROM jobs WHERE status = 'completed'")
        ).scalar_one()
    assert completed >= 1 and f'remixq_jobs{{status="completed"}} {float(completed)}' in text


def test_readyz_is_unready_while_the_broker_is_unreachable(engine: Engine, tmp_path: Path) -> None:
    broker = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there
    with receiver_client(engine, tmp_path, broker_url=broker) as client:
        assert client.get("/healthz").status_code == 200  # the process is up all the same
        unready = client.get("/readyz")
    assert unready.status_code == 503 and unready.headers["Retry-After"]
    assert unready.json is not None and unready.json["status"] == "unready"
    assert unready.json["database"] == "ok" and unready.json["broker"] != "ok"


def test_readiness_asks_each_at_most_once_per_second() -> None:
    asked: list[str] = []

    class Counting(Readiness):
        def _ask_database(self) -> None:
            asked.append("database")
            raise ConnectionRefusedError

    readiness = Counting(lambda: None, "memory://", ttl=60)  # type: ignore[arg-type,return-value]
    assert readiness.database() == "ConnectionRefusedError"
    assert readiness.database() == "ConnectionRefusedError"
    assert asked == ["database"]
