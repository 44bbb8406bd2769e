"""Every point the Runware contract leaves open, decided once, in one place.

The contract is the provider documentation copied into ``../shared/spec`` (next to this
repository: ``/work/shared/spec``). Each constant below names the page it relies on and says
what was decided where that page is silent or contradicts another one. Code elsewhere in
``remixq.providers.runware`` imports these names instead of repeating the numbers, so changing
a decision is a one-line edit here (plus the test that pins it).

Page keys: 001 = Ideogram 1.0 Remix (``ideogram:1@2``), 000 = Ideogram 3.0 Remix
(``ideogram:4@2``), 003/002 = Ideogram 4.0 Remix (``ideogram:4@remix``), 004 = Ideogram's own
"Remix with Ideogram 3.0" API, platform = ``runware-platform.md``.
"""

from __future__ import annotations

from typing import Final

# --- Request fields remixq owns ---------------------------------------------------------------

# Pages 000/001/003 document these as user options, but remixq always submits asynchronously,
# always asks for the cost (the ledger needs it) and owns the webhook URL (it carries the
# receiver's secret, platform section 2). A user value would break those guarantees, so it is
# refused rather than silently overwritten.
MANAGED_FIELDS: Final = ("webhookURL", "deliveryMethod", "includeCost")

# --- Image inputs ----------------------------------------------------------------------------

# 001 documents inputs.referenceImages as a required "array of strings" with no item count;
# 000 says "items: 1" for the same field, and the 2025 provider page (platform section 6)
# says remix takes "1 image, required". A remix has one source image, so both models take
# exactly one.
REFERENCE_IMAGES_MIN: Final = 1
REFERENCE_IMAGES_MAX: Final = 1

# 000 gives styleReferenceImages "min items: 1, max items: 4"; 001 gives no count. The 2025
# provider page says "styleReferenceImages (<=4)" for the Ideogram remix family, so 1.0 uses
# the same 1..4.
STYLE_REFERENCE_IMAGES_MIN: Final = 1
STYLE_REFERENCE_IMAGES_MAX: Final = 4

# 000: characterReferenceImages and characterReferenceImagesMask both say "items: 1"; read as
# exactly one (004 also says only one character reference is supported).
CHARACTER_REFERENCE_IMAGES_MIN: Final = 1
CHARACTER_REFERENCE_IMAGES_MAX: Final = 1

# Pages say an image is a "UUID, URL, Data URI, or Base64" and nothing more. Decided:
#   UUID     - any canonical 8-4-4-4-12 hex UUID (an image uploaded to Runware earlier);
#   URL      - http or https with a host;
#   data URI - data:image/<subtype>;base64,<valid base64>;
#   base64   - valid padded base64 whose bytes start like one of the formats below, because
#              without a signature any short word ("cafe") would pass as base64.
# 004: "Supported image formats include JPEG, PNG, and WebP."
RAW_BASE64_IMAGE_SIGNATURES: Final = {
    "JPEG": b"\xff\xd8\xff",
    "PNG": b"\x89PNG\r\n\x1a\n",
    "WEBP": b"RIFF",  # followed by 4 size bytes and b"WEBP", checked in schemas
}

# --- Dimensions -------------------------------------------------------------------------------

# 001 and 003 mark width and height "Required: true"; the SDK types in platform section 5b mark
# them required for ideogram:1@2 and ideogram:4@2 (optional for 4@remix), and every example
# on 000/001 sends both. The pages also say "width and height must be used together", which
# reads as if both could be omitted. Decided: the pages' own "Required: true" wins, for all
# three models (000 lost the markers in its rendering, all its examples send both).
DIMENSIONS_REQUIRED: Final = frozenset({"ideogram:1@2", "ideogram:4@2", "ideogram:4@remix"})

# 000 (3.0) has no dimension table, although the platform summary mentions a "1K dimension
# table"; its examples use 1344x768 and 1280x800, which are in no other table. No table is
# invented: any positive width and height are accepted and the provider has the last word.
V3_SIZES: Final[tuple[tuple[int, int], ...] | None] = None  # None = no table to check against

# --- Style options ----------------------------------------------------------------------------

# 004 (Ideogram's own API, same 3.0 model): style codes "Cannot be used in conjunction with
# style_reference_images or style_type". 000 is silent; the provider's rule is enforced so the
# job fails here instead of after submission.
STYLE_CODE_EXCLUDES: Final = ("styleReferenceImages", "styleType")

# --- strength (4.0) ---------------------------------------------------------------------------

# 003: strength is a float from 0 to 1 with "step: 0.01". Floats are not exact, so a value is on
# the grid when value*100 is within this distance of an integer (0.29*100 = 28.999999999999996).
STRENGTH_STEP_TOLERANCE: Final = 1e-9

# --- Per-task error codes ---------------------------------------------------------------------

# platform sections 1, 3 and 9 show codes such as timeoutProvider and conflictTaskUUID but
# document no retryable/permanent split. Decided: only codes that name a capacity, timeout or
# server-side failure are worth retrying with the same taskUUID; everything else (validation,
# content, balance, auth, unknown codes) fails the job with the provider's code and message.
TRANSIENT_TASK_ERROR_CODES: Final = frozenset(
    {
        "timeoutProvider",
        "noAvailableServer",
        "serviceUnavailable",
        "internalServerError",
        "rateLimitExceeded",
    }
)

# platform section 8 (sdk-python commit "Handle conflictTaskUUID on retry"): resubmitting a
# taskUUID the provider already has answers with this code. It means "already accepted", not
# failure, which is what makes resubmission after a lost answer safe.
CONFLICT_TASK_UUID_CODE: Final = "conflictTaskUUID"

# --- HTTP answers -----------------------------------------------------------------------------

# platform section 1: "errors are scoped to the specific task that failed, while other tasks in
# the same request may still succeed", but the status code of a partly failed batch is not
# documented. Decided: a 400 whose errors ALL carry a taskUUID of a task in this request is a
# set of per-task answers (like a 2xx with errors); a 400 with any untagged error is a refusal
# of the whole request (BadRequest).
PER_TASK_400: Final = True

# A 2xx whose errors carry no taskUUID cannot be attributed to a task; it is treated as an
# unexpected answer (UnexpectedResponse) rather than guessed onto one task.
UNTAGGED_2XX_ERRORS_ARE_UNEXPECTED: Final = True

# platform section 10: Retry-After is "not mentioned anywhere". It is honoured when present
# (seconds or an HTTP date) and otherwise left to the caller's backoff.
HONOUR_RETRY_AFTER: Final = True

# --- Result and error items (webhooks and getResponse alike: ``results.kind_of``) ------------

# platform section 3: statuses are processing | success | error; an older page says pending;
# sdk-python also keeps polling on queued, scheduled and waiting. All of these are
# non-terminal. An unknown status word is treated as non-terminal too (the job's own deadline
# ends the wait) rather than as a failure.
NON_TERMINAL_STATUSES: Final = frozenset(
    {"processing", "pending", "queued", "scheduled", "waiting"}
)
SUCCESS_STATUS: Final = "success"
ERROR_STATUS: Final = "error"

# An item with no status at all is not described anywhere. One that carries an imageUUID is a
# finished image (the shape of a sync result, platform section 9); one without is still running.
STATUSLESS_ITEM_WITH_IMAGE_IS_SUCCESS: Final = True

# ... unless it carries an error: the failed-task webhook body is not documented (platform
# section 2), and a flat error object (a ``code``, or runware-python's nested ``error`` object)
# reports a failure, even beside an imageUUID.
STATUSLESS_ITEM_WITH_ERROR_IS_ERROR: Final = True

# --- Failover (remixq.failover) ---------------------------------------------------------------

# platform section 3 documents getResponse's answers for a task it has (processing, success,
# error) but not what it says of one it never took, nor whether a failed task may still deliver.
# Decided: an answer with no result item and nothing processing (only errors, e.g. the
# taskFailedOrNotFound the simulator gives an unknown task, or an empty list) means Runware has
# no result for the task, so it may be re-run elsewhere; any result or in-progress item vetoes
# it. An answer that fails (HTTP 5xx, no connection) decides nothing.
POLL_WITHOUT_RESULTS_MEANS_NONE: Final = True

# No page says whether a task that ended in error is charged. Decided: it is not (no image was
# delivered, and includeCost reports cost on result items only), so a failed-over job's budget
# counts the re-run alone; should a late result arrive, its cost is recorded on its images but
# not counted in the budget view (one provider per job).
FAILED_TASK_CHARGED: Final = False
