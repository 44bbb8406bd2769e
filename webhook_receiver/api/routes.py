"""The REST API's routes under /api/v1: each parses its input, calls one domain function in a
transaction of its own, and answers with a typed body (webhook_receiver.api.schemas)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from typing import Any
from uuid import UUID

from flask import Blueprint, Response, current_app, request, stream_with_context, url_for
from spectree import Response as Responses
from sqlalchemy import select
from sqlalchemy.orm import Session
from werkzeug.wrappers import Response as WerkzeugResponse

from remixq.assets.thumbnails import thumbnail
from remixq.control import cancel_campaign, pause_campaign, resume_campaign, retry_campaign
from remixq.db import json_dumps, transaction
from remixq.errors import FieldError, InvalidInput
from remixq.failover import check_failover
from remixq.idempotency import IdempotencyKeyReused, request_digest
from remixq.models import Image
from remixq.reports import export_rows, images_page, jobs_page
from remixq.states import AssetStatus
from remixq.submission import CampaignNameTaken, create_and_enqueue, hand_over
from webhook_receiver.api import bodies, cursors, errors, schemas, spending, views
from webhook_receiver.api.auth import authenticate, caller
from webhook_receiver.api.errors import ApiError
from webhook_receiver.api.spec import spec
from webhook_receiver.state import state

log = logging.getLogger("remixq.api")
bp = Blueprint("api", __name__, url_prefix="/api/v1")
bp.before_request(authenticate)
errors.register(bp)
# Nested: the key check, the request log and the error documents below apply to its routes.
bp.register_blueprint(spending.bp)
MAX_ID = 2**63 - 1  # ids are BIGINT: a larger one names nothing (and PostgreSQL would refuse it)


@bp.url_value_preprocessor
def _ids_in_range(_endpoint: str | None, values: dict[str, Any] | None) -> None:
    campaign_id = (values or {}).get("campaign_id")
    if isinstance(campaign_id, int) and campaign_id > MAX_ID:
        raise ApiError(404, "not_found", f"no campaign has id {campaign_id}")


ERRORS = {
    "HTTP_401": schemas.ErrorBody,
    "HTTP_404": schemas.ErrorBody,
    "HTTP_422": schemas.ErrorBody,
}
WRITE_ERRORS = {**ERRORS, "HTTP_403": schemas.ErrorBody, "HTTP_413": schemas.ErrorBody}


@bp.after_request
def _log(response: Response) -> Response:
    """One line per request, naming the key (never the key itself)."""
    from flask import g

    key = getattr(g.get("api_key"), "name", None)
    log.info(
        "api request",
        extra={
            "key_name": key,
            "method": request.method,
            "path": request.path,
            "status": response.status_code,
        },
    )
    return response


# -- creating a campaign ----------------------------------------------------------------------


@bp.post("/campaigns")
@spec.validate(
    json=schemas.CampaignCreate,
    headers=schemas.CreateHeaders,
    resp=Responses(
        HTTP_201=schemas.Campaign,
        HTTP_200=schemas.Campaign,
        HTTP_409=schemas.ErrorBody,
        HTTP_415=schemas.ErrorBody,
        **{k: v for k, v in WRITE_ERRORS.items() if k != "HTTP_404"},
    ),
    tags=["campaigns"],
    skip_validation=True,  # validated below, so that one 422 lists every error of the body
)
def create_campaign() -> tuple[Response, int]:
    """Create a campaign from Runware requests, or from a spec of them.

    The body is `{"name", "jobs"}` (each job one line of a JSONL campaign file) or a spec:
    `defaults` (fields every job starts from), `matrix` (dotted field path -> values: one job
    per combination, over the defaults), `jobs` (explicit requests merged over the defaults),
    `budget_usd`; a matrix past REMIXQ_MAX_MATRIX_JOBS (and 10,000) needs `"allow_large": true`.
    Each job remembers its variant (its axis values, or `{"job": i}`). The whole body is
    validated first (every error in one 422: job index, field, value, what
    is allowed); nothing is stored if anything is wrong. An `Idempotency-Key` header makes a
    retry answer with the campaign the first request made (200), never a second one.
    """
    body = bodies.json_body()
    new_jobs, budget = bodies.read_jobs(body, schemas.CampaignCreate)
    failover = check_failover(body.get("failover"))  # checked in read_jobs (a spec's key)
    name = str(body["name"])
    key = bodies.idempotency_key()
    try:
        created = create_and_enqueue(
            bodies.sessions(),
            name=name,
            new_jobs=new_jobs,
            enqueue=state(current_app).enqueue,
            api_key_id=caller().id,
            idempotency_key=key,
            request_sha256=request_digest(body),
            budget_usd=budget,
            failover=failover,
            prices=state(current_app).prices,
        )
    except CampaignNameTaken as exc:
        raise ApiError(409, "campaign_name_taken", str(exc), campaign_id=exc.campaign_id) from None
    except IdempotencyKeyReused as exc:
        raise ApiError(
            409, "idempotency_key_reused", str(exc), campaign_id=exc.campaign_id
        ) from None
    if created.broker_error is not None:
        log.warning(
            "api campaign stored, broker unreachable (the relay hands the jobs over)",
            extra={"campaign_id": created.campaign_id, "broker_error": created.broker_error},
        )
    if not created.replayed:
        log.info(
            "api campaign created",
            extra={
                "campaign_id": created.campaign_id,
                "jobs": len(created.job_ids),
                "key_name": caller().name,
            },
        )
    with transaction(bodies.sessions()) as session:
        found = views.campaign(session, created.campaign_id)
    response = bodies.json_response(found)
    response.headers["Location"] = url_for("api.get_campaign", campaign_id=created.campaign_id)
    if created.replayed:
        response.headers["Idempotent-Replayed"] = "true"
    return response, 200 if created.replayed else 201


# -- reading ----------------------------------------------------------------------------------


@bp.get("/campaigns/<int:campaign_id>")
@spec.validate(resp=Responses(HTTP_200=schemas.Campaign, **ERRORS), tags=["campaigns"])
def get_campaign(campaign_id: int) -> Response:
    """One campaign: jobs by status, images, cost, times, the key that created it."""
    with transaction(bodies.sessions()) as session:
        found = views.campaign(session, campaign_id)
    return bodies.json_response(found)


def _page_query() -> Any:
    return request.context.query  # type: ignore[attr-defined]  # spectree's validated query


@bp.get("/campaigns")
@spec.validate(
    query=schemas.Page,
    resp=Responses(
        HTTP_200=schemas.CampaignPage, HTTP_401=schemas.ErrorBody, HTTP_422=schemas.ErrorBody
    ),
    tags=["campaigns"],
)
def list_campaigns() -> Response:
    """Campaigns by id, a page at a time (`next_cursor` is null on the last page)."""
    query = _page_query()
    after = cursors.decode(query.cursor)
    with transaction(bodies.sessions()) as session:
        rows = views.campaigns(session, after_id=after, limit=query.limit + 1)
    count, next_cursor = cursors.page([row.id for row in rows], query.limit)
    return bodies.json_response(schemas.CampaignPage(items=rows[:count], next_cursor=next_cursor))


@bp.get("/campaigns/<int:campaign_id>/jobs")
@spec.validate(
    query=schemas.JobQuery, resp=Responses(HTTP_200=schemas.JobPage, **ERRORS), tags=["jobs"]
)
def list_jobs(campaign_id: int) -> Response:
    """The campaign's jobs (every attempt; of one `status` if given) by id, a page at a time."""
    query = _page_query()
    after = cursors.decode(query.cursor)
    status = query.status.value if query.status is not None else None
    with transaction(bodies.sessions()) as session:
        views.require_campaign(session, campaign_id)
        rows = jobs_page(session, campaign_id, status=status, after_id=after, limit=query.limit + 1)
        count, next_cursor = cursors.page([row.id for row in rows], query.limit)
        items = [views.job(row) for row in rows[:count]]
    return bodies.json_response(schemas.JobPage(items=items, next_cursor=next_cursor))


@bp.get("/campaigns/<int:campaign_id>/images")
@spec.validate(
    query=schemas.Page, resp=Responses(HTTP_200=schemas.ImagePage, **ERRORS), tags=["images"]
)
def list_images(campaign_id: int) -> Response:
    """The campaign's stored images (every attempt's), by job then image, a page at a time."""
    query = _page_query()
    after = cursors.decode(query.cursor)
    with transaction(bodies.sessions()) as session:
        views.require_campaign(session, campaign_id)
        if after is not None and session.get(Image, after) is None:
            raise InvalidInput(
                [FieldError("cursor", query.cursor, "the next_cursor of a previous page")]
            )
        rows = images_page(session, campaign_id, after_id=after, limit=query.limit + 1)
        count, next_cursor = cursors.page([image.id for image, _ in rows], query.limit)
        items = [views.image(image, job) for image, job in rows[:count]]
    return bodies.json_response(schemas.ImagePage(items=items, next_cursor=next_cursor))


@bp.get("/images/<uuid:image_uuid>/content")
@spec.validate(
    query=schemas.ContentQuery,
    resp=Responses(HTTP_200=None, HTTP_304=None, HTTP_409=schemas.ErrorBody, **ERRORS),
    tags=["images"],
)
def image_content(image_uuid: UUID) -> Response | WerkzeugResponse:
    """The stored copy of an image, streamed with its content type; `?size=N` (64-1024) a
    thumbnail whose longest side is at most N, made once and kept. The bytes under a key never
    change: `ETag` is their SHA-256 (`If-None-Match` answers 304) and `Cache-Control` says
    immutable. 409 `asset_not_stored` (with `asset_status` and `reason`) while the copy is
    pending, or when it failed or was refused."""
    size = _page_query().size
    with transaction(bodies.sessions()) as session:
        image = session.scalar(select(Image).where(Image.image_uuid == str(image_uuid)))
    if image is None:
        raise ApiError(404, "not_found", f"no image has UUID {image_uuid}")
    if image.asset_status != AssetStatus.STORED or not image.storage_key or not image.sha256:
        reason = f": {image.asset_reason}" if image.asset_reason else ""
        raise ApiError(
            409,
            "asset_not_stored",
            f"image {image_uuid} has no stored copy: it is {image.asset_status}{reason}",
            asset_status=image.asset_status,
            reason=image.asset_reason,
        )
    storage = state(current_app).storage
    key, tag = image.storage_key, image.sha256
    if size is not None:
        key = thumbnail(
            storage,
            key=key,
            sha256=image.sha256,
            content_type=image.content_type or "application/octet-stream",
            size=size,
        )
        tag = f"{image.sha256}-{size}"
    headers = {"ETag": f'"{tag}"', "Cache-Control": "private, max-age=31536000, immutable"}
    if request.if_none_match.contains(tag):
        return current_app.response_class(status=304, headers=headers)
    try:
        length, chunks = storage.stream(key)
    except KeyError:
        raise ApiError(
            404, "not_found", f"the stored copy of image {image_uuid} is missing"
        ) from None
    # werkzeug's Response, not Flask's: spectree reads the body of a Flask response to check
    # it (the whole image in memory), and passes any other through, streamed as it is read.
    response = WerkzeugResponse(
        chunks, mimetype=image.content_type, headers=headers, direct_passthrough=True
    )
    response.content_length = length
    return response


# -- controls ---------------------------------------------------------------------------------

CONTROL_RESPONSES = Responses(
    HTTP_200=schemas.ControlResult, **{k: v for k, v in WRITE_ERRORS.items() if k != "HTTP_413"}
)


def _control(campaign_id: int, act: Callable[[Session], tuple[int, list[int]]]) -> Response:
    """Run one control in a transaction, hand the jobs it returns to the broker, answer."""
    sessions = bodies.sessions()
    with transaction(sessions) as session:
        views.require_campaign(session, campaign_id)
        touched, to_enqueue = act(session)
    broker_error = hand_over(state(current_app).enqueue, sessions, to_enqueue)
    log.info(
        "api control",
        extra={
            "campaign_id": campaign_id,
            "control": request.path.rsplit("/", 1)[-1],
            "jobs": touched,
            "key_name": caller().name,
        },
    )
    with transaction(sessions) as session:
        found = views.campaign(session, campaign_id)
    return bodies.json_response(
        schemas.ControlResult(
            campaign=found,
            jobs=touched,
            enqueued=broker_error is None,
            broker_error=broker_error,
        )
    )


@bp.post("/campaigns/<int:campaign_id>/cancel")
@spec.validate(resp=CONTROL_RESPONSES, tags=["control"])
def cancel(campaign_id: int) -> Response:
    """Cancel: pending and queued jobs are never submitted; a job the provider already
    accepted still lands, and its cost counts. `jobs`: how many were cancelled."""
    return _control(campaign_id, lambda session: (cancel_campaign(session, campaign_id), []))


@bp.post("/campaigns/<int:campaign_id>/pause")
@spec.validate(resp=CONTROL_RESPONSES, tags=["control"])
def pause(campaign_id: int) -> Response:
    """Pause: nothing more of the campaign is submitted until a resume; `jobs` is 1 when the
    campaign was newly paused, 0 when there was nothing to pause."""
    return _control(campaign_id, lambda session: (int(pause_campaign(session, campaign_id)), []))


@bp.post("/campaigns/<int:campaign_id>/resume")
@spec.validate(resp=CONTROL_RESPONSES, tags=["control"])
def resume(campaign_id: int) -> Response:
    """Resume a paused campaign (whoever paused it): its waiting jobs go to the broker."""

    account: list[bool] = []

    def act(session: Session) -> tuple[int, list[int]]:
        resumed = resume_campaign(session, campaign_id)
        account.append(resumed.account)
        return len(resumed.job_ids), resumed.job_ids

    answer = _control(campaign_id, act)
    publisher = state(current_app).publisher
    if any(account) and publisher is not None:
        publisher.lift_shared_pause()  # the account's pause held every worker too
    return answer


@bp.post("/campaigns/<int:campaign_id>/retry")
@spec.validate(resp=CONTROL_RESPONSES, tags=["control"])
def retry(campaign_id: int) -> Response:
    """Retry: each failed job gets one new attempt with a new taskUUID, its estimate reserved
    against the campaign's budget (409 `budget_exceeded`, nothing retried, when they do not
    fit)."""

    def act(session: Session) -> tuple[int, list[int]]:
        job_ids = retry_campaign(session, campaign_id, prices=state(current_app).prices)
        return len(job_ids), job_ids

    return _control(campaign_id, act)


# -- export -----------------------------------------------------------------------------------


@bp.get("/campaigns/<int:campaign_id>/export")
@spec.validate(
    resp=Responses(HTTP_200=None, **ERRORS),
    tags=["images"],
)
def export(campaign_id: int) -> Response:
    """Every stored image of the campaign as JSON Lines (application/x-ndjson), one object per
    image: campaign, job, taskUUID, status, provider, model, prompt, parameters, variant, image
    UUID, URL, seed, NSFW flag, cost (and whether it is the price table's estimate: a provider
    that reports no cost). Streamed in keyset batches: constant memory whatever the campaign's
    size."""
    sessions = bodies.sessions()
    with transaction(sessions) as session:
        views.require_campaign(session, campaign_id)

    def lines() -> Iterator[bytes]:
        with sessions() as session:
            for row in export_rows(session, campaign_id):
                yield (json_dumps(row) + "\n").encode()

    log.info("api export", extra={"campaign_id": campaign_id, "key_name": caller().name})
    return current_app.response_class(stream_with_context(lines()), mimetype="application/x-ndjson")
