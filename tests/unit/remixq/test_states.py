import contextlib

import pytest

from remixq.states import (
    FINAL,
    OPEN,
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
    for event in Event:
        assert target(event) in JobStatus
        assert sources(event) <= OPEN
