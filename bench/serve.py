"""`python -m bench.serve {receiver,bare,naive} --port P [--workers W] [--set k=v]`:
the receiver as deployed, or a reference endpoint, under exactly the same gunicorn settings.

- `bare`, the baseline: the least a Flask endpoint can do with a webhook: read the body, parse
  the JSON, answer 200 with a small JSON document.
- `naive`, a calibration point: the textbook Flask + SQLAlchemy handler that parses the body and
  inserts it as one ORM row (the inbox table), one session and commit per request.

All take their options from `webhook_receiver.server.gunicorn_options`, so a change of the
deployed settings moves them all.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from flask import Flask, jsonify, request
from flask.typing import ResponseReturnValue

from remixq.config import Settings, load_settings
from remixq.db import make_engine, make_sessionmaker, utcnow
from remixq.models import WebhookEvent
from remixq.security import WEBHOOK_PATH
from remixq.states import InboxStatus
from webhook_receiver.server import gunicorn_options, run, use_multiprocess_metrics


def bare_app() -> Flask:
    app = Flask("bench.bare")

    @app.post(f"{WEBHOOK_PATH}/<task>/<token>")  # routed as the receiver's URLs are
    def webhook(task: str, token: str) -> ResponseReturnValue:  # noqa: ARG001 (routed, unused)
        payload = json.loads(request.get_data(cache=False))
        return jsonify({"status": "ok", "keys": len(payload)}), 200

    return app


def naive_app(settings: Settings) -> Flask:
    engine = make_engine(settings.database)
    sessions = make_sessionmaker(engine)
    app = Flask("bench.naive")

    @app.post(f"{WEBHOOK_PATH}/<task>/<token>")
    def webhook(task: str, token: str) -> ResponseReturnValue:  # noqa: ARG001 (routed, unused)
        body = request.get_data(cache=False)
        json.loads(body)
        with sessions() as session, session.begin():
            session.add(
                WebhookEvent(
                    body=body,
                    source="webhook",
                    task_uuid=task,
                    # Kept, not applied: the inbox's status for a body no job took.
                    status=InboxStatus.ORPHAN.value,
                    received_at=utcnow(),
                )
            )
        return jsonify({"status": "ok"}), 200

    return app


def _value(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return text


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.serve")
    parser.add_argument("kind", choices=["receiver", "bare", "naive"])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--workers", type=int, default=None)
    parser.add_argument("--connections", type=int, default=256)
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--diag", type=Path, help="record GC and hub blocking here (bench.diag)")
    args = parser.parse_args(argv)
    options = gunicorn_options(
        "127.0.0.1", args.port, workers=args.workers, connections=args.connections
    )
    if args.diag is not None:
        directory: Path = args.diag

        deployed = options.get("post_worker_init")

        def probes(worker: Any) -> None:
            from bench.diag import install_worker_probes

            if deployed is not None:
                deployed(worker)
            install_worker_probes(directory)

        options["post_worker_init"] = probes
    for item in args.set:
        key, _, value = item.partition("=")
        options[key] = _value(value)
    if args.kind == "receiver":
        # As `remixq receiver` serves it: the metrics in prometheus-client's multiprocess files,
        # set up before the app (and so prometheus-client) is imported.
        use_multiprocess_metrics()
        from webhook_receiver.app import create_app

        settings = load_settings()
        run(lambda: create_app(settings), options)
    elif args.kind == "naive":
        settings = load_settings()
        run(lambda: naive_app(settings), options)
    else:
        run(bare_app, options)


if __name__ == "__main__":
    main()
