"""gunicorn's logger for the receiver: every line it writes is redacted.

gunicorn logs a request's URI when the app raises ("Error handling request POST
/webhooks/runware/<task>/<token>") and a malformed request line in its invalid-request warnings;
a webhook URL's token is a credential for its task (remixq.security). This logger class puts
remixq.logs.RedactingFilter on gunicorn's error and access loggers and their handlers, gives those
handlers the format of every other line (REMIXQ_LOG_FORMAT: key=value or JSON), and gives the
receiver's own loggers (Flask's app logger, the writer's) the redacting handler of
remixq.logs.configure instead of Flask's default one or Python's last-resort handler.
"""

from __future__ import annotations

import logging
from typing import Any

from gunicorn.glogging import Logger

from remixq.logs import RedactingFilter, configure, formatter


class RedactingLogger(Logger):
    """gunicorn's `logger_class` for `remixq receiver` (webhook_receiver.server)."""

    def setup(self, cfg: Any) -> None:
        super().setup(cfg)
        for log in (self.error_log, self.access_log):
            _filtered(log)
            for handler in log.handlers:
                _filtered(handler)
                if getattr(handler, "_gunicorn", False):  # gunicorn's own, not a logconfig's
                    handler.setFormatter(formatter())
        configure(str(cfg.loglevel).upper())


def _filtered(target: logging.Logger | logging.Handler) -> None:
    if not any(isinstance(f, RedactingFilter) for f in target.filters):
        target.addFilter(RedactingFilter())
