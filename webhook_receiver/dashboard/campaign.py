"""A campaign's pages: its overview (live progress, controls, exports, charts, variants), its
gallery (filtered by status, model and variant values, a keyset page at a time), the
side-by-side comparison of one axis's values, and its failed jobs."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from flask import abort, current_app, render_template, request
from flask.typing import ResponseReturnValue
from sqlalchemy import select
from sqlalchemy.orm import Session

from remixq import gallery
from remixq.budgets import cost_report
from remixq.db import transaction
from remixq.errors import InvalidInput, UnknownCampaign
from remixq.models import Job
from remixq.reports import campaign_summary, jobs_page
from remixq.specs import variant_label
from remixq.timeline import spend_over_time
from webhook_receiver.dashboard import charts, schedules
from webhook_receiver.dashboard.blueprint import bp
from webhook_receiver.dashboard.images import job_card
from webhook_receiver.dashboard.params import optional_id
from webhook_receiver.dashboard.views import campaign_view
from webhook_receiver.state import state

GALLERY_PAGE = 24
FAILED_PAGE = 50
COMPARE_PER_VALUE = 12
VARIANT_ROWS = 50  # variants listed (and charted) on the overview, the dearest first


def _sessions() -> Any:
    return state(current_app).api_sessions


def _view(db: Session, campaign_id: int) -> dict[str, Any]:
    summary = campaign_summary(db, campaign_id)
    if summary is None:
        raise UnknownCampaign(campaign_id)
    models = gallery.model_names(db, campaign_id)
    refs = schedules.schedule_refs(db, [campaign_id])
    return campaign_view(summary, models=models, schedule=refs.get(campaign_id))


@bp.get("/campaigns/<int:campaign_id>")
def campaign(campaign_id: int) -> ResponseReturnValue:
    with transaction(_sessions()) as db:
        view = _view(db, campaign_id)
        timeline = spend_over_time(db, campaign_id)
        by_model = cost_report(db, by="model", campaign_id=campaign_id)
        by_variant = cost_report(db, by="variant", campaign_id=campaign_id)
        failed = jobs_page(db, campaign_id, status="failed", limit=5)
        failed_cards = [job_card(job) for job in failed]
    budget = Decimal(view["budget_usd"]) if view["budget_usd"] is not None else None
    estimated = Decimal(view["estimated_usd"])
    line = charts.spend_line(timeline, estimated=estimated, budget=budget)
    model_bars = charts.spend_bars(
        [(str(row.key), row.spend.estimated, row.spend.spent) for row in by_model]
    )
    variants = sorted(by_variant, key=lambda row: (-row.spend.committed, variant_label(row.key)))
    variant_rows = [
        {
            "label": variant_label(row.key),
            "variant": row.key,
            "spend": row.spend,
        }
        for row in variants[:VARIANT_ROWS]
    ]
    variant_bars = None
    if any(row.key is not None for row in by_variant):
        variant_bars = charts.spend_bars(
            [(r["label"], r["spend"].estimated, r["spend"].spent) for r in variant_rows]
        )
    return render_template(
        "dashboard/campaign.html",
        c=view,
        tab="overview",
        line=line,
        timeline=timeline,
        model_rows=by_model,
        model_bars=model_bars,
        variant_rows=variant_rows,
        variants_left_out=max(0, len(variants) - VARIANT_ROWS),
        variant_bars=variant_bars,
        failed=failed_cards,
    )


def _filter(axes: gallery.Axes, models: list[str]) -> tuple[gallery.Filter, dict[str, str]]:
    """The gallery's filter from the query string (`status`, `model`, `v.<axis>`), and the
    query's values as the form shows them."""
    status = request.args.get("status") or None
    model = request.args.get("model") or None
    if model is not None and model not in models:
        abort(400, f"model: {model[:60]!r} is not allowed; one of the campaign's models")
    variant: dict[str, Any] = {}
    chosen: dict[str, str] = {}
    for key, text in request.args.items():
        if not key.startswith("v.") or text == "":
            continue
        axis = axes.get(key[2:])
        if axis is None:
            abort(400, f"{key[:60]}: not allowed; an axis of the campaign's variants")
        try:
            variant[axis.name] = gallery.parse_value(text, axis)
        except InvalidInput as exc:
            abort(400, str(exc))
        chosen[axis.name] = text
    where = gallery.Filter(status=status, model=model, variant=variant)
    try:
        where.check()
    except InvalidInput as exc:
        abort(400, str(exc))
    return where, chosen


@bp.get("/campaigns/<int:campaign_id>/gallery")
def campaign_gallery(campaign_id: int) -> ResponseReturnValue:
    """The results, a page of jobs at a time, each job's images beside its reference."""
    after = optional_id("after")
    with transaction(_sessions()) as db:
        view = _view(db, campaign_id)
        axes = gallery.variant_axes(db, campaign_id)
        where, chosen = _filter(axes, view["models"])
        found = gallery.jobs_page(db, campaign_id, where, after_id=after, limit=GALLERY_PAGE + 1)
        cards = [job_card(job) for job in found[:GALLERY_PAGE]]
    next_after = found[GALLERY_PAGE - 1].id if len(found) > GALLERY_PAGE else None
    query = {k: v for k, v in request.args.items() if k != "after"}
    return render_template(
        "dashboard/gallery.html",
        c=view,
        tab="gallery",
        axes=axes,
        where=where,
        chosen=chosen,
        cards=cards,
        next_after=next_after,
        query=query,
        first=after is None,
        value_key=gallery.value_key,
    )


@bp.get("/campaigns/<int:campaign_id>/compare")
def campaign_compare(campaign_id: int) -> ResponseReturnValue:
    """Two or more values of one axis side by side: their images in columns, in rows of jobs
    whose other axes agree."""
    with transaction(_sessions()) as db:
        view = _view(db, campaign_id)
        axes = gallery.variant_axes(db, campaign_id)
        axis = None
        name = request.args.get("axis") or (axes.axes[0].name if len(axes.axes) == 1 else None)
        if name is not None:
            axis = axes.get(name)
            if axis is None:
                abort(400, f"axis: {name[:60]!r} is not allowed; an axis of the campaign")
        texts = request.args.getlist("value")
        comparison = None
        if axis is not None and len(texts) >= 2:
            try:
                values = [gallery.parse_value(text, axis) for text in texts]
            except InvalidInput as exc:
                abort(400, str(exc))
            comparison = gallery.compare(db, campaign_id, axis, values, per_value=COMPARE_PER_VALUE)
            rows = [
                (label, [[job_card(job) for job in cell] for cell in cells])
                for label, cells in comparison.rows
            ]
        else:
            rows = []
    return render_template(
        "dashboard/compare.html",
        c=view,
        tab="compare",
        axes=axes,
        axis=axis,
        chosen=set(texts),
        comparison=comparison,
        rows=rows,
        too_few=axis is not None and 0 < len(texts) < 2,
        per_value=COMPARE_PER_VALUE,
        value_key=gallery.value_key,
    )


@bp.get("/campaigns/<int:campaign_id>/failed")
def campaign_failed(campaign_id: int) -> ResponseReturnValue:
    """Every failed attempt with the provider's error, a page at a time."""
    after = optional_id("after")
    with transaction(_sessions()) as db:
        view = _view(db, campaign_id)
        found = jobs_page(db, campaign_id, status="failed", after_id=after, limit=FAILED_PAGE + 1)
        retried = _retried(db, [job.id for job in found])
        cards = [job_card(job) | {"retried": job.id in retried} for job in found[:FAILED_PAGE]]
    next_after = found[FAILED_PAGE - 1].id if len(found) > FAILED_PAGE else None
    return render_template(
        "dashboard/failed.html",
        c=view,
        tab="failed",
        cards=cards,
        next_after=next_after,
        first=after is None,
    )


def _retried(db: Session, job_ids: list[int]) -> set[int]:
    """Those of these jobs a retry replaced."""
    if not job_ids:
        return set()
    rows = db.scalars(select(Job.retry_of_id).where(Job.retry_of_id.in_(job_ids)))
    return {job_id for job_id in rows if job_id is not None}
