"""What every `remixq` command shares: the settings, read from the environment on first use, and
how a command that stored its jobs says the broker could not take them."""

from __future__ import annotations

import click

from remixq.config import Settings, load_settings
from remixq.logs import hide, use_format


class Context:
    def __init__(self) -> None:
        self._settings: Settings | None = None

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            self._settings = load_settings()
            hide(*self._settings.configured_secrets())  # never in a log line of this process
            use_format(self._settings.log_format)  # REMIXQ_LOG_FORMAT, for every line from now
        return self._settings


pass_context = click.make_pass_decorator(Context, ensure=True)


def broker_unreachable(error: str) -> str:
    """The words of `submit`, `retry` and `resume` when their jobs are stored but the broker
    could not take them (the relay hands them over later)."""
    return (
        "the broker is unreachable, they will be handed to it when it is reachable (by the relay"
        f" of `remixq beat`); broker error: {error}"
    )
