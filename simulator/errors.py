"""Runware error objects, as the simulator answers them.

The documented shape (runware-platform.md §4) is ``{"code", "message", "parameter", "taskType",
"taskUUID", "documentation"}`` with ``type`` and ``allowedValues`` on validation errors. Each
error also carries the HTTP status class it implies, used to pick the status of a whole batch
(assumptions A1).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from simulator import assumptions

PLATFORM_DOCS = "https://runware.ai/docs/platform/errors"


@dataclass(frozen=True)
class ApiError:
    """One entry of an ``errors`` array."""

    code: str
    message: str
    parameter: str | None = None
    task_type: str | None = None
    task_uuid: str | None = None
    documentation: str | None = PLATFORM_DOCS
    expected_type: str | None = None
    allowed_values: Sequence[object] | None = None
    status: str | None = None  # "error" inside getResponse and failure webhooks (A7, A8)
    http_status: int = assumptions.STATUS_REQUEST_ERROR

    def for_task(self, task_type: object, task_uuid: object) -> ApiError:
        """The same error, naming the task it belongs to (when the task named itself)."""
        return replace(
            self,
            task_type=task_type if isinstance(task_type, str) else self.task_type,
            task_uuid=task_uuid if isinstance(task_uuid, str) else self.task_uuid,
        )

    def as_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {"code": self.code, "message": self.message}
        optional = {
            "status": self.status,
            "parameter": self.parameter,
            "type": self.expected_type,
            "allowedValues": list(self.allowed_values) if self.allowed_values else None,
            "documentation": self.documentation,
            "taskType": self.task_type,
            "taskUUID": self.task_uuid,
        }
        body.update({key: value for key, value in optional.items() if value is not None})
        return body


def missing_api_key() -> ApiError:
    return _authentication_error(
        "missingApiKey",
        "Missing API key: send 'Authorization: Bearer <key>' or a leading authentication task.",
    )


def invalid_api_key() -> ApiError:
    return _authentication_error(
        "invalidApiKey", "Invalid API key. Get one at https://my.runware.ai/signup"
    )


def _authentication_error(code: str, message: str) -> ApiError:
    return ApiError(
        code=code,
        message=message,
        parameter="apiKey",
        task_type="authentication",
        documentation="https://runware.ai/docs/platform/authentication",
        http_status=assumptions.STATUS_UNAUTHORIZED,
    )


def invalid_request(message: str) -> ApiError:
    return ApiError(code=assumptions.INVALID_REQUEST, message=message)


def conflict_task_uuid(task_uuid: str) -> ApiError:
    return ApiError(
        code="conflictTaskUUID",
        message=f"A task with taskUUID {task_uuid} was already submitted; taskUUIDs must be "
        "unique. Use getResponse to read its results.",
        parameter="taskUUID",
        task_uuid=task_uuid,
    )


def unknown_task(task_uuid: str) -> ApiError:
    return ApiError(
        code=assumptions.UNKNOWN_TASK_CODE,
        message=f"No task with taskUUID {task_uuid} is known.",
        parameter="taskUUID",
        task_type="getResponse",
        task_uuid=task_uuid,
        documentation="https://runware.ai/docs/platform/task-polling",
    )


def generation_failed(code: str, message: str, task_uuid: str) -> ApiError:
    return ApiError(
        code=code,
        message=message,
        task_type="imageInference",
        task_uuid=task_uuid,
        status=assumptions.STATUS_ERROR,
        http_status=assumptions.STATUS_GENERATION_FAILED,
    )


def injected_http_fault(http_status: int) -> ApiError:
    code, message = assumptions.HTTP_FAULT_CODES[http_status]
    return ApiError(code=code, message=message, http_status=http_status)


def insufficient_credits() -> ApiError:
    code, message = assumptions.INSUFFICIENT_CREDITS
    return ApiError(code=code, message=message, http_status=assumptions.STATUS_PAYMENT_REQUIRED)
