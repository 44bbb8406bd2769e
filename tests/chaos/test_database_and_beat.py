"""Chaos: what the relay and the reconciler run on goes away mid-campaign. PostgreSQL is cut off
from the worker and beat for 10 s; beat is killed with SIGKILL while there is relay and
reconciler work to do. Both run with the default relay, reconciler and claim settings, so that
their time to recover is what a user gets."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import redis

from remixq.examples import campaign_lines
from tests.support.chaos import CampaignRun, Recorder, chaos_stack
from tests.support.tcp_proxy import pg_address, proxied, tcp_proxy

pytestmark = pytest.mark.chaos

JOBS = 200
DB_OUTAGE_S = 10
BEAT_DOWN_S = 5


def test_database_outage_under_worker_and_beat(tmp_path: Path, reliability: Recorder) -> None:
    """The worker's and beat's connections to PostgreSQL are cut for 10 s while the campaign is
    being submitted (open connections reset, new ones refused; the receiver keeps its own).
    A claim or a record that meets the outage fails its transaction and changes nothing: a
    task the provider accepted meanwhile is completed by its webhooks; a job whose claim was
    lost stays queued and a job left claimed stays submitting, until the relay publishes it
    again (the default REMIXQ_RELAY_QUEUED_STALE and REMIXQ_CLAIM_LEASE). Every job ends
    completed, each taskUUID accepted once."""
    knobs = {"submit_latency_ms": 800}
    env = {"REMIXQ_SUBMIT_BATCH": "2"}  # a hundred messages: the outage lands mid-submission
    with (
        chaos_stack(
            tmp_path,
            knobs=knobs,
            env=env,
            processes=("simulator", "receiver"),
            beat=False,
            timing="defaults",
        ) as (stack, _),
        tcp_proxy(pg_address(stack.env["REMIXQ_DATABASE_URL"])) as proxy,
    ):
        through_proxy = proxied(stack.env["REMIXQ_DATABASE_URL"], proxy.port)
        stack.start("worker", stack.commands["worker"], REMIXQ_DATABASE_URL=through_proxy)
        stack.start("beat", stack.commands["beat"], REMIXQ_DATABASE_URL=through_proxy)
        run = CampaignRun.submit(stack, campaign_lines(JOBS), "db-outage-worker")
        run.wait_accepted(0.2)
        proxy.cut()
        at_cut = run.progress()
        time.sleep(DB_OUTAGE_S)  # the outage itself, not a wait for a condition
        proxy.restore()
        run.fault_over()
        run.notes |= {
            "database_down_s": DB_OUTAGE_S,
            "accepted_at_cut": run.accepted(),
            "unsubmitted_at_cut": at_cut["pending"] + at_cut["queued"] + at_cut["submitting"],
        }
        run.wait_final(supervised=("worker", "beat"))
        figures = run.verify()
    assert figures["unsubmitted_at_cut"] > 0  # the outage met work still to submit
    reliability("db-outage-worker", "PostgreSQL cut off from the worker and beat for 10 s", figures)


def test_beat_killed_and_restarted(tmp_path: Path, reliability: Recorder) -> None:
    """beat is killed with SIGKILL mid-campaign (its schedule file possibly half-written) and
    started again 5 s later. Meanwhile the work only beat's rounds do piles up: 20 % of the
    webhooks are lost (the reconciler must poll for them) and the broker loses every message
    it holds (the relay must publish those jobs again). The restarted beat schedules both,
    with the default settings, and the campaign ends exact, each taskUUID accepted once."""
    # The latency applies to getResponse too, and the reconciler polls one job at a time.
    knobs = {"webhook_drop_rate": 0.2, "submit_latency_ms": 300}
    # Four calls in flight (8 jobs): the campaign takes seconds to submit, so that jobs are still
    # queued on the broker when it loses them (at 32 in flight a starved CI host once saw every
    # job claimed before the test could look).
    env = {"REMIXQ_SUBMIT_BATCH": "2", "REMIXQ_MAX_IN_FLIGHT": "4"}
    with chaos_stack(tmp_path, knobs=knobs, env=env, timing="defaults") as (stack, broker):
        run = CampaignRun.submit(stack, campaign_lines(JOBS), "beat-killed")
        run.wait_accepted(0.2)
        stack.kill("beat")
        # Messages still on the broker vanish (as with a broker restarted without persistence),
        # while no beat runs the relay that would notice.
        run.notes["jobs_queued_when_lost"] = run.progress()["queued"]
        redis.Redis.from_url(broker.url(0)).flushdb()
        time.sleep(BEAT_DOWN_S)  # beat stays down, not a wait for a condition
        stack.start("beat")
        run.fault_over()
        run.notes["beat_down_s"] = BEAT_DOWN_S
        run.wait_final(supervised=("worker",))
        figures = run.verify()
    assert figures["jobs_queued_when_lost"] > 0  # the relay had messages to publish again
    assert figures["recovered_by_reconciler"] > 0  # the reconciler had webhooks to recover
    reliability("beat-killed", "beat killed with SIGKILL and restarted", figures)
