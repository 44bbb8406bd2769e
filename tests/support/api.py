"""The REST API as a client sees it: a real `remixq receiver` on PostgreSQL, keys made with the
real `remixq apikey` command, and a small client that sends the key."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

from remixq import migrate
from remixq.cli.processes import free_port, http_ready, start, wait_until
from tests.support.cli import remixq
from tests.support.databases import recreate_pg_database, scratch_pg_url

# A valid Runware request, as one line of a JSONL campaign file holds it.
JOB: dict[str, Any] = {
    "model": "ideogram:4@2",
    "positivePrompt": "A retro cereal box",
    "width": 1344,
    "height": 768,
    "inputs": {"referenceImages": ["https://assets.example.test/inputs/source.jpg"]},
}


@dataclass
class Api:
    """A client of one receiver's API with one key (`key` None: no Authorization header)."""

    base: str
    key: str | None = None
    http: requests.Session = field(default_factory=requests.Session)

    def with_key(self, key: str | None) -> Api:
        return Api(self.base, key)

    def request(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        headers = dict(kwargs.pop("headers", {}) or {})
        if self.key is not None:
            headers.setdefault("Authorization", f"Bearer {self.key}")
        return self.http.request(
            method, f"{self.base}/api/v1{path}", headers=headers, timeout=60, **kwargs
        )

    def get(self, path: str, **kwargs: Any) -> requests.Response:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> requests.Response:
        return self.request("POST", path, **kwargs)

    def create(self, name: str, jobs: int = 1, **kwargs: Any) -> dict[str, Any]:
        response = self.post("/campaigns", json={"name": name, "jobs": [JOB] * jobs}, **kwargs)
        assert response.status_code == 201, response.text
        body: dict[str, Any] = response.json()
        return body

    def walk(self, path: str, limit: int) -> list[dict[str, Any]]:
        """Every item of a paged list, following next_cursor."""
        items: list[dict[str, Any]] = []
        cursor = None
        while True:
            params: dict[str, Any] = {"limit": limit}
            if cursor is not None:
                params["cursor"] = cursor
            response = self.get(path, params=params)
            assert response.status_code == 200, response.text
            page = response.json()
            assert len(page["items"]) <= limit
            items.extend(page["items"])
            cursor = page["next_cursor"]
            if cursor is None:
                return items


def api_env(name: str, data: Path, **settings: str) -> dict[str, str]:
    """The environment of an API suite's receiver and CLI: a scratch PostgreSQL database of its
    own (`name`), migrated; the data folder (the embedded broker the API publishes to); more
    settings as given."""
    url = scratch_pg_url(name)
    recreate_pg_database(url)
    migrate.upgrade(url)
    return {
        "REMIXQ_DATABASE_URL": url,
        "REMIXQ_WEBHOOK_SECRET": "api-secret",
        "REMIXQ_DATA_DIR": str(data),
        **settings,
    }


def new_key(env: dict[str, str], tmp: Path, name: str, *, read_only: bool = False) -> str:
    """A key made with `remixq apikey create NAME --json`, as an operator makes one."""
    args = ["apikey", "create", name, "--json", *(["--read-only"] if read_only else [])]
    done = remixq(tmp, *args, env=env)
    assert done.returncode == 0, done.stderr
    made = json.loads(done.stdout)
    assert made["name"] == name
    key: str = made["key"]
    return key


@contextmanager
def api_receiver(env: dict[str, str], tmp: Path, *, workers: int = 1) -> Iterator[str]:
    """`remixq receiver` with `env` (its database, broker...), ready; its base URL."""
    port = free_port()
    receiver = start(
        "receiver",
        ["receiver", "--port", str(port), "--workers", str(workers)],
        env=env,
        log_dir=tmp / "logs",
        new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until(http_ready(f"{base}/healthz"), timeout=30, what="receiver")
        yield base
    finally:
        receiver.stop(30)
