"""A schedule's campaign file, stored as text when the schedule is added (or updated) and read
again at each occurrence: a spec (.yaml, .yml, .json) or requests (.jsonl, .ndjson, .csv), by
the suffix of its name, as `remixq submit` reads files.

The text is all a schedule keeps, so it must stand alone: an image field holds an image
reference (a UUID, an http(s) URL, a data URI or base64), never a local path that a beat on
another machine could not read; and no request names a taskUUID, since each occurrence's jobs
get new ones.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

from remixq.campaigns import SUFFIXES as REQUEST_SUFFIXES
from remixq.campaigns import read_campaign_text
from remixq.config import Settings
from remixq.errors import FieldError, InvalidInput
from remixq.producing import NewJob
from remixq.specs import SUFFIXES as SPEC_SUFFIXES
from remixq.specs import load_spec_text, read_spec
from remixq.url_policy import UrlPolicy

MAX_SOURCE_BYTES = 16 * 1024 * 1024
MAX_SOURCE_NAME_CHARS = 255
SUFFIXES = (*REQUEST_SUFFIXES, *SPEC_SUFFIXES)
NAME_ALLOWED = "a file name ending in " + ", ".join(SUFFIXES) + " (its suffix is its format)"


@dataclass(frozen=True)
class Rules:
    """What a stored file may hold: the hosts its URLs may name, and the most jobs it may make
    (REMIXQ_MAX_MATRIX_JOBS: a schedule has no --allow-large)."""

    urls: UrlPolicy
    max_jobs: int

    @classmethod
    def of(cls, settings: Settings) -> Rules:
        return cls(UrlPolicy(refuse_private=settings.refuse_private_urls), settings.max_matrix_jobs)


@dataclass(frozen=True)
class Source:
    """A stored file read: its jobs, and the budget its spec names (None: none)."""

    jobs: list[NewJob]
    spec_budget: Decimal | None = None
    spec_failover: str | None = None  # a spec's `failover` (remixq.failover): each campaign's


def read_source(text: str, name: str, rules: Rules) -> Source:
    """The jobs of a stored file's text; InvalidInput naming every problem (the file, or the
    line or axis values and the field)."""
    check_name(name)
    if len(text.encode()) > MAX_SOURCE_BYTES:
        raise InvalidInput(
            [FieldError("file", name, f"a file of at most {MAX_SOURCE_BYTES // 2**20} MiB")]
        )
    budget = None
    failover = None
    if name.lower().endswith(SPEC_SUFFIXES):
        spec = load_spec_text(text, name)
        budget, failover = spec.budget_usd, spec.failover
        jobs = read_spec(
            spec,
            local_images=None,  # no local file: the text must stand alone
            urls=rules.urls,
            max_jobs=rules.max_jobs,
            allow_large=True,
            hard_max=rules.max_jobs,
        )
    else:
        jobs = read_campaign_text(text, name, local_images=None, urls=rules.urls)
    named = [
        FieldError(
            "taskUUID",
            job.request.task_uuid,
            "no taskUUID: each occurrence's jobs get new ones",
            job.location,
        )
        for job in jobs
        if job.request.task_uuid is not None
    ]
    if named:
        raise InvalidInput(named)
    return Source(jobs, budget, failover)


def check_name(name: object) -> str:
    if (
        not isinstance(name, str)
        or not 1 <= len(name) <= MAX_SOURCE_NAME_CHARS
        or not name.lower().endswith(SUFFIXES)
    ):
        raise InvalidInput([FieldError("file", name, NAME_ALLOWED)])
    return name


def read_file(path: Path) -> tuple[str, str]:
    """A campaign file's text and name, as `schedule add` stores them; InvalidInput naming the
    file when it is missing, too large or not UTF-8 text."""
    check_name(path.name)
    if not path.is_file():
        raise InvalidInput([FieldError("file", str(path), "an existing campaign file")])
    if path.stat().st_size > MAX_SOURCE_BYTES:
        raise InvalidInput(
            [FieldError("file", str(path), f"a file of at most {MAX_SOURCE_BYTES // 2**20} MiB")]
        )
    try:
        return path.read_text(encoding="utf-8-sig"), path.name
    except UnicodeDecodeError as exc:
        raise InvalidInput(
            [FieldError("file", str(path), f"a UTF-8 text file (byte {exc.start} is not UTF-8)")]
        ) from None
