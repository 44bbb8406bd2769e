"""`submit --budget`, `remixq budget`, `remixq costs` and `remixq watch` as a user meets them (real
subprocesses and the CLI runner, the embedded default)."""

from __future__ import annotations

import io
import json
import threading
import uuid
from pathlib import Path
from typing import IO

from rich.console import Console
from sqlalchemy import select

from remixq import jobs
from remixq.cli.watch import watch_campaign
from remixq.config import Settings
from remixq.db import make_engine, make_sessionmaker, transaction
from remixq.ingest import ingest
from remixq.models import Job
from tests.support.cli import remixq, remixq_process

REQUEST = {
    "model": "ideogram:4@2",
    "positivePrompt": "a poster",
    "width": 1024,
    "height": 1024,
    "inputs": {"referenceImages": ["c64351d5-4c59-42f7-95e1-eace013eddab"]},
}  # one image at the default speed: 0.06 USD by the default price table


def campaign_file(tmp_path: Path, name: str, jobs_: int) -> Path:
    file = tmp_path / f"{name}.jsonl"
    lines = [json.dumps(REQUEST | {"positivePrompt": f"{name} {n}"}) for n in range(jobs_)]
    file.write_text("".join(line + "\n" for line in lines))
    return file


def spec_file(tmp_path: Path, name: str, budget: str) -> Path:
    """A spec (JSON) of one job that carries `budget_usd`."""
    file = tmp_path / f"{name}.json"
    spec = {"budget_usd": budget, "jobs": [REQUEST | {"positivePrompt": f"{name} spec"}]}
    file.write_text(json.dumps(spec))
    return file


def database(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'data' / 'remixq.sqlite'}"


def finish(url: str, *, fail: int = 0, cost: str = "0.05") -> None:
    """Every job of the database accepted and given its image (through the real ingestion),
    but the first `fail`, which fail."""
    engine = make_engine(url)
    sessions = make_sessionmaker(engine)
    with transaction(sessions) as session:
        ids = list(session.scalars(select(Job.id).order_by(Job.id)))
        jobs.record_accepted(session, job_ids=ids)
        jobs.fail(session, job_ids=ids[:fail], code="invalidPrompt", message="refused")
        for job_id in ids[fail:]:
            task = str(session.get_one(Job, job_id).task_uuid)
            item = {
                "taskType": "imageInference",
                "taskUUID": task,
                "imageUUID": str(uuid.uuid4()),
                "imageURL": "http://127.0.0.1/i.jpg",
                "cost": "COST",
            }
            body = json.dumps({"data": [item]}).replace('"COST"', cost)  # an exact number
            ingest(session, body=body.encode(), expected_task_uuid=task)
    engine.dispose()


def test_submit_with_a_budget_refuses_what_does_not_fit_whole(tmp_path: Path) -> None:
    refused = remixq(
        tmp_path, "submit", str(campaign_file(tmp_path, "a", 3)), "--campaign", "spring",
        "--budget", "0.10",
    )  # fmt: skip
    assert refused.returncode == 2
    (line,) = refused.stderr.strip().splitlines()
    assert line.startswith("error: estimated_cost_usd: '0.18' is not allowed; at most the 0.10")
    assert "budget is 0.10 USD, with 0.00 reserved and 0.00 spent" in line
    assert "no campaign" in remixq(tmp_path, "campaigns").stdout  # nothing was stored

    stored = remixq(
        tmp_path, "submit", str(campaign_file(tmp_path, "b", 3)), "--campaign", "spring",
        "--budget", "0.20",
    )  # fmt: skip
    assert stored.returncode == 0, stored.stderr
    more = remixq(
        tmp_path, "submit", str(campaign_file(tmp_path, "c", 1)), "--campaign", "spring"
    )
    assert more.returncode == 2
    assert "at most the 0.02 USD left" in more.stderr and "0.18 reserved" in more.stderr
    lower = remixq(tmp_path, "budget", "spring", "0.12")
    assert lower.returncode == 2
    assert "budget_usd: '0.12' is not allowed; at least the 0.18 USD" in lower.stderr
    raised = remixq(tmp_path, "budget", "spring", "0.30", "--json")
    assert raised.returncode == 0, raised.stderr
    assert json.loads(raised.stdout)["budget_left_usd"] == "0.12"
    added = remixq(
        tmp_path, "submit", str(campaign_file(tmp_path, "c", 1)), "--campaign", "spring"
    )
    assert added.returncode == 0, added.stderr

    (summary,) = json.loads(remixq(tmp_path, "campaigns", "--json").stdout)
    assert {k: summary[k] for k in ("budget_usd", "estimated_usd", "reserved_usd")} == {
        "budget_usd": "0.30",
        "estimated_usd": "0.24",
        "reserved_usd": "0.24",
    }
    assert (summary["spent_usd"], summary["overrun_usd"], summary["budget_left_usd"]) == (
        "0.00", "0.00", "0.06"
    )  # fmt: skip
    table = remixq(tmp_path, "campaigns", env={"COLUMNS": "140"})
    assert "budget / left" in table.stdout and "0.30" in table.stdout


def test_a_specs_budget_never_changes_an_existing_campaigns_budget(tmp_path: Path) -> None:
    first = remixq(
        tmp_path, "submit", str(campaign_file(tmp_path, "a", 1)), "--campaign", "spring",
        "--budget", "0.30",
    )  # fmt: skip
    assert first.returncode == 0, first.stderr

    for budget in ("40.00", "0.20"):  # raised or lowered, the spec's budget is refused whole
        refused = remixq(
            tmp_path, "submit", str(spec_file(tmp_path, f"b{budget}", budget)), "--campaign",
            "spring",
        )  # fmt: skip
        assert refused.returncode == 2
        (line,) = refused.stderr.strip().splitlines()
        assert line.startswith(
            f"error: budget_usd: '{budget}' is not allowed; campaign 'spring''s budget, 0.30 USD"
        )
        assert f"`remixq budget spring {budget}` (or --budget) changes it" in line
    # The same budget is accepted, and an explicit --budget is the campaign's from then on.
    same = remixq(tmp_path, "submit", str(spec_file(tmp_path, "c", "0.3")), "--campaign", "spring")
    assert same.returncode == 0, same.stderr
    explicit = remixq(
        tmp_path, "submit", str(spec_file(tmp_path, "d", "9")), "--campaign", "spring",
        "--budget", "0.50",
    )  # fmt: skip
    assert explicit.returncode == 0, explicit.stderr
    (summary,) = json.loads(remixq(tmp_path, "campaigns", "--json").stdout)
    assert (summary["budget_usd"], sum(summary["counts"].values())) == ("0.50", 3)

    # A campaign without a budget gets none from a spec either; a new one takes the spec's.
    plain = remixq(tmp_path, "submit", str(campaign_file(tmp_path, "e", 1)), "--campaign", "plain")
    assert plain.returncode == 0, plain.stderr
    unbudgeted = remixq(
        tmp_path, "submit", str(spec_file(tmp_path, "f", "5")), "--campaign", "plain"
    )
    assert unbudgeted.returncode == 2 and "campaign 'plain' has no budget" in unbudgeted.stderr
    new = remixq(tmp_path, "submit", str(spec_file(tmp_path, "g", "5")), "--campaign", "new")
    assert new.returncode == 0, new.stderr
    budgets = {c["name"]: c["budget_usd"] for c in json.loads(
        remixq(tmp_path, "campaigns", "--json").stdout
    )}  # fmt: skip
    assert budgets == {"spring": "0.50", "plain": None, "new": "5.00"}


def test_costs_by_campaign_model_and_day(tmp_path: Path) -> None:
    for name, count in (("spring", 3), ("autumn", 2)):
        done = remixq(tmp_path, "submit", str(campaign_file(tmp_path, name, count)))
        assert done.returncode == 0, done.stderr
    finish(database(tmp_path), fail=1, cost="0.0712345")  # 4 images, each above its estimate

    by_campaign = json.loads(remixq(tmp_path, "costs", "--json").stdout)
    assert by_campaign["total"] == {
        "jobs": 5,
        "images": 4,
        "estimated_usd": "0.30",
        "reserved_usd": "0.00",
        "spent_usd": "0.284938",
        "overrun_usd": "0.044938",
        "spent_estimated_usd": "0.00",  # Runware reported every cost
    }
    assert [row["jobs"] for row in by_campaign["rows"]] == [3, 2]
    by_model = json.loads(remixq(tmp_path, "costs", "--by", "model", "--json").stdout)
    assert [row["key"] for row in by_model["rows"]] == ["ideogram:4@2"]
    by_day = json.loads(remixq(tmp_path, "costs", "--by", "day", "--json").stdout)
    (day,) = by_day["rows"]
    assert day["spent_usd"] == "0.284938" and day["jobs"] == 5
    one = remixq(tmp_path, "costs", "--campaign", "#1", "--by", "variant", "--json")
    (plain,) = json.loads(one.stdout)["rows"]
    assert plain["key"] is None and plain["jobs"] == 3
    table = remixq(tmp_path, "costs", env={"COLUMNS": "140"})
    assert "costs by campaign" in table.stdout and "0.284938" in table.stdout
    bad = remixq(tmp_path, "costs", "--campaign", "nope")
    assert bad.returncode == 2 and bad.stderr.startswith("error: CAMPAIGN: 'nope'")


def _submitted(tmp_path: Path, jobs_: int) -> None:
    done = remixq(
        tmp_path, "submit", str(campaign_file(tmp_path, "w", jobs_)), "--campaign", "w",
        "--budget", "1.00",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr


def test_watch_prints_a_line_per_change_and_exits_3_when_a_job_failed(tmp_path: Path) -> None:
    _submitted(tmp_path, 3)
    watching = remixq_process(tmp_path, "watch", "w", "--interval", "0.05")
    try:
        assert watching.stdout is not None
        first = _line_within(watching.stdout, seconds=30)
        # The campaign is finished by another thread once the watch has shown it running.
        finisher = threading.Thread(
            target=finish, args=(database(tmp_path),), kwargs={"fail": 1}
        )
        finisher.start()
        finisher.join(timeout=30)
        assert watching.wait(timeout=30) == 3
        rest = watching.stdout.read().strip().splitlines()
    finally:
        if watching.poll() is None:
            watching.kill()
    lines = [first, *rest]
    assert "w (#1): 0/3 final (3 queued)" in first and "ETA: waiting" in first
    assert "spent 0.00 USD of 1.00 (reserved 0.18)" in first
    assert "3/3 final (2 completed, 1 failed)" in lines[-1]
    assert "spent 0.10 USD of 1.00 (reserved 0.00)" in lines[-1] and lines[-1].endswith("done")
    assert len(lines) == len({line[9:] for line in lines})  # one line per change


def _line_within(stream: IO[str], *, seconds: float) -> str:
    """The next line of `stream`, or a failure after `seconds`."""
    found: list[str] = []
    reader = threading.Thread(target=lambda: found.append(stream.readline()), daemon=True)
    reader.start()
    reader.join(timeout=seconds)
    assert found and found[0], f"no line within {seconds} s"
    return found[0].strip()


def test_watch_on_a_terminal_draws_in_place_and_exits_0(tmp_path: Path) -> None:
    _submitted(tmp_path, 2)
    settings = Settings(data_dir=tmp_path / "data")
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=100)
    finisher = threading.Thread(target=finish, args=(database(tmp_path),))
    finisher.start()
    try:
        code = watch_campaign(settings, "w", interval=0.05, console=console)
    finally:
        finisher.join(timeout=30)
    assert code == 0
    text = out.getvalue()
    assert "campaign w (id 1)" in text and "completed" in text
    assert "2 of 2 jobs final; 2 images; done" in text
    assert "spent 0.10 USD, reserved 0.00 of a budget of 1.00 (0.90 left)" in text
