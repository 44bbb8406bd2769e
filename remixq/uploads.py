"""A campaign file uploaded through the dashboard, read as `remixq submit` reads one from disk:
JSONL or CSV (one request per line or row) or a spec (.yaml, .yml, .json), the whole file
validated first, every error located by its line or matrix cell. An upload names no file on
the server: an image field must hold a UUID, an http(s) URL, a data URI or base64.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import PurePosixPath

from remixq.campaigns import SUFFIXES as CAMPAIGN_SUFFIXES
from remixq.campaigns import read_campaign_text
from remixq.errors import FieldError, InvalidInput
from remixq.estimates import estimate_jobs
from remixq.pricing import Estimate, PriceTable
from remixq.producing import NewJob
from remixq.specs import MAX_SPEC_BYTES, SUFFIXES, Spec, load_spec_text, read_spec
from remixq.url_policy import UrlPolicy

ALLOWED = "a .jsonl, .ndjson or .csv campaign file, or a .yaml, .yml or .json spec"


@dataclass(frozen=True)
class Upload:
    """An uploaded file's jobs, and its spec when it is one."""

    filename: str
    spec: Spec | None
    jobs: list[NewJob]


def read_upload(
    filename: str,
    data: bytes,
    *,
    urls: UrlPolicy,
    max_jobs: int,
    hard_max: int,
    allow_large: bool = False,
) -> Upload:
    """Validate and expand an uploaded campaign file; InvalidInput listing every problem. A
    matrix past `max_jobs` needs `allow_large`; nothing expands past `hard_max` jobs."""
    suffix = PurePosixPath(filename.replace("\\", "/")).suffix.lower()
    if suffix not in (*SUFFIXES, *CAMPAIGN_SUFFIXES):
        raise InvalidInput([FieldError("file", filename, ALLOWED)])
    if suffix in SUFFIXES and len(data) > MAX_SPEC_BYTES:
        raise InvalidInput([FieldError("file", filename, "a spec file under 16 MiB")])
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InvalidInput(
            [FieldError("file", filename, f"a UTF-8 text file (byte {exc.start} is not UTF-8)")]
        ) from None
    if suffix in SUFFIXES:
        spec = load_spec_text(text, filename)
        jobs = read_spec(
            spec,
            local_images=None,
            urls=urls,
            max_jobs=max_jobs,
            allow_large=allow_large,
            hard_max=hard_max,
        )
        return Upload(filename, spec, jobs)
    jobs = read_campaign_text(text, filename, local_images=None, urls=urls)
    if len(jobs) > hard_max:
        raise InvalidInput(
            [FieldError("file", f"{len(jobs):,} requests", f"at most {hard_max:,} per upload")]
        )
    return Upload(filename, None, jobs)


def estimate(jobs: Sequence[NewJob], table: PriceTable) -> Estimate:
    """What the jobs should cost, as `remixq submit --dry-run` prints it: in all, per model and
    per variant (the requests as they would be stored, each with a taskUUID of its own)."""
    return estimate_jobs(jobs, table)
