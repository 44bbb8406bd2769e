"""Where the simulator listens and where it sends, and how it writes a target in its logs.

The control API has no authentication and a task names the hosts the simulator POSTs webhooks
and PUTs uploads to: anyone who can reach it could steer it at any host. So it listens on
loopback unless ``allow_remote`` is set, and sends only to loopback hosts and those named by
``allow_target``, unless ``allow_any_target`` (assumptions A15). A webhook or upload URL is a
credential of its receiver (a token in the path, a presigned signature in the query): a log line
shows a target's origin only.
"""

from __future__ import annotations

import ipaddress
import logging
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from simulator import assumptions
from simulator.config import SimulatorConfig, env_var
from simulator.errors import ApiError
from simulator.schema import ModelSpec, invalid_code

TARGET_PARAMETERS = ("webhookURL", "uploadEndpoint")


def is_loopback(host: str) -> bool:
    """``localhost`` (and its subdomains) or a loopback address, as written; no DNS lookup (a
    name resolved now could resolve elsewhere when the request is sent)."""
    host = host.strip("[]").lower().rstrip(".")
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    mapped = getattr(address, "ipv4_mapped", None)
    return address.is_loopback or (mapped is not None and mapped.is_loopback)


def listen_refusal(host: str, *, allow_remote: bool) -> str | None:
    """Why the simulator will not listen on ``host``, in one line, or None."""
    if allow_remote or is_loopback(host):
        return None
    return (
        f"--host {host} is not a loopback address; the simulator's control API has no "
        "authentication and it sends requests to any host a task names: pass --allow-remote "
        f"({env_var('allow_remote')}=1) to listen there"
    )


def target_error(
    task: Mapping[str, Any], config: SimulatorConfig, spec: ModelSpec
) -> ApiError | None:
    """The error of a task whose webhookURL or uploadEndpoint names a host this simulator does
    not send to (A15): answered like any invalid value, at submission, and nothing is sent."""
    if config.allow_any_target:
        return None
    for parameter in TARGET_PARAMETERS:
        url = task.get(parameter)
        if not isinstance(url, str):
            continue
        host = (urlsplit(url).hostname or "").lower()
        if is_loopback(host) or host in config.allow_target:
            continue
        return ApiError(
            code=invalid_code(parameter),
            message=f"Invalid value for '{parameter}': host {host!r} is not an allowed target; "
            f"this simulator sends only to loopback hosts unless started with --allow-target "
            f"{host} or --allow-any-target.",
            parameter=parameter,
            documentation=spec.doc_link(parameter),
            http_status=assumptions.STATUS_REQUEST_ERROR,
        )
    return None


def shown(url: str) -> str:
    """A target as a log line may show it: scheme, host and port, no path, query or user."""
    parts = urlsplit(url)
    host = parts.hostname or "?"
    if ":" in host:
        host = f"[{host}]"
    try:
        port = f":{parts.port}" if parts.port else ""
    except ValueError:  # not a number: shown without it
        port = ""
    return f"{parts.scheme}://{host}{port}/..."


_URL = re.compile(r"(?i)\bhttps?://[^\s\"'<>]+")
_RELATIVE = re.compile(r"(?i)(\burl: )/[^\s\"'<>)]*")  # urllib3's "... with url: /path?query"


def scrub_targets(text: str) -> str:
    """`text` with every absolute URL shown as its origin (`shown`)."""
    return _RELATIVE.sub(r"\1/...", _URL.sub(lambda m: shown(m.group()), text))


class TargetFormatter(logging.Formatter):
    """Every absolute URL in a simulator log line shown as its origin (``shown``), should a
    message or an exception carry a webhook or upload URL. A formatter of the simulator's own
    handler, not a filter: it changes the line it writes, never the record that other handlers
    (a test's log capture, a host application's) see too."""

    def format(self, record: logging.LogRecord) -> str:
        return scrub_targets(super().format(record))
