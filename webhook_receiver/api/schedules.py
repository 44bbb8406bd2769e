"""The REST API's schedules under /api/v1/schedules: add, list, read with the history, change,
pause, resume, run now and remove, each a call of one domain function (remixq.schedules) in a
transaction of its own. The firing itself runs under `remixq beat`."""

from __future__ import annotations

import logging
from typing import Any

from flask import Response, current_app, request, url_for
from spectree import Response as Responses

from remixq.budgets import KEEP
from remixq.db import json_dumps, transaction, utcnow
from remixq.errors import FieldError, InvalidInput
from remixq.schedules import store
from remixq.schedules.firing import run_now
from remixq.schedules.sources import Rules
from webhook_receiver.api import cursors, schemas
from webhook_receiver.api.auth import caller
from webhook_receiver.api.bodies import json_body, json_response, sessions
from webhook_receiver.api.errors import error_response
from webhook_receiver.api.routes import ERRORS, WRITE_ERRORS, _page_query, bp
from webhook_receiver.api.spec import spec
from webhook_receiver.state import state

log = logging.getLogger("remixq.api")
SPEC_NAME = "spec.json"  # the stored name of a spec given as an object
BODY_ERRORS = {**WRITE_ERRORS, "HTTP_415": schemas.ErrorBody}
CREATE_ERRORS = {k: v for k, v in BODY_ERRORS.items() if k != "HTTP_404"}


def _schedule(view: store.ScheduleView) -> schemas.Schedule:
    return schemas.Schedule.model_validate(view.to_json())


def _source(body: schemas.ScheduleCreate | schemas.ScheduleUpdate) -> tuple[str, str] | None:
    """The stored file's (text, name) from `spec` or `file`; None when neither is given."""
    if body.spec is not None and body.file is not None:
        raise InvalidInput([FieldError("file", body.file.name, "a spec or a file, not both")])
    if body.spec is not None:
        return json_dumps(body.spec), SPEC_NAME
    if body.file is not None:
        return body.file.content, body.file.name
    return None


def _rules() -> Rules:
    return Rules.of(state(current_app).settings)


def _body() -> Any:
    """The body as spectree validated it (after a 415 for one that is not JSON)."""
    json_body()
    return request.context.json  # type: ignore[attr-defined]  # spectree's validated body


@bp.post("/schedules")
@spec.validate(
    json=schemas.ScheduleCreate,
    resp=Responses(HTTP_201=schemas.Schedule, HTTP_409=schemas.ErrorBody, **CREATE_ERRORS),
    tags=["schedules"],
)
def create_schedule() -> tuple[Response, int]:
    """Add a schedule: every occurrence of `cron` in `timezone` makes one campaign from the
    stored `spec` (or `file`), named NAME@<occurrence time with offset>, exactly once however
    many beats run. Everything is checked first (the file as each occurrence will read it: no
    local image paths, no taskUUIDs); nothing is stored if anything is wrong (422), and a name
    in use is 409 `schedule_name_taken`."""
    body: schemas.ScheduleCreate = _body()
    source = _source(body)
    settings = state(current_app).settings
    definition = store.check_definition(
        name=body.name,
        cron=body.cron,
        timezone=body.timezone,
        source=source[0]
        if source
        else InvalidInput([FieldError("spec", None, "a spec object, or a file {name, content}")]),
        source_name=source[1] if source else SPEC_NAME,
        budget_usd=body.budget_usd,
        catch_up=body.catch_up,
        catch_up_max=(
            settings.schedule_catch_up_max if body.catch_up_max is None else body.catch_up_max
        ),
        rules=_rules(),
    )
    with transaction(sessions()) as session:
        store.add(session, definition, now=utcnow())
    log.info("api schedule added", extra={"schedule": body.name, "key_name": caller().name})
    with sessions()() as session:
        found = _schedule(store.view(session, body.name))
    response = json_response(found)
    response.headers["Location"] = url_for("api.get_schedule", name=body.name)
    return response, 201


@bp.get("/schedules")
@spec.validate(
    query=schemas.Page,
    resp=Responses(
        HTTP_200=schemas.SchedulePage, HTTP_401=schemas.ErrorBody, HTTP_422=schemas.ErrorBody
    ),
    tags=["schedules"],
)
def list_schedules() -> Response:
    """Schedules by id, a page at a time, each with its next and last occurrence."""
    query = _page_query()
    after = cursors.decode(query.cursor)
    with sessions()() as session:
        found = store.views(session, after_id=after, limit=query.limit + 1)
    count, next_cursor = cursors.page([view.id for view in found], query.limit)
    items = [_schedule(view) for view in found[:count]]
    return json_response(schemas.SchedulePage(items=items, next_cursor=next_cursor))


@bp.get("/schedules/<name>")
@spec.validate(resp=Responses(HTTP_200=schemas.Schedule, **ERRORS), tags=["schedules"])
def get_schedule(name: str) -> Response:
    """One schedule: its definition, next and last occurrence, counts fired and skipped."""
    with sessions()() as session:
        return json_response(_schedule(store.view(session, name)))


@bp.get("/schedules/<name>/occurrences")
@spec.validate(
    query=schemas.Page,
    resp=Responses(HTTP_200=schemas.OccurrencePage, **ERRORS),
    tags=["schedules"],
)
def list_occurrences(name: str) -> Response:
    """The schedule's history, the latest occurrence first, a page at a time: each fired one
    with its campaign's status, jobs, images and cost; each skipped one with its reason."""
    query = _page_query()
    before = cursors.decode(query.cursor)
    with sessions()() as session:
        found = store.history(
            session, store.find(session, name), before_id=before, limit=query.limit + 1
        )
    count, next_cursor = cursors.page([o.id for o in found], query.limit)
    items = [schemas.Occurrence.model_validate(o.to_json()) for o in found[:count]]
    return json_response(schemas.OccurrencePage(items=items, next_cursor=next_cursor))


@bp.patch("/schedules/<name>")
@spec.validate(
    json=schemas.ScheduleUpdate,
    resp=Responses(HTTP_200=schemas.Schedule, **BODY_ERRORS),
    tags=["schedules"],
)
def update_schedule(name: str) -> Response:
    """Change what the body gives (the rest stays), checked whole as a create is: nothing
    changes on a refusal. A new `spec` or `file` makes the next occurrences' campaigns; a new
    `cron` or `timezone` starts again from the first occurrence after now."""
    body: schemas.ScheduleUpdate = _body()
    with transaction(sessions()) as session:
        store.change(
            session,
            name,
            now=utcnow(),
            rules=_rules(),
            cron=body.cron,
            timezone=body.timezone,
            source=_source(body),
            budget_usd=body.budget_usd if "budget_usd" in body.model_fields_set else KEEP,
            catch_up=body.catch_up,
            catch_up_max=body.catch_up_max,
        )
    log.info("api schedule updated", extra={"schedule": name, "key_name": caller().name})
    with sessions()() as session:
        return json_response(_schedule(store.view(session, name)))


def _toggle(name: str, paused: bool) -> Response:
    with transaction(sessions()) as session:
        if paused:
            store.pause(session, name, now=utcnow())
        else:
            store.resume(session, name, now=utcnow())
    log.info(
        "api schedule paused or resumed",
        extra={"schedule": name, "paused": paused, "key_name": caller().name},
    )
    with sessions()() as session:
        return json_response(_schedule(store.view(session, name)))


@bp.post("/schedules/<name>/pause")
@spec.validate(
    resp=Responses(HTTP_200=schemas.Schedule, **WRITE_ERRORS),
    tags=["schedules"],
)
def pause_schedule(name: str) -> Response:
    """Pause: none of its occurrences fires until a resume (pausing a paused one changes
    nothing). Its campaigns already made go on."""
    return _toggle(name, paused=True)


@bp.post("/schedules/<name>/resume")
@spec.validate(resp=Responses(HTTP_200=schemas.Schedule, **WRITE_ERRORS), tags=["schedules"])
def resume_schedule(name: str) -> Response:
    """Resume from the first occurrence after now: the pause's occurrences are not caught up."""
    return _toggle(name, paused=False)


@bp.post("/schedules/<name>/run")
@spec.validate(
    resp=Responses(HTTP_201=schemas.ScheduleRun, HTTP_409=schemas.ErrorBody, **WRITE_ERRORS),
    tags=["schedules"],
)
def run_schedule(name: str) -> tuple[Response, int]:
    """Fire one occurrence now (paused or not), besides the schedule's own times: its campaign
    is made from the stored file and its jobs handed to the broker. A campaign that cannot be
    made (over its budget: 409 `budget_exceeded`) stores nothing."""
    receiver = state(current_app)
    fired = run_now(
        sessions(),
        name,
        rules=_rules(),
        prices=receiver.prices,
        enqueue=receiver.enqueue,
    )
    log.info(
        "api schedule run",
        extra={"schedule": name, "campaign_id": fired.campaign_id, "key_name": caller().name},
    )
    with sessions()() as session:
        schedule = store.find(session, name)
        latest = store.history(session, schedule, limit=20)
        view = _schedule(store.view(session, name))
    occurrence = next(o for o in latest if o.campaign_id == fired.campaign_id)
    answer = schemas.ScheduleRun(
        schedule=view,
        occurrence=schemas.Occurrence.model_validate(occurrence.to_json()),
        enqueued=fired.broker_error is None,
        broker_error=fired.broker_error,
    )
    return json_response(answer), 201


@bp.delete("/schedules/<name>")
@spec.validate(resp=Responses(HTTP_200=schemas.ScheduleRemoved, **WRITE_ERRORS), tags=["schedules"])
def remove_schedule(name: str) -> Response:
    """Remove the schedule and its history; its campaigns stay, and run on."""
    with transaction(sessions()) as session:
        occurrences = store.remove(session, name)
    log.info("api schedule removed", extra={"schedule": name, "key_name": caller().name})
    return json_response(schemas.ScheduleRemoved(name=name, occurrences=occurrences))


def register_errors() -> None:
    """A name no schedule has is 404; a name in use, 409 (registered on the API's blueprint,
    before its catch-all InvalidInput handler is consulted: Flask picks the closest class)."""

    @bp.errorhandler(store.UnknownSchedule)
    def unknown(exc: store.UnknownSchedule) -> Response:
        return error_response(404, "not_found", f"no schedule is named {exc.name!r}")

    @bp.errorhandler(store.ScheduleNameTaken)
    def taken(exc: store.ScheduleNameTaken) -> Response:
        return error_response(
            409, exc.code, f"schedule name {exc.name!r} is taken; choose another name"
        )


register_errors()
