"""The dashboard: the receiver's root URL, for people. Campaigns at a glance with live progress,
a campaign's results as a gallery (filtered, compared variant by variant), its failed jobs and
controls, its spend as charts, exports, a submit page with a dry run, and schedules.

Server-rendered Jinja templates with a little vanilla JavaScript (live updates by polling a
small JSON endpoint, a full-size viewer) and charts drawn as SVG by the server: nothing is
loaded from another origin. Signing in exchanges a REST API key for a signed, HTTP-only session
cookie (webhook_receiver.dashboard.sessions); every form carries a CSRF token. The pages call
the domain (remixq.reports, remixq.gallery, remixq.control...) as the API does, never the API.
"""

from __future__ import annotations

from flask import Flask

from webhook_receiver.dashboard import (
    actions,
    auth,
    campaign,
    campaigns,
    errors,
    exports,
    images,
    schedules,
    submit,
)
from webhook_receiver.dashboard.blueprint import bp
from webhook_receiver.dashboard.sessions import DashboardSessions, lifetime

__all__ = ["init_app"]

# The modules that add their routes to the blueprint.
_ROUTES = (actions, auth, campaign, campaigns, errors, exports, images, schedules, submit)


def init_app(app: Flask) -> None:
    """Serve the dashboard at `/` of `app`, with its cookie sessions."""
    app.session_interface = DashboardSessions()
    app.permanent_session_lifetime = lifetime(app)
    app.register_blueprint(bp)
