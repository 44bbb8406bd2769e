import contextlib

import pytest

from remixq.states import (
    FINAL,
    OPEN,
    SETTLED,
    UNSUBMITTED,
    Event,
    IllegalTransition,
    JobStatus,
    next_status,
    sources,
    target,
)


@pytest.mark.parametrize(
    ("status", "event", "expected"),
    [
        (JobStatus.PENDING, Event.ENQUEUE, JobStatus.QUEUED),
        (JobStatus.QUEUED, Event.CLAIM, JobStatus.SUBMITTING),
        (JobStatus.SUBMITTING, Event.ACCEPT, JobStatus.SUBMITTED),
        (JobStatus.SUBMITTING, Event.RELEASE, JobStatus.QUEUED),
        (JobStatus.SUBMITTED, Event.COMPLETE, JobStatus.COMPLETED),
        (JobStatus.SUBMITTING, Event.RESULT, JobStatus.SUBMITTED),  # webhook before the ack
        (JobStatus.QUEUED, Event.COMPLETE, JobStatus.COMPLETED),  # accepted, then timed out
        (JobStatus.SUBMITTED, Event.FAIL, JobStatus.FAILED),
        (JobStatus.PENDING, Event.CANCEL, JobStatus.CANCELLED),
        (JobStatus.QUEUED, Event.CANCEL, JobStatus.CANCELLED),
        (JobStatus.SUBMITTING, Event.CANCEL, JobStatus.CANCELLED),  # its answer may accept it
        # The provider accepted it before the cancel reached it: it lands like any other.
        (JobStatus.CANCELLED, Event.ACCEPT, JobStatus.SUBMITTED),
        (JobStatus.CANCELLED, Event.RESULT, JobStatus.SUBMITTED),
        (JobStatus.CANCELLED, Event.COMPLETE, JobStatus.COMPLETED),
    ],
)
def test_allowed_transitions(status: JobStatus, event: Event, expected: JobStatus) -> None:
    assert next_status(status, event) is expected


@pytest.mark.parametrize(
    ("status", "event"),
    [
        (JobStatus.SUBMITTED, Event.ACCEPT),
        (JobStatus.COMPLETED, Event.ACCEPT),
        (JobStatus.COMPLETED, Event.RESULT),
        (JobStatus.COMPLETED, Event.COMPLETE),
        (JobStatus.FAILED, Event.FAIL),
        (JobStatus.QUEUED, Event.ENQUEUE),
        # A cancelled job is never handed back to the queue, held, or failed by a refusal...
        (JobStatus.CANCELLED, Event.RELEASE),
        (JobStatus.CANCELLED, Event.HOLD),
        (JobStatus.CANCELLED, Event.ENQUEUE),
        (JobStatus.CANCELLED, Event.FAIL),
        (JobStatus.CANCELLED, Event.CANCEL),
        # ... and a cancel changes nothing the provider already has, or that has finished.
        (JobStatus.SUBMITTED, Event.CANCEL),
        (JobStatus.COMPLETED, Event.CANCEL),
        (JobStatus.FAILED, Event.CANCEL),
    ],
)
def test_repeated_or_late_events_are_no_ops(status: JobStatus, event: Event) -> None:
    assert next_status(status, event) is None


@pytest.mark.parametrize(
    ("status", "event"),
    [
        (JobStatus.PENDING, Event.ACCEPT),
        (JobStatus.COMPLETED, Event.FAIL),
        (JobStatus.COMPLETED, Event.CLAIM),
        (JobStatus.FAILED, Event.CLAIM),
        (JobStatus.SUBMITTED, Event.RELEASE),
        (JobStatus.FAILED, Event.ENQUEUE),
        (JobStatus.CANCELLED, Event.CLAIM),  # never submitted after the cancel
    ],
)
def test_illegal_transitions_are_refused(status: JobStatus, event: Event) -> None:
    with pytest.raises(IllegalTransition, match=status.value):
        next_status(status, event)


def test_final_statuses_take_no_event_that_changes_them() -> None:
    for status in FINAL:
        for event in Event:
            with contextlib.suppress(IllegalTransition):
                assert next_status(status, event) is None


def test_every_event_has_one_target_and_open_sources() -> None:
    """Only open jobs move, but for a cancelled one the provider turns out to have accepted."""
    for event in Event:
        assert target(event) in JobStatus
        assert sources(event) <= OPEN | {JobStatus.CANCELLED}
    moved_on = {event for event in Event if JobStatus.CANCELLED in sources(event)}
    assert moved_on == {Event.ACCEPT, Event.RESULT, Event.COMPLETE}


def test_a_cancelled_job_is_never_submitted_again() -> None:
    """No event that leads towards a submission (enqueue, claim, release, hold) takes a
    cancelled job anywhere: it is settled for the campaign, though not final for the provider."""
    for event in (Event.ENQUEUE, Event.CLAIM, Event.RELEASE, Event.HOLD):
        assert JobStatus.CANCELLED not in sources(event)
    assert sources(Event.CANCEL) == UNSUBMITTED
    assert target(Event.CANCEL) is JobStatus.CANCELLED
    assert JobStatus.CANCELLED in SETTLED
    assert JobStatus.CANCELLED not in OPEN | FINAL
