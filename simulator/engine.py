"""The simulated Runware service: what ``POST /v1`` does, independent of Flask.

``Simulator.submit`` takes the decoded request body and the ``Authorization`` header and returns
a ``Reply`` (status, JSON body, headers). Per request: count the attempt, wait the submit
latency, authenticate, draw a submit fault (decided BEFORE anything is accepted), then handle
each task on its own (errors are scoped per task). Sync tasks are finished in the request
thread; async tasks are finished by the scheduler. Open points: see ``assumptions.py``.

Beside it: ``auth`` reads the key, ``generation`` decides an accepted task's results up front,
``payloads`` builds every body the simulator sends.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from simulator import assumptions, errors, payloads
from simulator.auth import authenticate
from simulator.config import FaultKnobs, SimulatorConfig
from simulator.errors import ApiError
from simulator.faults import Faults, ImageFault, SubmitFault
from simulator.generation import new_record
from simulator.images import EXTENSIONS, render
from simulator.models import check_image_inference, model_specs
from simulator.payloads import Reply
from simulator.scheduler import Scheduler
from simulator.schema import ModelSpec, Param, validate
from simulator.stats import Stats
from simulator.store import ResultRecord, TaskRecord, TaskStore
from simulator.targets import target_error
from simulator.webhooks import WebhookSender, make_session

_GET_RESPONSE = ModelSpec(
    air="getResponse",
    name="getResponse",
    docs="https://runware.ai/docs/platform/task-polling",
    params={
        "taskType": Param("string", required=True, choices=("getResponse",)),
        "taskUUID": Param("string", required=True, fmt="uuid4"),
    },
)


@dataclass(frozen=True)
class ImageAnswer:
    """A GET of an image: `declared` is the Content-Length sent when the body is cut short."""

    status: int
    body: bytes
    mime_type: str
    declared: int | None = None


@dataclass
class _Outcome:
    """What one task contributes to the answer; ``pending`` is finished before answering."""

    data: list[dict[str, Any]] = field(default_factory=list)
    errors: list[ApiError] = field(default_factory=list)
    ok: bool = False  # produced a data item: the request as a whole succeeded (A1)
    pending: TaskRecord | None = None


class Simulator:
    """State and behaviour of one simulated Runware account."""

    def __init__(
        self,
        config: SimulatorConfig,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.config = config
        self.specs = model_specs()
        self.faults = Faults(config.faults, config.random_seed)
        self.stats = Stats()
        self.store = TaskStore()
        self._clock = clock
        self._sleep = sleep
        self.scheduler = Scheduler(config.worker_threads, clock=clock)
        self.http = make_session(config.worker_threads)
        self.webhooks = WebhookSender(
            self.scheduler, self.http, self.stats, self.faults, self.store.is_current
        )

    # -- the API -------------------------------------------------------------------------

    def submit(self, payload: object, authorization: str | None, base_url: str) -> Reply:
        """Answer one ``POST /v1`` whose JSON body decoded to ``payload``."""
        self.stats.submission(_named_task_uuids(payload))
        knobs = self.faults.knobs
        self._pause(knobs.submit_latency_ms / 1000.0)
        # Authentication first: a bad key is 401 whatever the body looks like.
        items = payload if isinstance(payload, list) else []
        tasks, auth_items, auth_error = authenticate(items, authorization, self.config.api_key)
        if auth_error is not None:
            self.stats.count("auth_failures")
            return payloads.reply(assumptions.STATUS_UNAUTHORIZED, [], [auth_error])
        if not items:
            error = errors.invalid_request("The body must be a non-empty JSON array of tasks.")
            return payloads.reply(assumptions.STATUS_REQUEST_ERROR, [], [error])

        credit = knobs.account_credit_tasks
        if credit is not None and self.stats.accepted_total() >= credit:
            self.stats.fault("insufficient_credits")  # A14
            error = errors.insufficient_credits()
            return payloads.reply(error.http_status, [], [error])

        fault = self.faults.submit_fault(knobs)
        if fault is not SubmitFault.NONE:
            self.stats.fault(fault.value)
        if fault.http_status is not None:
            return self._http_fault(fault.http_status, knobs)
        if fault is SubmitFault.TIMEOUT:
            self._pause(knobs.submit_timeout_s)
            return self._http_fault(504, knobs)

        reply = self._run_tasks(tasks, auth_items, knobs, base_url)
        if fault is SubmitFault.TIMEOUT_AFTER_ACCEPT:
            # Accepted, but the answer comes too late for the client: the ambiguous case.
            self._pause(knobs.submit_timeout_s)
        return reply

    def image(self, image_uuid: str, extension: str) -> tuple[bytes, str] | None:
        """Bytes and MIME type of a served image, or None (unknown, expired, wrong format)."""
        spec = self.store.image(image_uuid, self._clock())
        if spec is None or EXTENSIONS.get(extension.lower()) != spec.output_format:
            return None
        return render(spec, self.config.image_max_side), spec.mime_type

    def serve_image(self, image_uuid: str, extension: str) -> ImageAnswer | None:
        """The answer to a GET of an image, with the image host's faults (A16) applied; None
        when the image is unknown, expired or asked in another format (404)."""
        knobs = self.faults.knobs
        self._pause(knobs.image_latency_ms / 1000.0)
        found = self.image(image_uuid, extension)
        if found is None:
            self.stats.count("images_not_found")
            return None
        fault = self.faults.image_fault(knobs)
        if fault is not ImageFault.NONE:
            self.stats.fault(fault.value)
        data, mime_type = found
        if fault is ImageFault.HTTP_500:
            return ImageAnswer(500, b"Internal Server Error", "text/plain")
        if fault is ImageFault.GARBAGE:
            return ImageAnswer(200, assumptions.IMAGE_GARBAGE_BODY, "text/html")
        if fault is ImageFault.TRUNCATED:
            return ImageAnswer(200, data[: len(data) // 2], mime_type, declared=len(data))
        self.stats.count("images_served")
        return ImageAnswer(200, data, mime_type)

    def reset(self) -> None:
        """Forget every task, image and counter; knobs return to their start values."""
        self.store.clear()
        self.stats.reset()
        self.faults.restore()

    def close(self) -> None:
        self.scheduler.close()
        self.http.close()

    # -- request handling ----------------------------------------------------------------

    def _http_fault(self, status: int, knobs: FaultKnobs) -> Reply:
        headers = {}
        if status in assumptions.RETRY_AFTER_STATUSES and knobs.retry_after_s is not None:
            headers["Retry-After"] = str(knobs.retry_after_s)
        return payloads.reply(status, [], [errors.injected_http_fault(status)], headers)

    def _run_tasks(
        self,
        tasks: Sequence[Any],
        auth_items: list[dict[str, Any]],
        knobs: FaultKnobs,
        base_url: str,
    ) -> Reply:
        outcomes = [self._handle(task, knobs, base_url) for task in tasks]
        pending = [o.pending for o in outcomes if o.pending is not None]
        if pending:
            # Tasks run in parallel: the answer waits for the slowest of them (A13).
            self._pause(max(r.finish_at for r in pending) - self._clock())
        for outcome in outcomes:
            if outcome.pending is not None:
                self._finish_inline(outcome)
        data = auth_items + [item for o in outcomes for item in o.data]
        failures = [error for o in outcomes for error in o.errors]
        if auth_items or any(o.ok for o in outcomes):
            status = assumptions.STATUS_OK
        elif any(e.http_status == assumptions.STATUS_REQUEST_ERROR for e in failures):
            status = assumptions.STATUS_REQUEST_ERROR
        else:
            status = assumptions.STATUS_GENERATION_FAILED
        return payloads.reply(status, data, failures)

    def _handle(self, task: object, knobs: FaultKnobs, base_url: str) -> _Outcome:
        if not isinstance(task, Mapping):
            self.stats.count("validation_errors")
            return _Outcome(errors=[errors.invalid_request("Every task must be a JSON object.")])
        task_type = task.get("taskType")
        if task_type == "imageInference":
            return self._image_inference(task, knobs, base_url)
        if task_type == "getResponse":
            return self._get_response(task)
        self.stats.count("validation_errors")
        error = ApiError(
            code="invalidTaskType" if "taskType" in task else "missingParameter",
            message=f"Unsupported taskType {task_type!r} (an authentication task must come "
            "first); allowed values: imageInference, getResponse.",
            parameter="taskType",
            allowed_values=("imageInference", "getResponse"),
        )
        return _Outcome(errors=[error.for_task(task_type, task.get("taskUUID"))])

    def _image_inference(
        self, task: Mapping[str, Any], knobs: FaultKnobs, base_url: str
    ) -> _Outcome:
        task_uuid = task.get("taskUUID")
        error = check_image_inference(task, self.specs)
        if error is None:  # valid, so its model is known
            error = target_error(task, self.config, self.specs[task["model"]])
        if error is not None:
            self.stats.count("validation_errors")
            return _Outcome(errors=[error.for_task("imageInference", task_uuid)])
        assert isinstance(task_uuid, str)  # validated above
        record = new_record(
            task,
            knobs,
            config=self.config,
            faults=self.faults,
            stats=self.stats,
            start=self._clock(),
            base_url=base_url,
        )
        if not self.store.add(record):
            self.stats.count("conflicts")
            return _Outcome(
                errors=[errors.conflict_task_uuid(task_uuid).for_task("imageInference", None)]
            )
        self.stats.accepted(task_uuid)
        if record.delivery == "sync":
            return _Outcome(ok=True, pending=record)
        if record.webhook_url is not None and self.faults.chance(knobs.webhook_before_ack_rate):
            self.stats.fault("webhook_before_ack")
            return _Outcome(ok=True, pending=record, data=[payloads.ack(task_uuid)])
        self._schedule(record)
        return _Outcome(ok=True, data=[payloads.ack(task_uuid)])

    def _get_response(self, task: Mapping[str, Any]) -> _Outcome:
        self.stats.count("get_response_calls")
        task_uuid = task.get("taskUUID")
        error = validate(task, _GET_RESPONSE)
        if error is not None:
            self.stats.count("validation_errors")
            return _Outcome(errors=[error.for_task("getResponse", task_uuid)])
        assert isinstance(task_uuid, str)
        progress = self.store.progress(task_uuid)
        if progress is None:
            return _Outcome(errors=[errors.unknown_task(task_uuid)])
        record = progress.record
        if progress.failed and record.failure is not None:
            return _Outcome(ok=True, errors=[record.failure])
        data = [
            {**self._result_item(record, r), "status": assumptions.STATUS_SUCCESS}
            for r in sorted(progress.done, key=lambda r: r.index)
        ]
        data.extend(payloads.processing(task_uuid) for _ in range(progress.pending))
        return _Outcome(ok=True, data=data)

    # -- finishing tasks -----------------------------------------------------------------

    def _schedule(self, record: TaskRecord) -> None:
        if record.failure is not None:
            self.scheduler.call_at(record.finish_at, lambda: self._fail(record, inline=False))
            return
        for result in record.results:
            job = functools.partial(self._complete, record, result, inline=False)
            self.scheduler.call_at(result.due, job)

    def _finish_inline(self, outcome: _Outcome) -> None:
        """Finish a sync or before-ack task in the request thread, in completion order."""
        record = outcome.pending
        assert record is not None
        if record.failure is not None:
            self._fail(record, inline=True)
            if record.delivery == "sync":
                outcome.ok = False
                outcome.errors.append(record.failure)
            return
        finished = []
        for result in sorted(record.results, key=lambda r: r.due):
            item = self._complete(record, result, inline=True)
            if item is not None:
                finished.append((result.index, item))
        if record.delivery == "sync":
            outcome.data.extend(item for _, item in sorted(finished, key=lambda pair: pair[0]))

    def _complete(
        self, record: TaskRecord, result: ResultRecord, *, inline: bool
    ) -> dict[str, Any] | None:
        if not self.store.finish(record, result, self._clock()):
            return None
        self.stats.result(result.cost)
        if result.nsfw:
            self.stats.fault("nsfw_flagged")
        item = self._result_item(record, result)
        if record.webhook_url is not None:
            body = payloads.result_webhook(item, bare=self._bare_envelope())
            self._post_webhook(record.webhook_url, record, body, inline=inline)
        if record.upload_endpoint is not None:
            url, spec = record.upload_endpoint, result.image
            data = render(spec, self.config.image_max_side)
            self.scheduler.call_later(
                0.0, lambda: self.webhooks.upload(url, data, spec.mime_type, record.epoch)
            )
        return item

    def _fail(self, record: TaskRecord, *, inline: bool) -> None:
        if record.failure is None or not self.store.fail(record):
            return
        self.stats.count("tasks_failed")
        self.stats.fault("generation_failure")
        if record.webhook_url is not None:
            body = payloads.failure_webhook(record.failure)
            self._post_webhook(record.webhook_url, record, body, inline=inline)

    def _post_webhook(
        self, url: str, record: TaskRecord, body: dict[str, Any], *, inline: bool
    ) -> None:
        # A sync task's webhooks never hold up its answer (A6); before-ack ones do.
        send_inline = inline and record.delivery == "async"
        self.webhooks.send(url, body, record.task_uuid, record.epoch, inline=send_inline)

    def _bare_envelope(self) -> bool:
        envelope = self.faults.knobs.webhook_envelope
        if envelope == "mixed":
            return self.faults.rng.random() < 0.5
        return envelope == "bare"

    def _result_item(self, record: TaskRecord, result: ResultRecord) -> dict[str, Any]:
        return payloads.result_item(record, result, self.config.image_max_side)

    def _pause(self, seconds: float) -> None:
        if seconds > 0:
            self._sleep(seconds)

    # -- shared with the other simulated endpoints (simulator.ideogram) ------------------

    def now(self) -> float:
        """The scheduler clock (what image lifetimes are measured on)."""
        return self._clock()

    def pause(self, seconds: float) -> None:
        """Hold the calling request thread ``seconds`` (the injectable sleep)."""
        self._pause(seconds)


def _named_task_uuids(payload: object) -> list[str]:
    """The taskUUIDs a body names as imageInference tasks, however malformed the rest is."""
    if not isinstance(payload, list):
        return []
    return [
        item["taskUUID"]
        for item in payload
        if isinstance(item, Mapping)
        and item.get("taskType") == "imageInference"
        and isinstance(item.get("taskUUID"), str)
    ]
