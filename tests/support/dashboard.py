"""The dashboard as the tests use it: the receiver's app on a test database, a client that signs
in with a real API key and sends each form's CSRF token as a browser would, and campaigns made
of rows (variants, images, failures) to look at."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from flask.testing import FlaskClient
from sqlalchemy import Engine
from sqlalchemy.orm import Session
from werkzeug.test import TestResponse

from remixq import apikeys
from remixq.config import load_settings
from remixq.db import utcnow
from remixq.models import Campaign, Image, Job
from webhook_receiver.app import create_app

_TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_of(page: TestResponse) -> str:
    """The CSRF token a page's forms carry."""
    found = _TOKEN.search(page.get_data(as_text=True))
    assert found is not None, "the page has no form with a CSRF token"
    return found.group(1)


@dataclass
class Dashboard:
    client: FlaskClient

    def sign_in(self, key: str) -> TestResponse:
        page = self.client.get("/sign-in")
        return self.client.post("/sign-in", data={"api_key": key, "csrf_token": csrf_of(page)})

    def post_form(self, page_path: str, action: str, **data: Any) -> TestResponse:
        """POST to `action` with the CSRF token of the page at `page_path`, as its form does."""
        token = csrf_of(self.client.get(page_path))
        return self.client.post(action, data={"csrf_token": token, **data})


@contextmanager
def dashboard(engine: Engine, data_dir: Path, **settings: Any) -> Iterator[Dashboard]:
    """A client of the receiver's app (dashboard included) on `engine`'s database."""
    app = create_app(
        load_settings(
            database_url=engine.url.render_as_string(hide_password=False),
            webhook_secret="dashboard-test-secret",
            data_dir=data_dir,
            **settings,
        )
    )
    with app.test_client() as client:
        yield Dashboard(client)


def new_key(engine: Engine, *, read_only: bool = False) -> tuple[str, str]:
    """A committed API key: its name and the key."""
    with Session(engine) as session, session.begin():
        made = apikeys.create_key(session, name=f"ui-{uuid.uuid4().hex[:12]}", read_only=read_only)
    return made.name, made.key


REFERENCE = "https://assets.example.test/inputs/source.jpg"


def variant_campaign(
    engine: Engine,
    variants: list[dict[str, Any] | None],
    *,
    status: str = "completed",
    images: int = 1,
    model: str = "ideogram:4@2",
    budget: Decimal | None = None,
    reference: str = REFERENCE,
) -> int:
    """A committed campaign with one job per variant (None: a plain request), each with
    `images` images costing 0.06 (none unless completed); its id."""
    with Session(engine) as session, session.begin():
        campaign = Campaign(name=f"ui-{uuid.uuid4().hex[:12]}", budget_usd=budget)
        session.add(campaign)
        session.flush()
        for index, variant in enumerate(variants):
            prompt = (variant or {}).get("positivePrompt", f"prompt {index}")
            job = Job(
                campaign_id=campaign.id,
                task_uuid=str(uuid.uuid4()),
                model=model,
                request={
                    "model": model,
                    "positivePrompt": prompt,
                    "inputs": {"referenceImages": [reference]},
                },
                number_results=images,
                results_received=images if status == "completed" else 0,
                status=status,
                variant=variant,
                estimated_cost=Decimal("0.06") * images,
                error_code="invalidPrompt" if status == "failed" else None,
                error_message="the prompt was refused" if status == "failed" else None,
                finished_at=utcnow() if status in ("completed", "failed") else None,
            )
            session.add(job)
            session.flush()
            for n in range(images if status == "completed" else 0):
                session.add(
                    Image(
                        job_id=job.id,
                        image_uuid=str(uuid.uuid4()),
                        image_url=f"https://im.example.test/{job.id}-{n}.jpg",
                        seed=1000 + index,
                        nsfw=False,
                        cost=Decimal("0.06"),
                        raw={},
                    )
                )
        return campaign.id
