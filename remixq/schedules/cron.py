"""When a schedule's occurrences are: a cron expression read on the wall clock of an IANA time
zone, turned into UTC instants with one rule for the daylight-saving changes.

croniter parses the expression and finds the matching local times on a naive wall clock (one
that never jumps). Each local time is then placed in UTC by `instant`:

- a local time that exists once is that instant;
- a local time the clocks skip (spring forward: 02:30 in Europe/Berlin on the last Sunday of
  March) fires once, at the first instant after the gap (03:00 CEST); several skipped times (an
  every-15-minutes schedule between 02:00 and 03:00) are one occurrence there;
- a local time the clocks repeat (fall back: 02:30 on the last Sunday of October) fires once, at
  its first pass (02:30 CEST, not 02:30 CET).

croniter's own zone handling fires a repeated time twice and cronsim's fires repeated times of
some expressions twice and drops skipped times of others, so neither is used for this step.
Only whole minutes are matched: an expression has five fields (or is an @-alias), and the
hashed (H) and random (R) forms are refused, since every beat must compute the same times.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from croniter import CroniterError, croniter

from remixq.errors import FieldError, InvalidInput

ALIASES = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
_NAMES = re.compile(r"JAN|FEB|MAR|APR|MAY|JUN|JUL|AUG|SEP|OCT|NOV|DEC|MON|TUE|WED|THU|FRI|SAT|SUN")
_FIELD = re.compile(r"[0-9*/,\-?L#]+")
CRON_ALLOWED = (
    "a cron expression of five fields (minute hour day-of-month month day-of-week, e.g."
    ' "0 9 * * MON") or one of ' + ", ".join(ALIASES)
)
MAX_CRON_CHARS = 200
# How far a local time may lie after the instant it maps to: a repeated hour (fall back) maps
# the later local times of its second pass to their first; no zone repeats more than this.
_REPEAT_MARGIN = timedelta(hours=6)


@dataclass(frozen=True)
class Cron:
    """A checked cron expression in a time zone: its occurrences as UTC instants."""

    expression: str
    zone: ZoneInfo

    @property
    def timezone(self) -> str:
        return str(self.zone.key)

    def after(self, instant: datetime) -> Iterator[datetime]:
        """The occurrences strictly after `instant`, earliest first (UTC, whole seconds)."""
        walls = croniter(self.expression, _wall(instant, self.zone))
        previous = None
        while True:
            at = self.instant(walls.get_next(datetime))
            if at > instant and at != previous:
                previous = at
                yield at

    def until(self, instant: datetime) -> Iterator[datetime]:
        """The occurrences at or before `instant`, latest first (UTC, whole seconds)."""
        walls = croniter(self.expression, _wall(instant, self.zone) + _REPEAT_MARGIN)
        previous = None
        while True:
            at = self.instant(walls.get_prev(datetime))
            if at <= instant and at != previous:
                previous = at
                yield at

    def next_after(self, instant: datetime) -> datetime | None:
        """The first occurrence after `instant`; None if the expression never matches again."""
        try:
            return next(self.after(instant))
        except CroniterError:
            return None

    def instant(self, wall: datetime) -> datetime:
        """The UTC instant of naive local time `wall` (the module's rule for skipped and
        repeated times)."""
        first = wall.replace(tzinfo=self.zone, fold=0).astimezone(UTC)
        if _wall(first, self.zone) == wall:
            return first  # it exists (when repeated, fold 0 is its first pass)
        return _gap_end(wall, self.zone)

    def local(self, instant: datetime) -> datetime:
        """`instant` on the zone's clock (aware, with its offset)."""
        return instant.astimezone(self.zone)


def _wall(instant: datetime, zone: ZoneInfo) -> datetime:
    return instant.astimezone(zone).replace(tzinfo=None, microsecond=0)


def _gap_end(wall: datetime, zone: ZoneInfo) -> datetime:
    """The first instant after the gap that swallowed `wall`: between the two readings of
    `wall` (with the offset after the change, then before it) lies the change; the search
    finds its second."""
    low = int(wall.replace(tzinfo=zone, fold=1).timestamp())
    high = int(wall.replace(tzinfo=zone, fold=0).timestamp())
    if low > high:  # a zone whose offset fell across `wall`'s reading; never for a gap
        low, high = high, low
    after = datetime.fromtimestamp(high, zone).utcoffset()
    while high - low > 1:
        middle = (low + high) // 2
        if datetime.fromtimestamp(middle, zone).utcoffset() == after:
            high = middle
        else:
            low = middle
    return datetime.fromtimestamp(high, UTC)


@cache
def _zone_names() -> frozenset[str]:
    # Without the names that mean this machine's own zone: every beat must read one clock.
    return frozenset(available_timezones()) - {"localtime", "posixrules"}


def zone(name: object, field: str = "timezone") -> ZoneInfo:
    """The IANA time zone `name`, or InvalidInput naming the field."""
    allowed = 'an IANA time zone name, e.g. "Europe/Berlin", "America/New_York" or "UTC"'
    if not isinstance(name, str) or name not in _zone_names():
        raise InvalidInput([FieldError(field, name, allowed)])
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise InvalidInput([FieldError(field, name, allowed)]) from None


def parse_cron(expression: object, timezone: object, *, field: str = "cron") -> Cron:
    """A checked `Cron`, or InvalidInput naming what is wrong (the expression, the zone, or
    both). The expression must match at least once in the coming years."""
    errors: list[FieldError] = []
    found_zone = None
    try:
        found_zone = zone(timezone)
    except InvalidInput as exc:
        errors.extend(exc.errors)
    text = _expression(expression, field, errors)
    if text is not None and found_zone is not None:
        cron = Cron(text, found_zone)
        try:
            next(cron.after(datetime.now(UTC)))
        except CroniterError:
            errors.append(
                FieldError(field, expression, "an expression that matches a date (not 31 Feb)")
            )
    if errors:
        raise InvalidInput(errors)
    assert text is not None and found_zone is not None
    return Cron(text, found_zone)


def _expression(expression: object, field: str, errors: list[FieldError]) -> str | None:
    """The expression normalised (an alias expanded, single spaces), or None with an error."""
    if not isinstance(expression, str) or len(expression) > MAX_CRON_CHARS:
        errors.append(FieldError(field, expression, CRON_ALLOWED))
        return None
    text = " ".join(expression.split())
    if text.startswith("@"):
        if text.lower() in ALIASES:
            return ALIASES[text.lower()]
        errors.append(FieldError(field, expression, CRON_ALLOWED))
        return None
    fields = text.split(" ")
    words = [_NAMES.sub("0", part.upper()) for part in fields]
    if len(fields) != 5 or not all(_FIELD.fullmatch(word) for word in words):
        errors.append(FieldError(field, expression, CRON_ALLOWED))
        return None
    try:
        croniter(text, datetime(2000, 1, 1))  # noqa: DTZ001 (a naive wall clock, on purpose)
    except CroniterError as exc:
        errors.append(FieldError(field, expression, f"{CRON_ALLOWED} ({exc})"))
        return None
    return text
