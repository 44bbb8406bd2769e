"""Who may call ``POST /v1``: a Bearer header or a leading ``authentication`` task.

Either way of sending the key is accepted, and one valid key is enough (assumptions A5). The
authentication task is taken off the front of the batch and answered with a session item.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from simulator import errors
from simulator.errors import ApiError


def authenticate(
    payload: list[Any], authorization: str | None, required: str | None
) -> tuple[list[Any], list[dict[str, Any]], ApiError | None]:
    """The tasks after any authentication task, the items answering it, and the auth error.

    ``required`` is the configured API key; None accepts any non-empty key.
    """
    keys: list[str] = []
    if authorization is not None:
        scheme, _, token = authorization.partition(" ")
        # A non-Bearer scheme is a key we cannot read: invalid, not missing.
        keys.append(token.strip() if scheme.lower() == "bearer" else "")
    tasks, auth_items = payload, []
    first = payload[0] if payload else None
    if isinstance(first, Mapping) and first.get("taskType") == "authentication":
        tasks = payload[1:]
        key = first.get("apiKey")
        keys.append(key if isinstance(key, str) else "")
        session = first.get("connectionSessionUUID")
        session = session if isinstance(session, str) else str(uuid.uuid4())
        auth_items.append({"taskType": "authentication", "connectionSessionUUID": session})
    if not keys:
        return tasks, [], errors.missing_api_key()
    if not any(key and (required is None or key == required) for key in keys):
        return tasks, [], errors.invalid_api_key()
    return tasks, auth_items, None
