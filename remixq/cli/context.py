"""What every `remixq` command shares: the settings, read from the environment on first use."""

from __future__ import annotations

import click

from remixq.config import Settings, load_settings


class Context:
    def __init__(self) -> None:
        self._settings: Settings | None = None

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            self._settings = load_settings()
        return self._settings


pass_context = click.make_pass_decorator(Context, ensure=True)
