"""``parse_request``: untrusted JSON (a campaign line, an API body) to one of the request models.

Every problem is reported at once: the fields remixq manages, the model id, each field's own
refusal and the cross-field rules, the last read from the raw input so that a combination is
reported even when a field in it failed on its own.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError

from remixq.errors import FieldError, InvalidInput
from remixq.providers.runware import assumptions as A
from remixq.providers.runware.schemas.catalog import MODEL_IDS
from remixq.providers.runware.schemas.models import MODELS, RemixRequest
from remixq.providers.runware.schemas.refusals import field_errors
from remixq.providers.runware.schemas.rules import combination_errors
from remixq.url_policy import UrlPolicy


def parse_request(data: Mapping[str, Any], *, urls: UrlPolicy | None = None) -> RemixRequest:
    """Validate one remix request; raise ``InvalidInput`` listing every problem found.

    ``urls`` decides which hosts the URLs the provider will contact may name (``uploadEndpoint``
    and image references); the default allows any http(s) host.
    """
    if not isinstance(data, Mapping):
        raise InvalidInput([FieldError("request", data, "a JSON object")])
    errors = [
        FieldError(name, data[name], "set by remixq; remove it")
        for name in A.MANAGED_FIELDS
        if name in data
    ]
    model_id = data.get("model")
    model = MODELS.get(model_id) if isinstance(model_id, str) else None
    if model is None:
        allowed = "one of " + ", ".join(MODEL_IDS)
        errors.append(
            FieldError("model", model_id, allowed if "model" in data else f"required: {allowed}")
        )
        raise InvalidInput(errors)
    body = {key: value for key, value in data.items() if key not in A.MANAGED_FIELDS}
    request: RemixRequest | None = None
    try:
        request = model.model_validate(body, context={"urls": urls or UrlPolicy()})
    except ValidationError as exc:
        errors += field_errors(model, exc)
    # A field already refused on its own is not refused again for a combination it is in.
    refused = {error.field for error in errors}
    errors += [e for e in combination_errors(model.MODEL_ID, body) if e.field not in refused]
    if errors or request is None:
        raise InvalidInput(errors)
    return request
