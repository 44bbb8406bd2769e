"""Every dashboard page of a 100,000-job campaign (100 variants, an image each) renders fast on
PostgreSQL: lists are keyset pages, totals are aggregates, so a page deep in the gallery costs
what the first does. The figures are in docs/benchmarks.md."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, text

from remixq import migrate
from remixq.db import make_engine
from tests.support.dashboard import Dashboard, dashboard, new_key
from tests.support.databases import recreate_pg_database, scratch_pg_url

pytestmark = pytest.mark.postgres

JOBS = 100_000
# Generous: the test suite runs on two cores shared by parallel workers, where the overview's
# five aggregates over 100,000 jobs took up to 6 s (about 1 s on a quiet machine). Loading the
# campaign's rows instead of aggregating and paging them takes far longer.
LIMIT_S = 10.0


@pytest.fixture(scope="module")
def large() -> Iterator[tuple[Engine, int]]:
    url = scratch_pg_url("dash_large")
    recreate_pg_database(url)
    migrate.upgrade(url)
    engine = make_engine(url)
    with engine.begin() as db:
        campaign_id = db.execute(
            text("INSERT INTO campaigns (name, created_at) VALUES ('large', now()) RETURNING id")
        ).scalar_one()
        db.execute(
            text(
                "INSERT INTO jobs (campaign_id, task_uuid, provider, model, request,"
                " number_results, results_received, status, attempts, created_at, updated_at,"
                " finished_at, estimated_cost, variant, error_code, error_message, checks,"
                " inbox_overflow)"
                " SELECT :c, gen_random_uuid(), 'runware',"
                "  CASE WHEN i % 3 = 0 THEN 'ideogram:1@2' ELSE 'ideogram:4@2' END,"
                "  jsonb_build_object('model', 'ideogram:4@2', 'positivePrompt', 'tin ' || i),"
                "  1, CASE WHEN i % 50 = 0 THEN 0 ELSE 1 END,"
                "  CASE WHEN i % 50 = 0 THEN 'failed' ELSE 'completed' END, 1,"
                "  now(), now(), now(), 0.06,"
                "  jsonb_build_object('positivePrompt', 'prompt ' || (i % 10),"
                "                     'style', 'style ' || ((i / 10) % 10)),"
                "  CASE WHEN i % 50 = 0 THEN 'invalidPrompt' END,"
                "  CASE WHEN i % 50 = 0 THEN 'refused' END, 0, 0"
                " FROM generate_series(1, :n) AS i"
            ),
            {"c": campaign_id, "n": JOBS},
        )
        db.execute(
            text(
                "INSERT INTO images (job_id, image_uuid, image_url, seed, nsfw, cost, raw,"
                " created_at)"
                " SELECT id, gen_random_uuid(), 'https://im.example.test/' || id || '.jpg', id,"
                "  false, 0.06, '{}', now() - (id % 3600) * interval '1 second'"
                " FROM jobs WHERE campaign_id = :c AND status = 'completed'"
            ),
            {"c": campaign_id},
        )
        db.execute(text("ANALYZE"))
    yield engine, campaign_id
    engine.dispose()


@pytest.fixture(scope="module")
def ui(large: tuple[Engine, int], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Dashboard]:
    engine, _ = large
    with dashboard(engine, tmp_path_factory.mktemp("large")) as client:
        _, key = new_key(engine)
        client.sign_in(key)
        yield client


def _timed(ui: Dashboard, path: str, **query: object) -> tuple[float, str]:
    ui.client.get(path, query_string=query)  # a first request pays for the templates' build
    start = time.perf_counter()
    response = ui.client.get(path, query_string=query)
    elapsed = time.perf_counter() - start
    assert response.status_code == 200, response.get_data(as_text=True)[:500]
    return elapsed, response.get_data(as_text=True)


def _deep_job(large: tuple[Engine, int]) -> int:
    engine, campaign_id = large
    with engine.connect() as db:
        return int(
            db.execute(
                text("SELECT id FROM jobs WHERE campaign_id = :c ORDER BY id OFFSET 90000 LIMIT 1"),
                {"c": campaign_id},
            ).scalar_one()
        )


@pytest.mark.parametrize(
    "page",
    ["campaigns", "overview", "gallery", "gallery deep", "gallery filtered", "compare",
     "failed", "live"],
)  # fmt: skip
def test_each_page_of_a_100000_job_campaign_is_fast(
    ui: Dashboard, large: tuple[Engine, int], page: str
) -> None:
    _, campaign_id = large
    base = f"/campaigns/{campaign_id}"
    requests: dict[str, tuple[str, dict[str, object]]] = {
        "campaigns": ("/", {}),
        "overview": (base, {}),
        "gallery": (f"{base}/gallery", {}),
        "gallery deep": (f"{base}/gallery", {"after": _deep_job(large)}),
        "gallery filtered": (
            f"{base}/gallery",
            {"v.style": json.dumps("style 7"), "v.positivePrompt": json.dumps("prompt 3")},
        ),
        "compare": (
            f"{base}/compare",
            {"axis": "style", "value": [json.dumps("style 1"), json.dumps("style 2")]},
        ),
        "failed": (f"{base}/failed", {}),
        "live": ("/live", {"campaign": campaign_id}),
    }
    path, query = requests[page]
    elapsed, body = _timed(ui, path, **query)
    print(f"{page}: {elapsed * 1000:.0f} ms")  # noqa: T201 (the figure docs/benchmarks.md keeps)
    assert elapsed < LIMIT_S, f"{page} took {elapsed:.2f} s"
    if page == "gallery filtered":
        assert body.count('<article class="card') == 24
    if page == "live":
        assert json.loads(body)["campaigns"][0]["jobs"] == JOBS
