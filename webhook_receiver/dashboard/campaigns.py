"""The campaigns page (the dashboard's home, newest first, a keyset page at a time) and the
small JSON endpoint its live updates poll."""

from __future__ import annotations

from typing import Any

from flask import current_app, jsonify, render_template
from flask.typing import ResponseReturnValue

from remixq.db import transaction
from remixq.gallery import models_of
from remixq.reports import campaign_summaries, summaries_of
from webhook_receiver.dashboard import schedules
from webhook_receiver.dashboard.blueprint import bp
from webhook_receiver.dashboard.params import id_list, optional_id
from webhook_receiver.dashboard.views import campaign_view
from webhook_receiver.state import state

PAGE = 25
LIVE_MAX = 100  # campaigns one poll may ask about


def _views(db: Any, summaries: list[Any]) -> list[dict[str, Any]]:
    ids = [s.id for s in summaries]
    models = models_of(db, ids)
    refs = schedules.schedule_refs(db, ids)
    return [
        campaign_view(s, models=models.get(s.id, []), schedule=refs.get(s.id)) for s in summaries
    ]


@bp.get("/")
def campaigns() -> ResponseReturnValue:
    """Every campaign, newest first: progress, images, spend against budget, models,
    schedule, start and finish."""
    before = optional_id("before")
    with transaction(state(current_app).api_sessions) as db:
        found = campaign_summaries(db, after_id=before, limit=PAGE + 1, newest_first=True)
        rows = _views(db, found[:PAGE])
    next_before = found[PAGE - 1].id if len(found) > PAGE else None
    return render_template(
        "dashboard/campaigns.html", campaigns=rows, next_before=next_before, first=before is None
    )


@bp.get("/live")
def live() -> ResponseReturnValue:
    """`?campaign=ID` (repeated, at most 100): those campaigns as the pages show them."""
    ids = id_list("campaign", LIVE_MAX)
    with transaction(state(current_app).api_sessions) as db:
        found = summaries_of(db, ids)
        rows = _views(db, [found[i] for i in sorted(found)])
    response = jsonify({"campaigns": rows})
    response.headers["Cache-Control"] = "no-store"
    return response
