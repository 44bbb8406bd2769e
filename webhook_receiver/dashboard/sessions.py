"""The dashboard's sessions: Flask's signed cookie, keyed by REMIXQ_DASHBOARD_SECRET (or the
secret generated into the data folder), HTTP-only, `SameSite=Lax`, `Secure` on an https
request (always, with REMIXQ_DASHBOARD_SECURE_COOKIE).

The cookie holds the id of the API key that signed in and when, never the key: each request
checks that key again (webhook_receiver.dashboard.auth), so a revoked key's sessions end at
once. Only the dashboard's paths open a session: the API, the webhooks and the health checks
never read the cookie, and never make the secret."""

from __future__ import annotations

from datetime import timedelta

from flask import Flask, Request, request
from flask.sessions import SecureCookieSession, SecureCookieSessionInterface, SessionMixin
from itsdangerous import URLSafeTimedSerializer

from webhook_receiver.state import state

COOKIE_NAME = "remixq_dashboard"
# Paths that are never the dashboard's: they get a session that is always empty.
NOT_DASHBOARD = ("/api/", "/webhooks/", "/healthz", "/readyz", "/metrics")


class DashboardSessions(SecureCookieSessionInterface):
    def get_cookie_name(self, app: Flask) -> str:  # noqa: ARG002 (Flask's signature)
        return COOKIE_NAME

    def get_cookie_httponly(self, app: Flask) -> bool:  # noqa: ARG002
        return True

    def get_cookie_samesite(self, app: Flask) -> str:  # noqa: ARG002
        return "Lax"

    def get_cookie_secure(self, app: Flask) -> bool:
        return state(app).settings.dashboard_secure_cookie or request.is_secure

    def should_set_cookie(self, app: Flask, session: SessionMixin) -> bool:  # noqa: ARG002
        return session.modified  # not on every poll: a sign-in lasts from when it was made

    def get_signing_serializer(self, app: Flask) -> URLSafeTimedSerializer | None:
        return URLSafeTimedSerializer(
            state(app).dashboard_secret,
            salt=self.salt,
            serializer=self.serializer,
            signer_kwargs={
                "key_derivation": self.key_derivation,
                "digest_method": self.digest_method,
            },
        )

    def open_session(self, app: Flask, request: Request) -> SecureCookieSession | None:
        if request.path.startswith(NOT_DASHBOARD):
            return self.session_class()  # empty, and never saved (it is not modified)
        return super().open_session(app, request)


def lifetime(app: Flask) -> timedelta:
    """How long a sign-in lasts (REMIXQ_DASHBOARD_SESSION_HOURS)."""
    return timedelta(hours=state(app).settings.dashboard_session_hours)
