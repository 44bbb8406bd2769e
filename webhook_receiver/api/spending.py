"""The REST API's routes on what campaigns cost (a blueprint nested in the API's, so that its
key check, logs and error documents apply): the estimate of a body before anything is stored,
the spend report, a campaign's budget changed, and jobs added to a campaign under its budget.
Each answers what the matching command prints (`submit --dry-run --json`, `costs --json`,
`budget`), from the same domain functions."""

from __future__ import annotations

import logging
from decimal import Decimal
from typing import Any

from flask import Blueprint, Response, current_app, request
from pydantic import ValidationError
from spectree import Response as Responses

from remixq import budgets
from remixq.control import set_budget, set_failover
from remixq.cost_reports import costs
from remixq.db import transaction
from remixq.errors import FieldError, InvalidInput
from remixq.estimates import estimate_document, estimate_jobs
from remixq.failover import check_failover
from remixq.idempotency import IdempotencyKeyReused, request_digest
from remixq.submission import CampaignCancelled, add_and_enqueue, hand_over
from webhook_receiver.api import bodies, schemas, views
from webhook_receiver.api.auth import caller, changes_nothing
from webhook_receiver.api.errors import ApiError
from webhook_receiver.api.spec import problems, spec
from webhook_receiver.state import state

log = logging.getLogger("remixq.api")
bp = Blueprint("spending", __name__)

ERROR = schemas.ErrorBody
READ_ERRORS = {"HTTP_401": ERROR, "HTTP_404": ERROR, "HTTP_422": ERROR}
WRITE_ERRORS = {
    **READ_ERRORS,
    "HTTP_403": ERROR,
    "HTTP_409": ERROR,
    "HTTP_413": ERROR,
    "HTTP_415": ERROR,
}


@bp.post("/estimates")
@changes_nothing
@spec.validate(
    json=schemas.EstimateRequest,
    resp=Responses(
        HTTP_200=schemas.Estimate,
        HTTP_401=ERROR,
        HTTP_413=ERROR,
        HTTP_415=ERROR,
        HTTP_422=ERROR,
    ),
    tags=["spend"],
    skip_validation=True,  # validated below, so that one 422 lists every error of the body
)
def estimate() -> Response:
    """What a campaign would cost, before anything is stored: the body of a create (requests or
    a spec; the name may be left out) validated and expanded the same way, then its jobs,
    images and estimated USD by the price table (REMIXQ_PRICE_TABLE), in all, per model and
    per variant: the figures of `remixq submit FILE --dry-run --json`. Stores nothing, so a
    read-only key may ask too."""
    body = bodies.json_body()
    new_jobs, _ = bodies.read_jobs(body, schemas.EstimateRequest)
    figures = estimate_jobs(new_jobs, state(current_app).prices)
    return bodies.document_response(estimate_document(figures))


@bp.get("/costs")
@spec.validate(
    query=schemas.CostQuery,
    resp=Responses(HTTP_200=schemas.CostReport, **READ_ERRORS),
    tags=["spend"],
)
def cost_report() -> Response:
    """Estimated, reserved, spent and overrun USD by campaign, model, UTC day or variant, of
    one campaign (`campaign`, its id) or of all: what `remixq costs --json` prints. SQL
    aggregates: one row per group is all that is held."""
    query = request.context.query  # type: ignore[attr-defined]  # spectree's validated query
    with transaction(bodies.sessions()) as session:
        if query.campaign is not None:
            views.require_campaign(session, query.campaign)
        report = costs(session, by=query.by, campaign_id=query.campaign)
    return bodies.document_response(report.to_json(query.campaign))


@bp.patch("/campaigns/<int:campaign_id>")
@spec.validate(
    json=schemas.BudgetChange,
    resp=Responses(HTTP_200=schemas.Campaign, **WRITE_ERRORS),
    tags=["campaigns"],
    skip_validation=True,
)
def change_budget(campaign_id: int) -> Response:
    """Change the campaign's budget (`{"budget_usd": "30.00"}`; null: no budget), as `remixq
    budget` does: under the campaign's budget lock, never below what it has reserved and spent
    already (409 `budget_exceeded`, naming both). A campaign its budget paused (an overrun)
    goes on once the new budget covers what it has committed: its waiting jobs are handed to
    the broker. `{"failover": "ideogram"}` (null or "off": off) changes its failover (README
    "Failover"); a body may hold both. Answers the campaign."""
    body = bodies.json_body()
    amount = _budget(body)
    sessions = bodies.sessions()
    if isinstance(body, dict) and "failover" in body:
        chosen = check_failover(body["failover"])
        with transaction(sessions) as session:
            views.require_campaign(session, campaign_id)
            set_failover(session, campaign_id, chosen)
        log.info(
            "api failover changed",
            extra={"campaign_id": campaign_id, "failover": chosen, "key_name": caller().name},
        )
    if not (isinstance(body, dict) and "budget_usd" in body):
        with transaction(sessions) as session:
            return bodies.json_response(views.campaign(session, campaign_id))
    with transaction(sessions) as session:
        changed = set_budget(session, campaign_id, amount)
    broker_error = hand_over(state(current_app).enqueue, sessions, changed.job_ids)
    log.info(
        "api budget changed",
        extra={
            "campaign_id": campaign_id,
            "budget_usd": None if amount is None else budgets.usd(amount),
            "resumed": changed.resumed,
            "broker_error": broker_error,
            "key_name": caller().name,
        },
    )
    with transaction(sessions) as session:
        found = views.campaign(session, campaign_id)
    return bodies.json_response(found)


def _budget(body: Any) -> Decimal | None:
    """The new budget of a PATCH body (None: no budget); InvalidInput naming the field."""
    try:
        schemas.BudgetChange.model_validate(body)
    except ValidationError as exc:
        raise InvalidInput(problems(exc)) from None
    if "budget_usd" not in body and "failover" not in body:
        raise InvalidInput(
            [FieldError("budget_usd", None, 'a budget_usd or a failover ("ideogram" or "off")')]
        )
    value = body.get("budget_usd")
    return None if value is None else budgets.check_budget(value)


@bp.post("/campaigns/<int:campaign_id>/jobs")
@spec.validate(
    json=schemas.JobsAdd,
    headers=schemas.CreateHeaders,
    resp=Responses(HTTP_201=schemas.JobsAdded, HTTP_200=schemas.JobsAdded, **WRITE_ERRORS),
    tags=["jobs"],
    skip_validation=True,
)
def add_jobs(campaign_id: int) -> tuple[Response, int]:
    """Add jobs to the campaign: Runware requests or a spec of them, as a create takes them
    (without a name), validated whole first. Their estimates are reserved under the campaign's
    budget lock, as every producer's are: what does not fit is refused whole (409
    `budget_exceeded`, nothing stored); a `budget_usd` must be the campaign's budget already
    (409 `budget_conflict`, nothing stored: only PATCH changes a budget).
    A cancelled campaign takes no more jobs (409 `campaign_cancelled`). An `Idempotency-Key`
    makes a retry answer 200 with what the first request did, never adding twice."""
    body = bodies.json_body()
    new_jobs, budget = bodies.read_jobs(body, schemas.JobsAdd)
    key = bodies.idempotency_key()
    receiver = state(current_app)
    try:
        added = add_and_enqueue(
            bodies.sessions(),
            campaign_id=campaign_id,
            new_jobs=new_jobs,
            enqueue=receiver.enqueue,
            api_key_id=caller().id,
            idempotency_key=key,
            # The key stands for these jobs in this campaign: a create's body never matches.
            request_sha256=request_digest({"campaign_id": campaign_id, "add_jobs": body}),
            budget=budgets.KEEP if budget is None else budgets.Carried(budget),
            prices=receiver.prices,
        )
    except CampaignCancelled as exc:
        raise ApiError(409, "campaign_cancelled", str(exc), campaign_id=exc.campaign_id) from None
    except IdempotencyKeyReused as exc:
        raise ApiError(
            409, "idempotency_key_reused", str(exc), campaign_id=exc.campaign_id
        ) from None
    log.info(
        "api jobs added",
        extra={
            "campaign_id": campaign_id,
            "jobs": len(added.job_ids),
            "replayed": added.replayed,
            "broker_error": added.broker_error,
            "key_name": caller().name,
        },
    )
    with transaction(bodies.sessions()) as session:
        found = views.campaign(session, campaign_id)
    answer = schemas.JobsAdded(
        campaign=found,
        # A replay stored nothing: the same body expands to the jobs the first request added.
        jobs=len(new_jobs) if added.replayed else len(added.job_ids),
        enqueued=added.broker_error is None,
        broker_error=added.broker_error,
    )
    response = bodies.json_response(answer)
    if added.replayed:
        response.headers["Idempotent-Replayed"] = "true"
    return response, 200 if added.replayed else 201
