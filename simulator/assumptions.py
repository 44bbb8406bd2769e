"""Every decision the provider contract leaves open, made once, here.

The contract is ``../shared/spec`` (``README.md``, ``runware-platform.md`` and the model pages
``001_*`` Ideogram 1.0 Remix, ``000_*`` Ideogram 3.0 Remix, ``003_*`` Ideogram 4.0 Remix).
Where those sources are silent or contradict each other the simulator picks ONE behaviour,
documented below and encoded in the constants of this module so that the code using it points
back here. When in doubt the choice is the *stricter* one for a client: a client that survives
the simulator should survive Runware.

A1  HTTP status of a batch (runware-platform.md §1 "Status code when a batch partially fails: not
    documented"). Errors are scoped per task. The answer is 200 when at least one task produced a
    ``data`` item (accepted sync/async task, getResponse on a known task); otherwise 400 when any
    error is a request error (validation, conflict, unknown task), else 500 (only failed
    generations of sync tasks). A body that is not a non-empty JSON array is 400
    ``invalidRequest``. Missing / invalid API key is 401 for the whole request, checked before
    the body's shape.

A2  One error per failing task: the first problem found, in this order: unknown fields
    (``unsupportedParameter``), missing required fields (``missingParameter``), bad values,
    cross-field rules. Error codes for bad values: a top-level parameter ``foo`` gets
    ``invalidFoo`` (``invalidPositivePrompt``, ``invalidNumberResults``, ``invalidTaskUUID``...,
    the style of the codes seen in runware-platform.md §4); a nested parameter gets the generic
    ``invalidParameter`` with the dotted path in ``parameter``; an unlisted width x height pair is
    ``unsupportedDimensions`` (by analogy with the documented ``unsupportedDuration``). Enumerated
    values are listed in ``allowedValues`` (as in the D-VI-2025 example); ranges are spelled out
    in ``message``. Every error carries ``code``, ``message``, ``parameter``, ``taskType``,
    ``taskUUID`` (when the task named one) and ``documentation``.

A3  ``width``/``height`` are required for all three models (the 1.0 and 4.0 pages mark them
    "Required: true"; PY-NEW marks them required for 1.0 and 3.0 and optional for 4.0: we take
    the model pages). 3.0 documents no dimension table: any positive integers are accepted.
    ``inputs.referenceImages`` holds exactly one image (3.0 page "items: 1"; 2025 snapshot "1
    image" for both 1.0 and 3.0). ``characterReferenceImages`` and its mask: "items: 1", so one
    each. ``styleReferenceImages``: 1-4 for both 1.0 and 3.0 (2025 snapshot "≤4"). Ideogram's
    native mutual exclusions (style codes vs style references) are not documented on Runware and
    not enforced. ``null`` is not accepted for any field. Integers must be JSON integers; enum
    values are case-sensitive.

A4  ``taskUUID`` must be a UUID of version 4 (RFC 4122 variant), as the model pages say.
    Reusing a taskUUID that was ever accepted (until ``/_control/reset``) answers
    ``conflictTaskUUID``; validation runs first, so a malformed resubmission reports its
    validation error.

A5  Authentication. ``Authorization: Bearer <key>`` or a leading ``authentication`` task; either
    valid key is enough. No key: 401 ``missingApiKey``; a key that is empty or (with
    ``--api-key``) different: 401 ``invalidApiKey``. A leading authentication task is answered
    with ``{"taskType": "authentication", "connectionSessionUUID": <uuid4>}`` in ``data`` (the
    documented WebSocket reply; a client must therefore match items by taskUUID, not position).
    An authentication task that is not first is an ``invalidTaskType`` error.

A6  ``webhookURL`` is honoured with both delivery methods: ``async`` acknowledges at once and
    posts each result; ``sync`` answers with the results AND posts them (a client must
    de-duplicate). ``uploadEndpoint`` receives one PUT per result (raw bytes, ``Content-Type``
    of the image), a single attempt: the retry behaviour for PUT is not documented.

A7  Webhook bodies. A result: the bare result item (SKILL, the default) or ``{"data": [item]}``
    (PY-OLD README), selectable with ``webhook_envelope`` = bare | data | mixed (mixed: chosen
    per POST). A failed task: ``{"errors": [error]}`` where the error also carries
    ``"status": "error"`` (README "points left open"). No signature, ``Content-Type:
    application/json``. Retries: 250 ms doubling to an 8 s cap, ±20 % jitter (SKILL), after a
    non-2xx answer, a connection error or a 5 s per-attempt timeout; 8 retries by default
    (count undocumented). A result item in a webhook or sync answer carries no ``status``.

A8  ``getResponse``: answers every generation of the task, cumulatively (PY-NEW comment):
    ``{"taskType": "imageInference", "taskUUID", "status": "processing"}`` for each pending one,
    the full result item plus ``"status": "success"`` for each finished one; a failed task puts
    one error with ``"status": "error"`` into ``errors`` and the HTTP status stays 200. Status
    words: ``processing`` (the older ``pending`` is never produced). Unknown taskUUID:
    ``taskFailedOrNotFound`` (400 class). Results are retained until ``/_control/reset``; works
    for sync tasks too (the ambiguous-timeout recovery path). getResponse calls are not counted
    as submission ``attempts`` of the task.

A9  A failed generation (``failure_rate``) fails the whole task: one error (default code
    ``timeoutProvider``, the documented example), at the time its slowest result would have
    finished; nothing is charged.

A10 Cost: one price per image, from a table per model and rendering speed (default: TURBO 0.03,
    DEFAULT 0.06, QUALITY 0.09 USD; 0.06 matches every documented example), reported on each
    result item when ``includeCost``; a JSON number rounded to 4 decimals.

A11 Results: ``seed`` is a random int in [0, 2**31 - 1] (there is no seed parameter);
    ``NSFWContent`` appears when ``safety.checkContent`` is true or ``safety.mode`` is ``fast``
    (share flagged: ``nsfw_rate``); ``structuredPrompt`` (4.0 only) is an invented small object
    ``{"summary", "elements", "style", "strength"}`` since its fields are not documented.
    ``ttl`` makes the served URL expire (404) after ``ttl`` seconds; without it, after the
    ``image_ttl_s`` knob's lifetime, or until reset (A16).

A12 Injected HTTP faults (429 ``rateLimitExceeded``, 500 ``internalServerError``, 503
    ``serviceUnavailable``, 504 ``gatewayTimeout``) answer the whole request before any task is
    accepted, with ``{"errors": [{"code", "message"}]}``; ``Retry-After`` (seconds) is added to
    429 and 503 only when ``retry_after_s`` is set (the header is not documented). A submit
    timeout holds the request ``submit_timeout_s`` and then answers 504 ``gatewayTimeout``
    (nothing accepted); the ``after_accept`` variant accepts the tasks and then holds the normal
    answer. Faults are decided after authentication.

A13 Processing latency per result is drawn uniformly from ``latency_ms ± latency_jitter_ms``
    (clipped at 0); results of one task run in parallel, a sync answer waits for the slowest
    result of all its tasks. An async result is processed independently of its acknowledgement,
    so at (near) zero latency its webhook may race the ack; ``webhook_before_ack_rate`` makes
    "webhook first" certain for a share of tasks.

A14 An account without credit (the ``account_credit_tasks`` knob: the balance, counted in
    accepted tasks) answers every ``POST /v1`` after authentication with 402
    ``insufficientCredits`` and ``{"errors": [{"code", "message"}]}``, getResponse included,
    before anything is accepted. A request that starts within the balance is accepted whole.
    The documentation names 402 "balance insufficient" and the code, not which calls it refuses.

A15 Where the simulator listens and sends (its own safety; Runware's side is not documented).
    It listens on loopback unless started with ``--allow-remote`` (``REMIXQ_SIM_ALLOW_REMOTE``):
    another ``--host`` is refused at start with one line. It sends webhooks and uploads only to
    loopback hosts, written in the URL as ``localhost`` (or ``*.localhost``) or a loopback
    address (127.0.0.0/8, ``::1``; no DNS lookup), and to the hosts named by ``--allow-target
    HOST`` (repeatable; ``REMIXQ_SIM_ALLOW_TARGET=a,b``), compared with the URL's host name
    case-insensitively; ``--allow-any-target`` (``REMIXQ_SIM_ALLOW_ANY_TARGET``) lifts the rule.
    A task naming another host is refused at submission like any invalid value (A1, A2):
    ``invalidWebhookURL`` / ``invalidUploadEndpoint``, 400 class, ``parameter`` set, the message
    naming the host (never the URL: its path or query may be a credential), nothing accepted,
    nothing sent. The check runs after validation, so a malformed URL keeps its own error. Log
    lines show a target as its origin only (``scheme://host:port/...``).

A16 Image URLs and the image host. A result's ``imageURL`` is served by the simulator itself
    (``GET /images/<imageUUID>.<ext>``) for ``ttl`` seconds after its generation (the model
    pages: "Time-to-live (TTL) in seconds for generated content. Only applies when outputType is
    URL"), then answers 404, as an unknown image does. Runware's lifetime without ``ttl`` is not
    documented (runware-platform.md §10): the ``image_ttl_s`` knob gives one (unset: until
    reset). The image host's failures are not documented either; knobs inject the ones a CDN
    shows: ``image_500_rate`` (500, the next GET may succeed), ``image_truncate_rate`` (the whole
    ``Content-Length`` declared, half the bytes sent, the connection closed) and
    ``image_garbage_rate`` (200 with an HTML page), one exclusive draw per GET; and
    ``image_latency_ms`` holds every image GET that long (a slow download).

Ideogram's own API (``simulator.ideogram``; page ``004_*`` "Remix with Ideogram 3.0" and
``runware-platform.md`` section 7; the product's side of the same points is
``remixq/providers/ideogram/assumptions.py``):

I1  Authentication. The ``Api-Key`` header; missing or empty: 401; a key other than
    ``--api-key`` (when set): 403 "Not authorized to generate an image." (004 lists 403, the
    sibling generate-v3 page 401: both are produced). Checked before the form.

I2  Error bodies are ``{"error": "<message>"}`` for every status: 422 documents it
    (``GenerateImageSafetyError``), the others are "Any type", and one shape is the stricter
    choice for a client that must read them all.

I3  Validation (400, the first problem found, its message naming the field): unknown fields;
    ``image`` one file, JPEG/PNG/WebP by signature, at most 10 MiB (the OpenAPI copy's 10 MB,
    not the newer page's 25 MB); ``prompt`` non-empty; ``image_weight`` 1-100, ``seed``
    0-2147483647, ``num_images`` 1-8 (decimal integers); ``resolution`` one of ResolutionV3,
    ``aspect_ratio`` one of the 15 listed, never both; ``rendering_speed`` FLASH|TURBO|DEFAULT|
    QUALITY; ``magic_prompt`` AUTO|ON|OFF; ``style_type`` AUTO|GENERAL|REALISTIC|DESIGN|FICTION;
    ``style_preset`` one of the 62 presets; ``color_palette`` the JSON text of ``{"name":
    preset}`` or ``{"members": [{"color_hex": "#RRGGBB", "color_weight": 0.05-1}]}``;
    ``style_codes`` (the field repeated) 8-hex, not with ``style_reference_images`` nor
    ``style_type``; style reference files 10 MiB in total; at most 1 character reference image,
    and as many masks as references when masks are sent.

I4  Faults, one exclusive draw per valid call (after authentication and validation):
    ``ideogram_429_rate`` (429 "Too many requests.", ``Retry-After`` when ``retry_after_s`` is
    set), ``ideogram_5xx_rate`` (500), ``ideogram_422_rate`` (422, the safety message); none of
    them generates or charges anything. ``ideogram_unsafe_rate`` flags each image on its own:
    ``is_image_safe: false``, ``url: null`` ("If false, the url field will be empty"), charged
    like any generated image.

I5  Lost answers (``ideogram_lost_answer_rate``): the images are made, served and charged, then
    the answer is lost: ``close`` sends the whole ``Content-Length`` with half the body and closes
    the connection; ``hold`` answers 200 after ``ideogram_lost_answer_hold_s`` (past a client's
    read timeout). Ideogram has no idempotency key: a retry of such a call is charged again.

I6  Results. ``created`` is the answer's UTC time (ISO 8601). Each image is a PNG served by
    ``GET /images/<uuid>.png`` (the same host and lifetime knob as Runware's, A16), of
    ``resolution``, or the aspect ratio's resolution (I7; default 1x1); its ``seed`` is the given
    seed plus its index (mod 2**31), or random; ``prompt`` is the prompt as given (MagicPrompt is
    not simulated); ``style_type`` the one given (default GENERAL; none with ``style_codes``).
    Each call costs ``num_images`` times the price of ``ideogram-v3-remix`` at its rendering speed
    (FLASH 0.015, TURBO 0.03, DEFAULT 0.06, QUALITY 0.09), counted in the stats (the API itself
    reports no cost).

I7  The resolution of an aspect ratio (undocumented; the ResolutionV3 value closest to one
    megapixel): ``IDEOGRAM_ASPECT_RESOLUTIONS``.
"""

from __future__ import annotations

from typing import Final

# A1
STATUS_OK: Final = 200
STATUS_REQUEST_ERROR: Final = 400
STATUS_UNAUTHORIZED: Final = 401
STATUS_GENERATION_FAILED: Final = 500

# A2
UNSUPPORTED_DIMENSIONS: Final = "unsupportedDimensions"
NESTED_INVALID: Final = "invalidParameter"
INVALID_REQUEST: Final = "invalidRequest"

# A8
STATUS_PROCESSING: Final = "processing"
STATUS_SUCCESS: Final = "success"
STATUS_ERROR: Final = "error"
UNKNOWN_TASK_CODE: Final = "taskFailedOrNotFound"

# A9
DEFAULT_FAILURE_CODE: Final = "timeoutProvider"
DEFAULT_FAILURE_MESSAGE: Final = (
    "The external provider did not respond within the timeout window. "
    "The request was automatically terminated."
)

# A11
SEED_MAX: Final = 2**31 - 1

# A12
HTTP_FAULT_CODES: Final[dict[int, tuple[str, str]]] = {
    429: ("rateLimitExceeded", "Queue capacity exceeded, retry later."),
    500: ("internalServerError", "An internal error occurred while processing the request."),
    503: ("serviceUnavailable", "Temporary capacity constraint, retry later."),
    504: ("gatewayTimeout", "The request exceeded the maximum queue wait."),
}
RETRY_AFTER_STATUSES: Final = frozenset({429, 503})

# A14
STATUS_PAYMENT_REQUIRED: Final = 402
INSUFFICIENT_CREDITS: Final = (
    "insufficientCredits",
    "Insufficient credits: top up the account balance to continue.",
)

# A16
IMAGE_GARBAGE_BODY: Final = (
    b"<!doctype html><html><body><h1>Service temporarily unavailable</h1></body></html>"
)

# I1
IDEOGRAM_STATUS_NO_KEY: Final = 401
IDEOGRAM_NO_KEY_MESSAGE: Final = "Missing Api-Key header."
IDEOGRAM_STATUS_WRONG_KEY: Final = 403
IDEOGRAM_WRONG_KEY_MESSAGE: Final = "Not authorized to generate an image."

# I3
IDEOGRAM_IMAGE_MAX_BYTES: Final = 10 * 1024 * 1024
IDEOGRAM_CHARACTER_REFERENCES_MAX: Final = 1
IDEOGRAM_COLOR_WEIGHT_MIN: Final = 0.05
IDEOGRAM_RESOLUTIONS: Final = (
    "512x1536", "576x1408", "576x1472", "576x1536", "640x1344", "640x1408", "640x1472",
    "640x1536", "704x1152", "704x1216", "704x1280", "704x1344", "704x1408", "704x1472",
    "736x1312", "768x1088", "768x1216", "768x1280", "768x1344", "800x1280", "832x960",
    "832x1024", "832x1088", "832x1152", "832x1216", "832x1248", "864x1152", "896x960",
    "896x1024", "896x1088", "896x1120", "896x1152", "960x832", "960x896", "960x1024",
    "960x1088", "1024x832", "1024x896", "1024x960", "1024x1024", "1088x768", "1088x832",
    "1088x896", "1088x960", "1120x896", "1152x704", "1152x832", "1152x864", "1152x896",
    "1216x704", "1216x768", "1216x832", "1248x832", "1280x704", "1280x768", "1280x800",
    "1312x736", "1344x640", "1344x704", "1344x768", "1408x576", "1408x640", "1408x704",
    "1472x576", "1472x640", "1472x704", "1536x512", "1536x576", "1536x640",
)  # fmt: skip

# I4
IDEOGRAM_429_MESSAGE: Final = "Too many requests."
IDEOGRAM_5XX_MESSAGE: Final = "Internal server error."
IDEOGRAM_SAFETY_MESSAGE: Final = "Prompt or provided image failed safety check."

# I7
IDEOGRAM_ASPECT_RESOLUTIONS: Final = {
    "1x1": "1024x1024", "16x9": "1312x736", "9x16": "736x1312", "4x3": "1152x864",
    "3x4": "864x1152", "3x2": "1248x832", "2x3": "832x1248", "16x10": "1280x800",
    "10x16": "800x1280", "2x1": "1408x704", "1x2": "704x1408", "3x1": "1536x512",
    "1x3": "512x1536", "5x4": "1120x896", "4x5": "896x1120",
}  # fmt: skip
