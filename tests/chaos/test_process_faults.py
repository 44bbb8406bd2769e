"""Chaos: our own processes and the broker fail mid-campaign: the receiver is down for 10 s,
a worker is killed with SIGKILL while it submits (on PostgreSQL + Redis and on the embedded
default), the broker (Redis, emptied, or RabbitMQ) restarts with no supervisor. Each runs with
the default relay, reconciler and claim settings, so that its time to recover is what a user
gets."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from remixq.examples import campaign_lines
from remixq.states import FINAL
from tests.support.chaos import BACKENDS, STREAM_KNOBS, CampaignRun, Recorder, chaos_stack
from tests.support.stack import BROKERS

pytestmark = pytest.mark.chaos

JOBS = 200
OUTAGE_S = 10
BROKER_DOWN_S = 3


def test_receiver_down_during_a_burst(tmp_path: Path, reliability: Recorder) -> None:
    """The receiver is killed (SIGKILL: requests in flight get no answer) while webhooks pour
    in (results spread over 0.5-5.5 s), and stays down for 10 s. The provider keeps retrying
    its webhooks (250 ms doubling to 8 s), so once the receiver is back they deliver every
    result: with the default settings the reconciler waits longer than that and has nothing
    to recover; a result that comes both ways would be stored once."""
    with chaos_stack(tmp_path, knobs=STREAM_KNOBS, timing="defaults") as (stack, _):
        run = CampaignRun.submit(stack, campaign_lines(JOBS), "receiver-down")
        run.wait_webhooks(60)
        stack.kill("receiver")
        run.fault_injected()
        down_at = time.monotonic()
        time.sleep(OUTAGE_S)  # the outage itself, not a wait for a condition
        stack.start("receiver")
        stack.wait_receiver()
        run.fault_over()
        run.notes["receiver_down_s"] = round(time.monotonic() - down_at, 1)
        run.wait_final()
        figures = run.verify()
    assert figures["webhooks_pending_at_fault"] > 0 and figures["webhook_attempts_failed"] > 0
    reliability("receiver-down", "receiver killed and down for 10 s during a burst", figures)


@pytest.mark.parametrize("backend", BACKENDS)
def test_worker_killed_while_submitting(
    tmp_path: Path, reliability: Recorder, backend: str
) -> None:
    """A worker is killed with SIGKILL while its submissions are in flight (each POST takes
    0.8 s; results take ~6 s). A new worker starts at once and takes the messages still on the
    broker; the killed worker's claims expire after the default REMIXQ_CLAIM_LEASE and the
    relay re-queues them, and its lost messages after REMIXQ_RELAY_QUEUED_STALE. A claim whose
    task the provider had accepted is completed by its webhooks, or resubmitted with the same
    taskUUID and answered conflictTaskUUID: never generated and charged again. On the embedded
    default the killed worker took its embedded beat with it, and the new one brings it back."""
    knobs = {"submit_latency_ms": 800, "latency_ms": 6000, "latency_jitter_ms": 500}
    env = {"REMIXQ_SUBMIT_BATCH": "2"}  # a hundred messages: the kill lands mid-campaign
    with chaos_stack(tmp_path, backend=backend, knobs=knobs, env=env, timing="defaults") as (
        stack,
        _,
    ):
        run = CampaignRun.submit(stack, campaign_lines(JOBS), "worker-killed")
        run.wait_accepted(0.3)
        stack.kill("worker")
        run.notes["claims_orphaned"] = run.progress()["submitting"]
        stack.start("worker")
        run.fault_over()
        run.wait_final()
        figures = run.verify()
    assert figures["claims_orphaned"] > 0
    # Whether a re-queued task is resubmitted before its results arrive (a conflict) or after
    # (no resubmission at all) is a race with the relay's timing; both end accepted once.
    reliability("worker-sigkill", "a worker killed with SIGKILL while submitting", figures)


@pytest.mark.parametrize("broker", BROKERS)
def test_broker_restarted_mid_campaign(tmp_path: Path, reliability: Recorder, broker: str) -> None:
    """The broker goes away for 3 s while the campaign is being submitted, with no supervisor
    to restart anything: the same worker and beat processes reconnect by themselves and finish
    the campaign, every job exactly once. Redis (the broker and the global limit) comes back
    empty (no persistence): every queued and unacknowledged message is gone, and calls to the
    limit fail meanwhile; the relay re-publishes the jobs still queued after the default
    REMIXQ_RELAY_QUEUED_STALE. RabbitMQ's application is stopped and started (`rabbitmqctl
    stop_app` / `start_app`): every connection is cut, its durable queues keep their messages
    and give back the unacknowledged ones. Celery 5.7's worker used to stop on such a loss with
    "Unrecoverable error" about one Redis restart in two (worker.broker.RedisChannel says
    why)."""
    # Submissions spread over 5 s at least (100 requests at 20/s), results over 0.5-5.5 s: the
    # outage strikes while much of the campaign is queued or on its way, however fast the host.
    knobs = {"submit_latency_ms": 300, **STREAM_KNOBS}
    env = {"REMIXQ_SUBMIT_BATCH": "2", "REMIXQ_RATE_LIMIT": "20"}
    with chaos_stack(tmp_path, knobs=knobs, env=env, timing="defaults", broker=broker) as (
        stack,
        server,
    ):
        pids = {name: stack.processes[name].pid for name in ("worker", "beat")}
        run = CampaignRun.submit(stack, campaign_lines(JOBS), f"{broker}-restart")
        run.wait_accepted(0.3)
        progress = run.progress()
        open_before = sum(n for status, n in progress.items() if status not in FINAL)
        if broker == "rabbitmq":
            server.stop_app()
            time.sleep(BROKER_DOWN_S)  # the outage itself
            server.start_app()
        else:
            server.stop()
            time.sleep(BROKER_DOWN_S)
            server.start()
        run.fault_over()
        run.notes["jobs_queued_at_restart"] = progress["queued"]
        run.notes["jobs_open_at_restart"] = open_before
        run.wait_final()  # no supervisor: any process that exits fails the test
        figures = run.verify()
        assert {name: stack.processes[name].pid for name in pids} == pids
        worker_log = stack.processes["worker"].log_path.read_text(errors="replace")
    assert "Unrecoverable error" not in worker_log
    assert "Connection to broker lost" in worker_log  # the outage reached the worker
    assert figures["jobs_open_at_restart"] > 0  # the outage struck mid-campaign
    reliability(
        f"{broker}-restart",
        f"{'Redis restarted (and emptied)' if broker == 'redis' else 'RabbitMQ restarted'}"
        " mid-campaign, no supervisor",
        figures,
    )
