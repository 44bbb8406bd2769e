"""When a schedule's occurrences are: cron expressions on a zone's wall clock, across the
daylight-saving changes in both directions (Europe/Berlin: 2027-03-28 02:00 CET jumps to 03:00
CEST; 2027-10-31 03:00 CEST falls back to 02:00 CET), and the expressions and zones refused."""

from __future__ import annotations

from datetime import UTC, datetime
from itertools import islice

import pytest

from remixq.errors import InvalidInput
from remixq.schedules.cron import parse_cron

BERLIN = "Europe/Berlin"


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)  # type: ignore[misc]


def local_times(expression: str, start: datetime, count: int, zone: str = BERLIN) -> list[str]:
    cron = parse_cron(expression, zone)
    return [cron.local(at).isoformat() for at in islice(cron.after(start), count)]


def test_a_time_in_the_spring_gap_fires_once_right_after_it() -> None:
    assert local_times("30 2 * * *", utc(2027, 3, 27, 12), 3) == [
        "2027-03-28T03:00:00+02:00",  # 02:30 does not exist that night
        "2027-03-29T02:30:00+02:00",
        "2027-03-30T02:30:00+02:00",
    ]


def test_every_time_in_the_gap_is_one_occurrence_after_it() -> None:
    # 02:00, 02:15, 02:30 and 02:45 are all skipped: one occurrence at 03:00.
    assert local_times("*/15 2 * * *", utc(2027, 3, 27, 12), 3) == [
        "2027-03-28T03:00:00+02:00",
        "2027-03-29T02:00:00+02:00",
        "2027-03-29T02:15:00+02:00",
    ]
    # Hourly: 02:00 is swallowed by 03:00, which fires once.
    assert local_times("0 * * * *", utc(2027, 3, 27, 23, 30), 3) == [
        "2027-03-28T01:00:00+01:00",
        "2027-03-28T03:00:00+02:00",
        "2027-03-28T04:00:00+02:00",
    ]


def test_a_repeated_time_in_autumn_fires_once_at_its_first_pass() -> None:
    assert local_times("30 2 * * *", utc(2027, 10, 30, 12), 2) == [
        "2027-10-31T02:30:00+02:00",  # not again at 02:30+01:00
        "2027-11-01T02:30:00+01:00",
    ]
    assert local_times("0 * * * *", utc(2027, 10, 30, 22, 30), 3) == [
        "2027-10-31T01:00:00+02:00",
        "2027-10-31T02:00:00+02:00",
        "2027-10-31T03:00:00+01:00",  # 02:00+01:00 was 02:00 already: two real hours later
    ]
    # From inside the second pass (02:10 CET), the next one is after the repeat.
    assert local_times("*/30 * * * *", utc(2027, 10, 31, 1, 10), 1) == ["2027-10-31T03:00:00+01:00"]


def test_the_latest_occurrence_before_an_instant_in_the_repeated_hour() -> None:
    cron = parse_cron("30 2 * * *", BERLIN)
    # 01:10 UTC is 02:10 CET, in the second pass: 02:30 CEST (00:30 UTC) is before it.
    latest = next(cron.until(utc(2027, 10, 31, 1, 10)))
    assert latest == utc(2027, 10, 31, 0, 30)
    spring = parse_cron("*/15 2 * * *", BERLIN)
    assert [a.isoformat() for a in islice(spring.until(utc(2027, 3, 28, 1, 5)), 2)] == [
        "2027-03-28T01:00:00+00:00",  # the gap's one occurrence
        "2027-03-27T01:45:00+00:00",
    ]


def test_other_zones_and_aliases() -> None:
    assert local_times("0 9 * * MON", utc(2027, 3, 10), 2, "America/New_York") == [
        "2027-03-15T09:00:00-04:00",  # New York changed on 14 March
        "2027-03-22T09:00:00-04:00",
    ]
    assert local_times("@daily", utc(2027, 1, 1, 12), 1, "UTC") == ["2027-01-02T00:00:00+00:00"]


@pytest.mark.parametrize(
    ("expression", "zone", "field"),
    [
        ("61 * * * *", BERLIN, "cron"),
        ("0 9 * *", BERLIN, "cron"),  # four fields
        ("* * * * * *", BERLIN, "cron"),  # seconds are not matched
        ("H * * * *", BERLIN, "cron"),  # hashed: not the same on every beat
        ("R 9 * * *", BERLIN, "cron"),  # random
        ("0 0 31 2 *", BERLIN, "cron"),  # never matches
        ("@fortnightly", BERLIN, "cron"),
        ("0 9 * * MON", "Europe/Atlantis", "timezone"),
        ("0 9 * * MON", "localtime", "timezone"),  # the machine's own zone
        ("0 9 * * MON", "../../etc/passwd", "timezone"),
    ],
)
def test_refused_expressions_and_zones_name_the_field(
    expression: str, zone: str, field: str
) -> None:
    with pytest.raises(InvalidInput) as refused:
        parse_cron(expression, zone)
    assert [e.field for e in refused.value.errors] == [field]
    assert repr(expression if field == "cron" else zone) in str(refused.value)
