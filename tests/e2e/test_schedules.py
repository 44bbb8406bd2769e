"""Exactly once with two beats: an every-minute schedule on PostgreSQL + Redis, fired by two real
`remixq beat` processes (ticking every second, so their rounds overlap on the worker's
threads) through a real worker, receiver and simulator.

The schedule is added, then put three minutes in the past (its next occurrence then, as if no
beat had run since): the first rounds catch up the missed occurrences (`--catch-up all`), and
the next minute's occurrence fires on time. Each occurrence makes exactly one campaign, whose
jobs reach the provider once and complete.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from remixq.cli.processes import wait_until
from remixq.models import Campaign, Job, Schedule, ScheduleOccurrence
from remixq.states import FINAL
from tests.support.stack import running_stack
from worker.names import SCHEDULES_TASK

pytestmark = pytest.mark.e2e

SPEC = """\
defaults:
  model: "ideogram:4@2"
  width: 1024
  height: 1024
  inputs: {referenceImages: ["https://assets.example.test/in.jpg"]}
matrix:
  positivePrompt: ["a tea tin, autumn", "a tea tin, winter"]
"""
MISSED = 3


def test_two_beats_fire_each_occurrence_of_an_every_minute_schedule_once(tmp_path: Path) -> None:
    env = {"REMIXQ_SCHEDULE_INTERVAL": "1", "REMIXQ_RELAY_INTERVAL": "2"}
    with running_stack(tmp_path, backend="postgresql", env=env, database="e2e_sched") as stack:
        spec = tmp_path / "tins.yaml"
        spec.write_text(SPEC)
        added = json.loads(
            stack.run_cli(
                "schedule", "add", "minutely", "--cron", "* * * * *", "--file", str(spec),
                "--catch-up", "all", "--json",
            ).stdout
        )  # fmt: skip
        assert added["fired"] == 0
        now = datetime.now(UTC).replace(second=0, microsecond=0)
        missed_from = now - timedelta(minutes=MISSED)
        with Session(stack.engine) as session, session.begin():
            session.execute(
                update(Schedule)
                .where(Schedule.name == "minutely")
                .values(next_due_at=missed_from, created_at=missed_from - timedelta(seconds=1))
            )
        started = datetime.now(UTC)
        beats = [
            stack.start("beat", ["beat", "--loglevel", "INFO"]),
            stack.start(
                "beat2",
                ["beat", "--loglevel", "INFO", "--schedule", str(tmp_path / "beat2-schedule")],
            ),
        ]
        # The first minute after the beats started fires on time (at most a minute away).
        live = started.replace(second=0, microsecond=0) + timedelta(minutes=1)

        def fired_through_live() -> bool:
            stack.check_alive()
            with Session(stack.engine) as session:
                return bool(
                    session.scalar(
                        select(ScheduleOccurrence.id).where(
                            ScheduleOccurrence.occurrence_at >= live,
                            ScheduleOccurrence.campaign_id.is_not(None),
                        )
                    )
                )

        wait_until(fired_through_live, timeout=150, interval=0.5, what="an on-time occurrence")
        with Session(stack.engine) as session:
            rows = session.scalars(
                select(ScheduleOccurrence).order_by(ScheduleOccurrence.occurrence_at)
            ).all()
            ids = [row.campaign_id for row in rows]
            made = session.scalars(
                select(Campaign).where(Campaign.id.in_(ids)).order_by(Campaign.id)
            ).all()
            # No campaign without its occurrence (one statement: a consistent snapshot).
            linked = select(ScheduleOccurrence.campaign_id).where(
                ScheduleOccurrence.campaign_id.is_not(None)
            )
            assert (
                session.scalars(select(Campaign.id).where(Campaign.id.not_in(linked))).all() == []
            )
        # Every minute from the missed ones on, once, each with its own campaign.
        times = [row.occurrence_at for row in rows]
        assert times[0] == missed_from
        assert times == [missed_from + timedelta(minutes=n) for n in range(len(times))]
        assert len(times) >= MISSED + 1
        assert all(row.status == "fired" and row.campaign_id for row in rows)
        assert sorted(ids) == [c.id for c in made]
        assert len({c.name for c in made}) == len(made) == len(rows)
        assert all(c.name.startswith("minutely@") for c in made)
        assert rows[0].reason is not None and "catch-up all" in rows[0].reason
        assert rows[-1].reason == "due"
        for beat in beats:  # both beats really ticked
            assert SCHEDULES_TASK in beat.log_path.read_text(errors="replace")

        def all_final() -> bool:
            stack.check_alive()
            with Session(stack.engine) as session:
                statuses = session.scalars(
                    select(Job.status).where(Job.campaign_id.in_([c.id for c in made]))
                ).all()
            return len(statuses) == 2 * len(made) and all(s in FINAL for s in statuses)

        wait_until(all_final, timeout=90, interval=0.5, what="every occurrence's jobs final")
        with Session(stack.engine) as session:
            jobs = session.scalars(
                select(Job).where(Job.campaign_id.in_([c.id for c in made]))
            ).all()
        assert {job.status for job in jobs} == {"completed"}
        tasks = stack.sim_stats()["tasks"]
        assert len({str(job.task_uuid) for job in jobs}) == len(jobs)
        for job in jobs:  # each job reached the provider once
            assert tasks[str(job.task_uuid)]["accepted"] == 1
        listed = json.loads(stack.run_cli("schedule", "list", "--json").stdout)
        assert listed[0]["fired"] >= len(made) and listed[0]["skipped"] == 0
