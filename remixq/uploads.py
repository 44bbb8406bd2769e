"""A campaign file uploaded through the dashboard, read as `remixq submit` reads one from disk:
JSONL or CSV (one request per line or row) or a spec (.yaml, .yml, .json), the whole file
validated first, every error located by its line or matrix cell. An upload names no file on
the server: an image field must hold a UUID, an http(s) URL, a data URI or base64.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import PurePosixPath

from remixq.campaigns import read_campaign_bytes
from remixq.errors import FieldError, InvalidInput
from remixq.pricing import Estimate, PriceTable, estimate_all
from remixq.producing import NewJob
from remixq.providers.runware import build_task
from remixq.specs import SUFFIXES, Spec, parse_spec_bytes, read_spec, variant_label
from remixq.url_policy import UrlPolicy

CAMPAIGN_SUFFIXES = (".jsonl", ".ndjson", ".csv")
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
    if suffix in SUFFIXES:
        spec = parse_spec_bytes(data, suffix, source=filename)
        jobs = read_spec(
            spec,
            local_images=None,
            urls=urls,
            max_jobs=max_jobs,
            allow_large=allow_large,
            hard_max=hard_max,
        )
        return Upload(filename, spec, jobs)
    if suffix not in CAMPAIGN_SUFFIXES:
        raise InvalidInput([FieldError("file", filename, ALLOWED)])
    jobs = read_campaign_bytes(data, suffix, local_images=None, urls=urls, source=filename)
    if len(jobs) > hard_max:
        raise InvalidInput(
            [FieldError("file", f"{len(jobs):,} requests", f"at most {hard_max:,} per upload")]
        )
    return Upload(filename, None, jobs)


def estimate(jobs: Sequence[NewJob], table: PriceTable) -> Estimate:
    """What the jobs should cost, as `remixq submit --dry-run` prints it: in all, per model and
    per variant (the requests as they would be stored, each with a taskUUID of its own)."""
    stored = (
        (build_task(new.request, task_uuid=str(uuid.uuid4()), webhook_url=None), new.variant)
        for new in jobs
    )
    return estimate_all(stored, table, label=variant_label)
