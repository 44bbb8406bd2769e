"""The `remixq` command: the composition root that puts the domain, the worker, the receiver and
the simulator together, and nothing more (each command parses, calls the domain, prints).

Framework imports stay inside the commands that need them, so `remixq --help` stays light. The
group and the entry point live in `remixq.cli.main`; the commands in the modules beside it.
"""

from __future__ import annotations

from remixq.cli.main import cli, main

__all__ = ["cli", "main"]
