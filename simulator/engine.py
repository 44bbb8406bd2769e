"""The simulated Runware service: what ``POST /v1`` does, independent of Flask.

``Simulator.submit`` takes the decoded request body and the ``Authorization`` header and returns
a ``Reply`` (status, JSON body, headers). Per request: count the attempt, wait the submit
latency, authenticate, draw a submit fault (decided BEFORE anything is accepted), then handle
each task on its own (errors are scoped per task). Sync tasks are finished in the request
thread; async tasks are finished by the scheduler. Open points: see ``assumptions.py``.
"""

from __future__ import annotations

import functools
import re
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from simulator import assumptions, errors
from simulator.config import FaultKnobs, SimulatorConfig
from simulator.errors import ApiError
from simulator.faults import Faults, SubmitFault
from simulator.images import EXTENSIONS, ImageSpec, as_base64, as_data_uri, render
from simulator.models import check_image_inference, model_specs, rendering_speed, safety_checked
from simulator.scheduler import Scheduler
from simulator.schema import ModelSpec, Param, validate
from simulator.stats import Stats
from simulator.store import ResultRecord, TaskRecord, TaskStore
from simulator.webhooks import WebhookSender, make_session

_CENT_FRACTION = Decimal("0.0001")  # A10: costs carry at most 4 decimals

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
class Reply:
    """An HTTP answer, ready to be serialised by the web layer."""

    status: int
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)


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
        tasks, auth_items, auth_error = self._authenticate(items, authorization)
        if auth_error is not None:
            self.stats.count("auth_failures")
            return _reply(assumptions.STATUS_UNAUTHORIZED, [], [auth_error])
        if not items:
            error = errors.invalid_request("The body must be a non-empty JSON array of tasks.")
            return _reply(assumptions.STATUS_REQUEST_ERROR, [], [error])

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
        self.stats.count("images_served")
        return render(spec, self.config.image_max_side), spec.mime_type

    def reset(self) -> None:
        """Forget every task, image and counter; knobs return to their start values."""
        self.store.clear()
        self.stats.reset()
        self.faults.restore()

    def close(self) -> None:
        self.scheduler.close()
        self.http.close()

    # -- request handling ----------------------------------------------------------------

    def _authenticate(
        self, payload: list[Any], authorization: str | None
    ) -> tuple[list[Any], list[dict[str, Any]], ApiError | None]:
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
        required = self.config.api_key
        if not any(key and (required is None or key == required) for key in keys):
            return tasks, [], errors.invalid_api_key()
        return tasks, auth_items, None

    def _http_fault(self, status: int, knobs: FaultKnobs) -> Reply:
        headers = {}
        if status in assumptions.RETRY_AFTER_STATUSES and knobs.retry_after_s is not None:
            headers["Retry-After"] = str(knobs.retry_after_s)
        return _reply(status, [], [errors.injected_http_fault(status)], headers)

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
        return _reply(status, data, failures)

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
        if error is not None:
            self.stats.count("validation_errors")
            return _Outcome(errors=[error.for_task("imageInference", task_uuid)])
        assert isinstance(task_uuid, str)  # validated above
        record = self._new_record(task, knobs, base_url)
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
            return _Outcome(ok=True, pending=record, data=[_ack(task_uuid)])
        self._schedule(record)
        return _Outcome(ok=True, data=[_ack(task_uuid)])

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
        processing = {
            "taskType": "imageInference",
            "taskUUID": task_uuid,
            "status": assumptions.STATUS_PROCESSING,
        }
        data.extend(dict(processing) for _ in range(progress.pending))
        return _Outcome(ok=True, data=data)

    # -- generation ----------------------------------------------------------------------

    def _new_record(self, task: Mapping[str, Any], knobs: FaultKnobs, base_url: str) -> TaskRecord:
        rng = self.faults.rng
        count = int(task.get("numberResults", 1))
        start = self._clock()
        latencies = sorted(self.faults.latency_s(knobs) for _ in range(count))
        order = list(range(count))
        if count > 1 and self.faults.chance(knobs.webhook_reorder_rate):
            self.stats.fault("webhook_reorder")
            while order == sorted(order):
                rng.shuffle(order)
        # Result order[k] finishes k-th; 1 ms apart so the order holds even at zero latency.
        due = {index: start + latencies[k] + k / 1000.0 for k, index in enumerate(order)}
        cost = None
        if task.get("includeCost") is True:
            price = self.config.price(str(task["model"]), rendering_speed(task))
            cost = price.quantize(_CENT_FRACTION)
        checked = safety_checked(task)
        prompt = str(task["positivePrompt"])
        results = []
        for index in range(count):
            seed = rng.randint(0, assumptions.SEED_MAX)
            image = ImageSpec(
                prompt=prompt,
                seed=seed,
                width=int(task["width"]),
                height=int(task["height"]),
                output_format=str(task.get("outputFormat", "JPG")),
                quality=int(task.get("outputQuality", 95)),
            )
            results.append(
                ResultRecord(
                    index=index,
                    image_uuid=str(uuid.uuid4()),
                    seed=seed,
                    image=image,
                    due=due[index],
                    cost=cost,
                    nsfw=self.faults.chance(knobs.nsfw_rate) if checked else None,
                    structured_prompt=_structured_prompt(task, rng.random())
                    if task["model"] == "ideogram:4@remix"
                    else None,
                )
            )
        failure = None
        if self.faults.chance(knobs.failure_rate):
            failure = errors.generation_failed(
                knobs.failure_code, knobs.failure_message, str(task["taskUUID"])
            )
        output_type = str(task.get("outputType", "URL"))
        return TaskRecord(
            task_uuid=str(task["taskUUID"]),
            task=task,
            delivery=str(task.get("deliveryMethod", "sync")),
            output_type=output_type,
            base_url=(self.config.public_url or base_url).rstrip("/"),
            webhook_url=task.get("webhookURL"),
            upload_endpoint=task.get("uploadEndpoint"),
            ttl_s=task.get("ttl") if output_type == "URL" else None,
            results=results,
            failure=failure,
            finish_at=max(r.due for r in results),
        )

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
            body = item if self._bare_envelope() else {"data": [item]}
            # A sync task's webhooks never hold up its answer (A6); before-ack ones do.
            send_inline = inline and record.delivery == "async"
            self.webhooks.send(
                record.webhook_url, body, record.task_uuid, record.epoch, inline=send_inline
            )
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
            body = {"errors": [record.failure.as_json()]}
            send_inline = inline and record.delivery == "async"
            self.webhooks.send(
                record.webhook_url, body, record.task_uuid, record.epoch, inline=send_inline
            )

    def _bare_envelope(self) -> bool:
        envelope = self.faults.knobs.webhook_envelope
        if envelope == "mixed":
            return self.faults.rng.random() < 0.5
        return envelope == "bare"

    def _result_item(self, record: TaskRecord, result: ResultRecord) -> dict[str, Any]:
        item: dict[str, Any] = {
            "taskType": "imageInference",
            "taskUUID": record.task_uuid,
            "imageUUID": result.image_uuid,
        }
        spec = result.image
        if record.output_type == "URL":
            item["imageURL"] = f"{record.base_url}/images/{result.image_uuid}.{spec.extension}"
        else:
            data = render(spec, self.config.image_max_side)
            if record.output_type == "base64Data":
                item["imageBase64Data"] = as_base64(data)
            else:
                item["imageDataURI"] = as_data_uri(data, spec.mime_type)
        item["seed"] = result.seed
        if result.nsfw is not None:
            item["NSFWContent"] = result.nsfw
        if result.cost is not None:
            item["cost"] = float(result.cost)
        if result.structured_prompt is not None:
            item["structuredPrompt"] = result.structured_prompt
        return item

    def _pause(self, seconds: float) -> None:
        if seconds > 0:
            self._sleep(seconds)


def _ack(task_uuid: str) -> dict[str, Any]:
    return {"taskType": "imageInference", "taskUUID": task_uuid}


def _reply(
    status: int,
    data: list[dict[str, Any]],
    failures: list[ApiError],
    headers: dict[str, str] | None = None,
) -> Reply:
    body: dict[str, Any] = {}
    if data:
        body["data"] = data
    if failures:
        body["errors"] = [error.as_json() for error in failures]
    return Reply(status, body, headers or {})


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


def _structured_prompt(task: Mapping[str, Any], draw: float) -> dict[str, Any]:
    """An invented stand-in for Ideogram 4.0's structured prompt (assumptions A11)."""
    prompt = str(task["positivePrompt"])
    clauses = [c.strip() for c in re.split(r"[,.;\n]", prompt) if c.strip()]
    strength = task.get("strength")
    return {
        "summary": clauses[0] if clauses else prompt,
        "elements": clauses[1:9],
        "style": rendering_speed(task).lower(),
        # "When omitted, the strength is chosen automatically from the prompt."
        "strength": strength if strength is not None else round(0.3 + 0.5 * draw, 2),
    }
