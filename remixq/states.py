"""The job state machine: statuses, events and the allowed transitions, as pure functions.

    pending ──enqueue──▶ queued ──claim──▶ submitting ──accept──▶ submitted ──complete──▶ completed
                           ▲                   │                      │
                           └──────release──────┘                      └──result (partial)──┐
    any open status ──fail──▶ failed                                                        ▼
                                                                                        submitted
    queued, submitting ──hold──▶ pending   (the provider refused the account: wait for resume)

    pending, queued, submitting ──cancel──▶ cancelled ──accept, result──▶ submitted
                                                      ──complete──▶ completed

A result or completion may arrive from any open status: a webhook can beat the worker's record of
the acknowledgement, and an ambiguous submission (timed out after the provider accepted it) may
already have been released for another try. A repeated or late event (an acknowledgement after
completion, a duplicated result) is a no-op; anything else not in the table is refused.

`cancelled` (a person or a program cancelled the campaign) is final for submission: nothing
claims, releases, holds, enqueues or relays a cancelled job again, so it is never submitted
after the cancel. It is not final for the provider's news, though: a job that was being
submitted when the cancel landed (or an earlier ambiguous submission the provider did accept)
may still be accepted, and then its images and cost are what it really cost. So the
acknowledgement and a result move a cancelled job on to `submitted` (it then lands like any
other, the reconciler included), a completion to `completed`; a failure, a release or a hold
leaves it cancelled. A cancelled job counts neither as open nor as FINAL: see `SETTLED`.
"""

from __future__ import annotations

from enum import StrEnum


class JobStatus(StrEnum):
    PENDING = "pending"  # committed, not yet handed to the broker
    QUEUED = "queued"  # a message for it is (believed to be) on the broker
    SUBMITTING = "submitting"  # a worker holds it and is talking to the provider
    SUBMITTED = "submitted"  # the provider acknowledged it; results are on their way
    COMPLETED = "completed"  # every expected result is stored
    FAILED = "failed"  # final: the provider refused or failed it, or it expired
    CANCELLED = "cancelled"  # never submitted again; the provider's late news still lands


class Event(StrEnum):
    ENQUEUE = "enqueue"
    CLAIM = "claim"
    RELEASE = "release"  # a transient failure: back to the queue for a later attempt
    HOLD = "hold"  # the account was refused: back to pending until the campaign is resumed
    ACCEPT = "accept"  # the provider acknowledged the task (or said it already had it)
    RESULT = "result"  # some, not all, results stored
    COMPLETE = "complete"  # all results stored
    FAIL = "fail"
    CANCEL = "cancel"  # the campaign was cancelled: whatever was not submitted never will be


class InboxStatus(StrEnum):
    """What became of a body kept in the webhook inbox (`webhook_events.status`)."""

    PROCESSED = "processed"  # applied: its results and errors are stored
    ORPHAN = "orphan"  # no job has its taskUUID (yet): kept for a replay
    INVALID = "invalid"  # not something the provider sends
    REJECTED = "rejected"  # refused: e.g. about another task than its URL was issued for


class AssetStatus(StrEnum):
    """Where an image's durable copy stands (`images.asset_status`, remixq.assets).

        pending ──fetched, verified, stored──▶ stored
           │ ──a transient failure: retried with backoff until the link expires──▶ pending
           │ ──the link expired, or a permanent answer (e.g. 403)──▶ failed
           └ ──the URL, a redirect or a body breaks the fetch policy──▶ refused

    `pending` is the column's default, so ingestion writes nothing more than the image row."""

    PENDING = "pending"  # stored as a result; its copy is not made yet (or is being retried)
    STORED = "stored"  # its bytes are verified and stored (sha256, size, format, dimensions)
    FAILED = "failed"  # no copy could be made (reason): the link expired, or a permanent error
    REFUSED = "refused"  # the fetch policy refused it (reason): a host, address or size


ASSET_FINAL = frozenset({AssetStatus.STORED, AssetStatus.FAILED, AssetStatus.REFUSED})


class PausedBy(StrEnum):
    """Who paused a campaign (`campaigns.paused_by`): the account probe lifts only its own."""

    ACCOUNT = "account"  # the provider refused the account (401/402/403)
    USER = "user"  # a person or a program asked (`remixq pause`, the API)
    # The campaign's spend plus what its open jobs still reserve passed its budget (an
    # estimate was overrun): nothing more is submitted until a resume naming it, once the
    # budget is raised (`remixq budget`) or the campaign cancelled (`remixq.budgets`).
    BUDGET = "budget"


OPEN = frozenset({JobStatus.PENDING, JobStatus.QUEUED, JobStatus.SUBMITTING, JobStatus.SUBMITTED})
FINAL = frozenset({JobStatus.COMPLETED, JobStatus.FAILED})
# Done with, as far as the campaign's progress goes: nothing more will be submitted for them.
SETTLED = FINAL | {JobStatus.CANCELLED}
# Not submitted yet: what a cancel stops (a submitting job's answer may still accept it).
UNSUBMITTED = frozenset({JobStatus.PENDING, JobStatus.QUEUED, JobStatus.SUBMITTING})

_TRANSITIONS: dict[tuple[JobStatus, Event], JobStatus] = {
    (JobStatus.PENDING, Event.ENQUEUE): JobStatus.QUEUED,
    (JobStatus.PENDING, Event.CLAIM): JobStatus.SUBMITTING,
    (JobStatus.QUEUED, Event.CLAIM): JobStatus.SUBMITTING,
    (JobStatus.SUBMITTING, Event.RELEASE): JobStatus.QUEUED,
    (JobStatus.SUBMITTING, Event.HOLD): JobStatus.PENDING,
    (JobStatus.QUEUED, Event.HOLD): JobStatus.PENDING,
    (JobStatus.SUBMITTING, Event.ACCEPT): JobStatus.SUBMITTED,
    **{(status, Event.RESULT): JobStatus.SUBMITTED for status in OPEN - {JobStatus.SUBMITTED}},
    **{(status, Event.COMPLETE): JobStatus.COMPLETED for status in OPEN},
    **{(status, Event.FAIL): JobStatus.FAILED for status in OPEN},
    **{(status, Event.CANCEL): JobStatus.CANCELLED for status in UNSUBMITTED},
    # The provider accepted it before the cancel reached it: it lands like any other.
    (JobStatus.CANCELLED, Event.ACCEPT): JobStatus.SUBMITTED,
    (JobStatus.CANCELLED, Event.RESULT): JobStatus.SUBMITTED,
    (JobStatus.CANCELLED, Event.COMPLETE): JobStatus.COMPLETED,
}

# Events that may legitimately arrive again or late; they change nothing.
_IGNORED: frozenset[tuple[JobStatus, Event]] = frozenset(
    {
        (JobStatus.QUEUED, Event.ENQUEUE),
        (JobStatus.SUBMITTING, Event.CLAIM),
        (JobStatus.SUBMITTED, Event.ACCEPT),
        (JobStatus.SUBMITTED, Event.RESULT),
        (JobStatus.COMPLETED, Event.ACCEPT),
        (JobStatus.COMPLETED, Event.RESULT),
        (JobStatus.COMPLETED, Event.COMPLETE),
        (JobStatus.FAILED, Event.ACCEPT),
        (JobStatus.FAILED, Event.RESULT),
        (JobStatus.FAILED, Event.COMPLETE),
        (JobStatus.FAILED, Event.FAIL),
        # A cancelled job is never given back to the queue, held or enqueued; an answer that
        # refuses it leaves it cancelled (it was not accepted, so it cost nothing).
        (JobStatus.CANCELLED, Event.ENQUEUE),
        (JobStatus.CANCELLED, Event.RELEASE),
        (JobStatus.CANCELLED, Event.HOLD),
        (JobStatus.CANCELLED, Event.FAIL),
        (JobStatus.CANCELLED, Event.CANCEL),
        # Cancelling what was submitted or finished changes nothing: it lands, or has landed.
        (JobStatus.SUBMITTED, Event.CANCEL),
        (JobStatus.COMPLETED, Event.CANCEL),
        (JobStatus.FAILED, Event.CANCEL),
    }
)


class IllegalTransition(Exception):
    def __init__(self, status: JobStatus, event: Event):
        self.status, self.event = status, event
        super().__init__(f"a {status.value} job cannot take the event {event.value!r}")


def next_status(status: JobStatus | str, event: Event) -> JobStatus | None:
    """The status after `event`, or None when the event changes nothing (repeated or late)."""
    status = JobStatus(status)
    if (status, event) in _TRANSITIONS:
        return _TRANSITIONS[(status, event)]
    if (status, event) in _IGNORED:
        return None
    raise IllegalTransition(status, event)


def sources(event: Event) -> frozenset[JobStatus]:
    """The statuses from which `event` moves a job: the guard of a conditional UPDATE."""
    return frozenset(status for status, ev in _TRANSITIONS if ev is event)


def target(event: Event) -> JobStatus:
    """The status `event` leads to: every event in the table has exactly one."""
    (status,) = {to for (_, ev), to in _TRANSITIONS.items() if ev is event}
    return status


class CatchUp(StrEnum):
    """What a schedule does with the occurrences missed while no beat ran (remixq.schedules)."""

    SKIP = "skip"  # record them as skipped; fire only an occurrence that is on time
    LATEST = "latest"  # fire the most recent one, record the others as skipped
    ALL = "all"  # fire them all, up to the schedule's cap (the most recent ones)


class OccurrenceStatus(StrEnum):
    FIRED = "fired"  # its campaign was made
    SKIPPED = "skipped"  # no campaign: the reason says why
