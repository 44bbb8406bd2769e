"""The failover decision (remixq.failover) on both backends: which failed Runware jobs fail
over, what getResponse's answer allows, and what a failover writes (a linked native job, the
failed job's record) and counts (one provider's cost per job in the budget view)."""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from remixq import budgets, failover
from remixq.errors import InvalidInput
from remixq.models import Campaign, Image, Job
from remixq.pricing import PriceTable
from remixq.providers.runware.client import RunwareClient
from remixq.providers.runware.errors import ProviderError
from remixq.providers.runware.provider import PROVIDER as RUNWARE
from remixq.providers.runware.results import PollResult
from simulator.config import SimulatorConfig
from tests.support.simulator import LiveSimulator

IMAGE_URL = "https://assets.example.test/in.png"
PRICES = PriceTable.default()


def runware_task(**changes: Any) -> dict[str, Any]:
    line = {
        "model": "ideogram:4@2",
        "positivePrompt": "a tea tin",
        "width": 1024,
        "height": 1024,
        "inputs": {"referenceImages": [IMAGE_URL]},
        "numberResults": 2,
        **changes,
    }
    return RUNWARE.build_task(RUNWARE.parse_request(line), task_uuid=str(uuid.uuid4()))


def failed_job(
    session: Session,
    *,
    code: str = "timeoutProvider",
    message: str = "the provider timed out",
    campaign_failover: str | None = "ideogram",
    task: dict[str, Any] | None = None,
    budget: Decimal | None = None,
) -> Job:
    campaign = Campaign(name=f"c-{uuid.uuid4()}", failover=campaign_failover, budget_usd=budget)
    session.add(campaign)
    session.flush()
    request = task or runware_task()
    job = Job(
        campaign_id=campaign.id,
        task_uuid=request["taskUUID"],
        model="ideogram:4@2",
        request=request,
        number_results=2,
        status="failed",
        error_code=code,
        error_message=message,
        estimated_cost=Decimal("0.12"),
    )
    session.add(job)
    session.flush()
    return job


def nothing(job: Job) -> PollResult:
    return PollResult(task_uuid=str(job.task_uuid))


def candidates(session: Session) -> dict[int, failover.Candidate]:
    return {c.job_id: c for c in failover.take_candidates(session)}


# --- which failures ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "code",
    ["timeoutProvider", "noAvailableServer", "serviceUnavailable", "internalServerError"],
)
def test_a_provider_side_task_error_fails_over(code: str) -> None:
    assert failover.eligible(code, "whatever") is not None


@pytest.mark.parametrize(
    "cause", ["ServerError", "RateLimited", "RequestTimeout", "ConnectionFailed"]
)
def test_retries_exhausted_on_the_provider_side_fails_over(cause: str) -> None:
    message = f"gave up after 4 attempts: HTTP 503 [{cause}]"
    assert cause in (failover.eligible("retriesExhausted", message) or "")


@pytest.mark.parametrize(
    ("code", "message"),
    [
        ("retriesExhausted", "gave up after 4 attempts: no turn at the rate [rateLimitWait]"),
        ("retriesExhausted", "gave up after 4 attempts: HTTP 503"),  # no cause recorded
        ("invalidPositivePrompt", "too long"),
        ("expired", "no final result within 86400 s"),
        (None, None),
    ],
)
def test_other_failures_do_not_fail_over(code: str | None, message: str | None) -> None:
    assert failover.eligible(code, message) is None


def test_getresponse_with_a_result_or_work_in_progress_forbids_failover() -> None:
    task = str(uuid.uuid4())
    assert failover.decide(PollResult(task, results=[{"imageUUID": "x"}])) == "has_result"
    assert failover.decide(PollResult(task, processing=1)) == "busy"
    error = ProviderError("timeoutProvider", "timed out", task_uuid=task)
    assert failover.decide(PollResult(task, errors=[error])) == "failover"
    assert failover.decide(PollResult(task)) == "failover"


@pytest.mark.parametrize("value", ["runware", "IDEOGRAM", 1, True])
def test_the_campaign_option_names_the_field_and_the_choices(value: object) -> None:
    with pytest.raises(InvalidInput) as caught:
        failover.check_failover(value, "--failover")
    (error,) = caught.value.errors
    assert error.field == "--failover" and "ideogram, off" in error.allowed


def test_the_campaign_option_is_off_by_default() -> None:
    assert failover.check_failover(None) is None
    assert failover.check_failover("off") is None
    assert failover.check_failover("ideogram") == "ideogram"


# --- on the database --------------------------------------------------------------------------


def test_a_confirmed_failure_fails_over_to_a_linked_native_job(session: Session) -> None:
    job = failed_job(session)
    found = candidates(session)
    assert job.id in found
    done = failover.apply(session, found[job.id], nothing(job), prices=PRICES)
    assert done is not None and done.state == "failed_over" and done.new_job_id is not None

    new = session.get_one(Job, done.new_job_id)
    assert (new.provider, new.model, new.status) == ("ideogram", "ideogram-v3-remix", "pending")
    assert new.retry_of_id == job.id and new.task_uuid != job.task_uuid
    assert new.request == {
        "image": IMAGE_URL,
        "prompt": "a tea tin",
        "resolution": "1024x1024",
        "num_images": 2,
    }
    assert new.number_results == 2 and new.estimated_cost == Decimal("0.12")
    session.refresh(job)
    # The failed job keeps its Runware request, status and error; it says what happened.
    assert job.status == "failed" and job.request["model"] == "ideogram:4@2"
    assert job.failover_state == "failed_over"
    assert f"as job {new.id}" in (job.failover_reason or "")
    assert "timeoutProvider" in (job.failover_reason or "")
    # Never twice: the job is no longer a candidate, and a stale candidate changes nothing.
    assert job.id not in candidates(session)
    assert failover.apply(session, found[job.id], nothing(job), prices=PRICES) is None
    assert session.scalars(select(Job.id).where(Job.retry_of_id == job.id)).all() == [new.id]


@pytest.mark.parametrize(
    ("poll_kind", "reason"), [("results", "result(s)"), ("processing", "in progress")]
)
def test_runware_having_it_means_no_failover(session: Session, poll_kind: str, reason: str) -> None:
    job = failed_job(session)
    task = str(job.task_uuid)
    poll = (
        PollResult(task, results=[{"taskUUID": task, "imageUUID": str(uuid.uuid4())}])
        if poll_kind == "results"
        else PollResult(task, processing=2)
    )
    done = failover.apply(session, candidates(session)[job.id], poll, prices=PRICES)
    assert done is not None and done.state == "runware_has_it" and done.new_job_id is None
    assert reason in done.reason
    assert session.scalars(select(Job.id).where(Job.retry_of_id == job.id)).all() == []
    assert job.id not in candidates(session)


def test_jobs_outside_failover_are_not_candidates(session: Session) -> None:
    off = failed_job(session, campaign_failover=None)
    other = failed_job(session, code="invalidPositivePrompt")
    limiter = failed_job(
        session, code="retriesExhausted", message="gave up after 4 attempts: x [rateLimitWait]"
    )
    exhausted = failed_job(
        session, code="retriesExhausted", message="gave up after 4 attempts: HTTP 502 [ServerError]"
    )
    found = candidates(session)
    assert off.id not in found and other.id not in found and limiter.id not in found
    assert exhausted.id in found
    session.refresh(limiter)
    assert limiter.failover_state == "refused"
    assert "not on the provider's side" in (limiter.failover_reason or "")


def test_a_field_without_equivalent_stays_failed_and_says_so(session: Session) -> None:
    job = failed_job(session, task=runware_task(width=1000, height=1000))
    done = failover.apply(session, candidates(session)[job.id], nothing(job), prices=PRICES)
    assert done is not None and done.state == "refused"
    session.refresh(job)
    assert job.status == "failed" and job.failover_state == "refused"
    assert "width x height='1000x1000'" in (job.failover_reason or "")
    assert "ResolutionV3" in (job.failover_reason or "")


def test_a_budget_that_cannot_hold_the_rerun_refuses_it(session: Session) -> None:
    job = failed_job(session, budget=Decimal("0.05"))
    done = failover.apply(session, candidates(session)[job.id], nothing(job), prices=PRICES)
    assert done is not None and done.state == "refused"
    assert "budget" in done.reason


def test_a_late_runware_result_is_recorded_not_charged_twice(session: Session) -> None:
    job = failed_job(session)
    done = failover.apply(session, candidates(session)[job.id], nothing(job), prices=PRICES)
    assert done is not None and done.new_job_id is not None
    for owner, cost in ((done.new_job_id, "0.06"), (job.id, "0.08")):  # Ideogram's, Runware's
        for _ in range(2):
            session.add(
                Image(job_id=owner, image_uuid=str(uuid.uuid4()), cost=Decimal(cost), raw={})
            )
    session.flush()
    spend = budgets.campaign_spend(session, [job.campaign_id])[job.campaign_id]
    assert spend.images == 4  # the late images are recorded...
    assert spend.spent == Decimal("0.12")  # ...and only the native job's cost is counted
    assert spend.overrun == 0


def test_getresponse_for_a_task_runware_never_took_allows_failover() -> None:
    """A submission that never got through (retriesExhausted): the simulator answers
    getResponse with `taskFailedOrNotFound` tied to the task, read as a final error, not a
    result: the job may fail over."""
    served = LiveSimulator(SimulatorConfig(api_key="rw-test-key")).start()
    try:
        client = RunwareClient(f"{served.url}/v1", "rw-test-key")
        poll = client.get_response(str(uuid.uuid4()))
    finally:
        served.stop()
    assert [error.code for error in poll.errors] == ["taskFailedOrNotFound"]
    assert failover.decide(poll) == "failover"
