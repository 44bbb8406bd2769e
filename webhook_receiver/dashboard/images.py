"""Images as the dashboard shows them: a job as a gallery card (its images, its reference
image, prompt, model, variant, seeds and costs), the route that serves a generated image (the
stored asset or its thumbnail once remixq.assets has kept it, else a redirect to the
provider's URL), and the route that serves a job's reference image (an inline one decoded, a
URL redirected to). Both need a signed-in session, as every page does."""

from __future__ import annotations

import base64
import binascii
import io
import re
from decimal import Decimal
from typing import Any

from flask import Response, abort, current_app, redirect, request, url_for
from flask.typing import ResponseReturnValue
from PIL import Image as Pillow
from PIL import UnidentifiedImageError
from sqlalchemy import select

from remixq.budgets import usd
from remixq.db import transaction
from remixq.models import Image, Job
from remixq.native import REFUSAL_CODES
from remixq.providers import DEFAULT_PROVIDER, provider_for
from webhook_receiver.dashboard import stored_assets
from webhook_receiver.dashboard.blueprint import bp
from webhook_receiver.state import state

THUMBNAIL = 256  # the gallery's thumbnail size (pixels, longest side)
SIZES = range(64, 1025)  # what ?size= may ask for (remixq.assets.thumbnails)
_UUID = re.compile(r"[0-9a-fA-F]{8}-(?:[0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}")
_DATA_URI = re.compile(r"data:(?P<type>[\w/+.-]+);base64,(?P<data>.*)", re.DOTALL)
SERVED_FORMATS = {"PNG": "image/png", "JPEG": "image/jpeg", "WEBP": "image/webp"}
MAX_REFERENCE_BYTES = 10 * 1024 * 1024  # as remixq.local_images reads them


def reference_of(job: Job) -> str | None:
    """The job's source image as its request names it (its provider knows where: the first of
    inputs.referenceImages or inputs.seedImage for Runware, ``image`` for Ideogram's own API)."""
    return provider_for(job.provider or DEFAULT_PROVIDER).source_image_of(job.request or {})


def _is_url(text: str) -> bool:
    return text.startswith(("https://", "http://"))


def job_card(job: Job) -> dict[str, Any]:
    """What a gallery card shows of a job (its images loaded)."""
    body = job.request or {}
    provider = provider_for(job.provider or DEFAULT_PROVIDER)
    reference = reference_of(job)
    shown_reference = None
    reference_text = None
    if reference is not None:
        if _UUID.fullmatch(reference):
            reference_text = f"a provider image ({reference})"
        else:
            shown_reference = url_for("dashboard.reference", job_id=job.id)
    images = [
        {
            "uuid": str(image.image_uuid),
            "thumb": url_for("dashboard.image", image_uuid=str(image.image_uuid), size=THUMBNAIL),
            "full": url_for("dashboard.image", image_uuid=str(image.image_uuid)),
            "seed": image.seed,
            "cost": None if image.cost is None else usd(image.cost),
            "nsfw": bool(image.nsfw),
            "asset": stored_assets.status_of(image),
        }
        for image in job.images
    ]
    cost = sum((image.cost or Decimal(0) for image in job.images), Decimal(0))
    error = None
    if job.status == "failed" and (job.error_code or job.error_message):
        error = {
            "code": job.error_code,
            "message": job.error_message,
            "refused": job.error_code in REFUSAL_CODES,
        }
    return {
        "id": job.id,
        "task_uuid": str(job.task_uuid),
        "status": job.status,
        "model": job.model,
        "prompt": provider.prompt_of(body),
        "variant": job.variant,
        "error": error,
        "attempts": job.attempts,
        "retry_of": job.retry_of_id,
        "expected": job.number_results,
        "reference": shown_reference,
        "reference_text": reference_text,
        "images": images,
        "unsafe": any(image["nsfw"] for image in images),
        "cost": usd(cost),
        "cost_estimated": not provider.reports_cost,
    }


def _size() -> int | None:
    text = request.args.get("size")
    if text is None:
        return None
    if not (text.isascii() and text.isdigit()) or int(text) not in SIZES:
        abort(400, f"size: {text[:20]!r} is not allowed; a whole number from 64 to 1024")
    return int(text)


@bp.get("/images/<image_uuid>")
def image(image_uuid: str) -> ResponseReturnValue:
    """A generated image (`?size=N`: a thumbnail, N pixels on its longest side): the stored
    asset when there is one, else the provider's URL (a redirect)."""
    if not _UUID.fullmatch(image_uuid):
        abort(404, "no image has that UUID")
    size = _size()
    with transaction(state(current_app).api_sessions) as db:
        found = db.scalar(select(Image).where(Image.image_uuid == image_uuid.lower()))
        if found is None:
            abort(404, "no image has that UUID")
        served = stored_assets.serve(current_app, db, found, size)
    if served is not None:
        return served
    if not found.image_url or not _is_url(found.image_url):
        abort(404, "this image is neither stored here nor at a URL")
    response = redirect(found.image_url, 302)
    response.headers["Cache-Control"] = "private, max-age=300"
    return response


@bp.get("/jobs/<int:job_id>/reference")
def reference(job_id: int) -> ResponseReturnValue:
    """The job's reference image: an inline one (data URI or base64) decoded, if it is a PNG,
    JPEG or WebP image; a URL redirected to."""
    with transaction(state(current_app).api_sessions) as db:
        row = db.execute(select(Job.request, Job.provider).where(Job.id == job_id)).first()
    if row is None or row.request is None:
        abort(404, "no job has that id")
    found = provider_for(row.provider or DEFAULT_PROVIDER).source_image_of(row.request)
    if found is None or _UUID.fullmatch(found):
        abort(404, "the job names no reference image this page can show")
    if _is_url(found):
        return redirect(found, 302)
    match = _DATA_URI.fullmatch(found)
    encoded = match["data"] if match else found
    if len(encoded) > MAX_REFERENCE_BYTES * 4 // 3 + 4:
        abort(404, "the reference image is larger than the dashboard shows")
    try:
        data = base64.b64decode(encoded, validate=True)
        with Pillow.open(io.BytesIO(data)) as decoded:
            kind = SERVED_FORMATS.get(decoded.format or "")
    except (binascii.Error, ValueError, UnidentifiedImageError, OSError):
        kind = None
    if kind is None:
        abort(404, "the reference image is not a PNG, JPEG or WebP image")
    response = Response(data, mimetype=kind)
    response.headers["Cache-Control"] = "private, max-age=3600"
    response.headers["Content-Security-Policy"] = "default-src 'none'; sandbox"
    return response
