"""The submit page: upload a JSONL, CSV or spec file, see its errors line by line (or matrix
cell by cell) or its dry-run estimate, then confirm. Nothing is stored before the confirmation;
the confirmation validates the same content again (it comes back in the form) and stores it
under an idempotency key made for that preview, so a double click makes one campaign."""

from __future__ import annotations

import base64
import binascii
import hashlib
import logging
import secrets
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import PurePosixPath
from typing import Any

from flask import current_app, flash, g, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue

from remixq.budgets import BudgetExceeded, check_budget
from remixq.errors import FieldError, InvalidInput
from remixq.idempotency import IdempotencyKeyReused
from remixq.specs import MAX_NAME_CHARS
from remixq.submission import CampaignNameTaken, create_and_enqueue
from remixq.uploads import Upload, estimate, read_upload
from remixq.url_policy import UrlPolicy
from webhook_receiver.api.schemas import MAX_JOBS
from webhook_receiver.dashboard.blueprint import bp
from webhook_receiver.state import state

log = logging.getLogger("remixq.dashboard")
MAX_ERRORS_SHOWN = 500


@bp.get("/submit")
def submit_form() -> ResponseReturnValue:
    return render_template("dashboard/submit.html", form={}, errors=[], preview=None)


def _form() -> dict[str, Any]:
    return {
        "name": request.form.get("name", "").strip(),
        "budget": request.form.get("budget", "").strip(),
        "allow_large": request.form.get("allow_large") == "on",
    }


def _read(filename: str, data: bytes, form: dict[str, Any]) -> Upload:
    settings = state(current_app).settings
    return read_upload(
        filename,
        data,
        urls=UrlPolicy(refuse_private=settings.refuse_private_urls),
        max_jobs=settings.max_matrix_jobs,
        hard_max=MAX_JOBS,
        allow_large=form["allow_large"],
    )


def _budget(form: dict[str, Any], upload: Upload) -> Decimal | None:
    if form["budget"]:
        return check_budget(form["budget"], "budget")
    return upload.spec.budget_usd if upload.spec is not None else None


def _name(form: dict[str, Any], upload: Upload) -> str:
    name = form["name"] or (upload.spec.name if upload.spec is not None else None)
    if not name:
        stem = PurePosixPath(upload.filename.replace("\\", "/")).stem or "upload"
        name = f"{stem}-{datetime.now(UTC):%Y%m%d-%H%M%S}"
    if len(name) > MAX_NAME_CHARS:
        raise InvalidInput([FieldError("name", name, f"at most {MAX_NAME_CHARS} characters")])
    return name


def _refused(form: dict[str, Any], exc: InvalidInput, status: int = 422) -> ResponseReturnValue:
    errors = exc.errors[:MAX_ERRORS_SHOWN]
    page = render_template(
        "dashboard/submit.html",
        form=form,
        errors=errors,
        errors_left_out=max(0, len(exc.errors) - MAX_ERRORS_SHOWN),
        preview=None,
    )
    return page, status


def _preview(
    form: dict[str, Any], filename: str, data: bytes, upload: Upload, *, status: int = 200
) -> ResponseReturnValue:
    table = state(current_app).prices
    found = estimate(upload.jobs, table)
    preview = {
        "filename": filename,
        "content": base64.b64encode(data).decode(),
        "name": _name(form, upload),
        "budget": _budget(form, upload),
        "estimate": found,
        "price_table": table.source,
        "token": request.form.get("token") or secrets.token_urlsafe(16),
        "sample": upload.jobs[:5],
    }
    return render_template("dashboard/submit.html", form=form, errors=[], preview=preview), status


@bp.post("/submit")
def submit() -> ResponseReturnValue:
    """The dry run: errors, or the estimate and a confirmation form. Stores nothing."""
    form = _form()
    upload_file = request.files.get("file")
    if upload_file is None or not upload_file.filename:
        return _refused(form, InvalidInput([FieldError("file", None, "a file to upload")]))
    data = upload_file.read()
    try:
        upload = _read(upload_file.filename, data, form)
        return _preview(form, upload_file.filename, data, upload)
    except InvalidInput as exc:
        return _refused(form, exc)


@bp.post("/submit/confirm")
def submit_confirm() -> ResponseReturnValue:
    """Store the previewed file as a new campaign (made by the signed-in key) and hand its jobs
    to the broker."""
    form = _form()
    filename = request.form.get("filename", "")
    token = request.form.get("token", "")
    try:
        data = base64.b64decode(request.form.get("content", ""), validate=True)
    except (binascii.Error, ValueError):
        return _refused(form, InvalidInput([FieldError("content", None, "the previewed file")]))
    if not filename or not 8 <= len(token) <= 64:
        return _refused(form, InvalidInput([FieldError("token", None, "a preview's form")]))
    receiver = state(current_app)
    try:
        upload = _read(filename, data, form)
        name = _name(form, upload)
        budget = _budget(form, upload)
        created = create_and_enqueue(
            receiver.api_sessions,
            name=name,
            new_jobs=upload.jobs,
            enqueue=receiver.enqueue,
            api_key_id=g.user.id,
            idempotency_key=f"dashboard:{token}",
            request_sha256=hashlib.sha256(
                b"\0".join([data, name.encode(), str(budget).encode()])
            ).hexdigest(),
            budget_usd=budget,
            prices=receiver.prices,
            failover=upload.spec.failover if upload.spec is not None else None,
        )
    except (CampaignNameTaken, IdempotencyKeyReused) as exc:
        refusal = InvalidInput([FieldError("name", form["name"] or None, str(exc))])
        return _refused(form, refusal, 409)
    except BudgetExceeded as exc:
        return _refused(form, exc, 409)
    except InvalidInput as exc:
        return _refused(form, exc)
    log.info(
        "dashboard campaign created",
        extra={
            "campaign_id": created.campaign_id,
            "jobs": len(created.job_ids),
            "key_name": g.user.name,
        },
    )
    if created.replayed:
        flash("This preview was confirmed already: here is the campaign it made.", "info")
    elif created.broker_error is not None:
        flash(
            f"Stored {len(created.job_ids)} jobs; the broker is unreachable, the relay hands"
            " them over when it is back.",
            "info",
        )
    else:
        flash(f"Submitted {len(created.job_ids)} jobs.", "info")
    return redirect(url_for("dashboard.campaign", campaign_id=created.campaign_id))
