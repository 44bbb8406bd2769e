"""Reading the REST API's requests and writing its answers, for every route: the JSON body,
the `Idempotency-Key` header, a body of jobs (Runware requests or a spec of them) validated as
a whole, and a typed body as the response."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from flask import Response, current_app, request
from pydantic import BaseModel, ValidationError
from sqlalchemy.orm import Session, sessionmaker

from remixq.db import json_dumps, json_loads
from remixq.errors import FieldError, InvalidInput
from remixq.idempotency import MAX_KEY_CHARS
from remixq.producing import NewJob
from remixq.specs import parse_spec, read_spec
from remixq.url_policy import UrlPolicy
from webhook_receiver.api import schemas
from webhook_receiver.api.errors import ApiError
from webhook_receiver.api.spec import problems
from webhook_receiver.state import state

MAX_ERRORS_SHOWN = 1000


def sessions() -> sessionmaker[Session]:
    """The API's sessions (a pool of their own, `ReceiverState.api_sessions`)."""
    return state(current_app).api_sessions


def json_body() -> Any:
    """The request's JSON document; 415 for another media type, 422 for a broken document."""
    if not request.is_json:
        raise ApiError(
            415,
            "unsupported_media_type",
            f"send a JSON body (Content-Type: application/json), not {request.mimetype!r}",
        )
    data = request.get_data(cache=True)
    try:
        return json_loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidInput([FieldError("(body)", None, f"a JSON document ({exc})")]) from None


def idempotency_key() -> str | None:
    """The `Idempotency-Key` header, if sent: 1 to 200 printable characters."""
    key = request.headers.get("Idempotency-Key")
    if key is None:
        return None
    if not 1 <= len(key) <= MAX_KEY_CHARS or not key.isprintable():
        raise InvalidInput(
            [FieldError("Idempotency-Key", key, f"1 to {MAX_KEY_CHARS} printable characters")]
        )
    return key


def read_jobs(body: Any, schema: type[BaseModel]) -> tuple[list[NewJob], Decimal | None]:
    """The validated jobs of a body holding Runware requests (`jobs`) or a spec of them
    (`defaults`, `matrix`, `jobs`, `budget_usd`, `allow_large`), expanded as `remixq submit`
    expands a spec file, and the body's budget; `schema` is the route's body (its other fields
    and their types). Every error of the body at once (InvalidInput, at most 1,000 listed)."""
    errors: list[FieldError] = []
    try:
        schema.model_validate(body)
    except ValidationError as exc:
        errors.extend(problems(exc))
    new_jobs: list[NewJob] = []
    budget = None
    jobs = body.get("jobs") if isinstance(body, dict) else None
    if isinstance(body, dict) and (jobs is None or isinstance(jobs, list)):
        settings = state(current_app).settings
        try:
            parsed = parse_spec(body, ignore=("allow_large",))
            budget = parsed.budget_usd
            # Over HTTP no local file is read (local_images None): an image field must hold a
            # UUID, an http(s) URL, a data URI or base64.
            new_jobs = read_spec(
                parsed,
                local_images=None,
                urls=UrlPolicy(refuse_private=settings.refuse_private_urls),
                max_jobs=settings.max_matrix_jobs,
                allow_large=body.get("allow_large") is True,
                hard_max=schemas.MAX_JOBS,
            )
        except InvalidInput as exc:
            known = {(e.field, e.location) for e in errors}
            errors.extend(e for e in exc.errors if (e.field, e.location) not in known)
    if errors:
        raise InvalidInput(errors[:MAX_ERRORS_SHOWN])
    return new_jobs, budget


def json_response(model: BaseModel) -> Response:
    """A typed body as the response."""
    return current_app.response_class(model.model_dump_json(), mimetype="application/json")


def document_response(document: Any) -> Response:
    """A JSON document made by the domain (exact decimals as strings) as the response."""
    return current_app.response_class(json_dumps(document), mimetype="application/json")
