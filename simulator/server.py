"""Serve the simulator: one process (all state is in memory), one thread per connection.

Werkzeug's threaded WSGI server speaks HTTP/1.1 with keep-alive when threaded, which is what a
client's connection pool wants; access logging is off by default because under load the log
line costs more than the request.
"""

from __future__ import annotations

import logging

from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

from simulator.app import create_app
from simulator.config import SimulatorConfig
from simulator.extension import EXTENSION_KEY
from simulator.targets import listen_refusal

log = logging.getLogger(__name__)


class _QuietHandler(WSGIRequestHandler):
    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:  # noqa: ARG002
        return None


def build_server(
    config: SimulatorConfig, host: str = "127.0.0.1", port: int = 8700, *, access_log: bool = False
) -> BaseWSGIServer:
    """A bound, not yet running server (``port=0`` picks a free port: see ``server.port``);
    a host off loopback needs ``config.allow_remote`` (assumptions A15)."""
    refusal = listen_refusal(host, allow_remote=config.allow_remote)
    if refusal is not None:
        raise ValueError(refusal)
    app = create_app(config)
    handler = WSGIRequestHandler if access_log else _QuietHandler
    return make_server(host, port, app, threaded=True, request_handler=handler)


def shutdown(server: BaseWSGIServer) -> None:
    """Stop serving and release the simulator's background threads and connections."""
    server.shutdown()
    _release(server)


def serve(
    config: SimulatorConfig, host: str = "127.0.0.1", port: int = 8700, *, access_log: bool = False
) -> None:
    """Run until interrupted."""
    server = build_server(config, host, port, access_log=access_log)
    log.info("Runware simulator listening on %s:%d (POST /v1)", host, server.port)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        _release(server)


def _release(server: BaseWSGIServer) -> None:
    """Close the listening socket and the simulator's background threads and connections."""
    server.server_close()
    server.app.extensions[EXTENSION_KEY].close()  # type: ignore[attr-defined]
