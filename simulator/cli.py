"""``simulator`` command: start the Runware simulator.

Mounted by the main CLI as ``remixq simulator`` (``group.add_command(simulator)``) and runnable
as ``python -m simulator``. Every setting and fault knob is an option ``--<name>`` and an
environment variable ``REMIXQ_SIM_<NAME>``; options win over the environment. The option list
is generated from ``SimulatorConfig``/``FaultKnobs`` so help text and knobs cannot drift apart.
"""

from __future__ import annotations

import logging
import types
import typing
from collections.abc import Callable
from typing import Any

import click
from pydantic import ValidationError
from pydantic.fields import FieldInfo

from simulator.config import PORT_ENV_VARS, STATIC_FIELDS, FaultKnobs, SimulatorConfig, env_var
from simulator.targets import TargetFormatter, listen_refusal, scrub_targets

# The key under which a host CLI (remixq's) puts, in click's `Context.meta`, the function that
# configures a process's logging: `configure(level, scrub=...)`. The simulator imports nothing
# of the product, so the host hands its one logging configuration down this way.
LOGGING_HOOK = "logging.configure"

_HELP = """Run a local stand-in for Runware's REST API (Ideogram Remix models).

POST /v1 takes Runware task arrays; GET /images/<uuid>.<ext> serves the results; the control API
(GET/PUT /_control/faults, GET /_control/stats, POST /_control/reset) changes fault knobs at run
time and exposes counters. Rates are shares between 0 and 1.
"""

F = typing.TypeVar("F", bound=Callable[..., Any])


class _OneLine(click.ClickException):
    """A refusal to start, in one line (`error: ...`, exit 2), without the usage text."""

    exit_code = 2

    def show(self, file: Any = None) -> None:
        click.echo(f"error: {self.format_message()}", err=True, file=file)


def _click_type(annotation: Any) -> Any:
    """The click parameter type of a (simple) pydantic field annotation."""
    if typing.get_origin(annotation) is typing.Annotated:
        annotation = typing.get_args(annotation)[0]
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        annotation = next(arg for arg in typing.get_args(annotation) if arg is not type(None))
        origin = typing.get_origin(annotation)
    if origin is typing.Literal:
        return click.Choice([str(v) for v in typing.get_args(annotation)])
    if annotation in (int, float, str):
        return annotation
    return str  # JSON-valued settings (prices) are parsed by the config model


def _option(name: str, field: FieldInfo, section: str) -> Callable[[F], F]:
    default = field.get_default(call_default_factory=True)
    shown = "unset" if default is None else default
    if isinstance(default, dict):
        shown = "see description"
    help_text = f"[{section}] {field.description or ''} Env: {env_var(name)}. Default: {shown}."
    flag = f"--{name.replace('_', '-')}"
    if field.annotation is bool:  # a flag; the environment variable takes 1/0, true/false
        return click.option(flag, name, is_flag=True, default=None, help=help_text)
    if typing.get_origin(field.annotation) is tuple:  # repeated; the environment's: a,b
        return click.option(flag, name, multiple=True, default=None, help=help_text)
    return click.option(
        flag,
        name,
        type=_click_type(field.annotation),
        default=None,
        help=help_text,
    )


def _setting_options(func: F) -> F:
    for name, field in reversed(list(FaultKnobs.model_fields.items())):
        func = _option(name, field, "knob")(func)
    for name in reversed(STATIC_FIELDS):
        func = _option(name, SimulatorConfig.model_fields[name], "setting")(func)
    return func


@click.command("simulator", help=_HELP)
@click.option("--host", default="127.0.0.1", show_default=True, envvar="REMIXQ_SIM_HOST",
              help="Interface to listen on. Env: REMIXQ_SIM_HOST.")  # fmt: skip
@click.option("--port", default=8700, show_default=True, type=int, envvar=list(PORT_ENV_VARS),
              help="Port to listen on. Env: REMIXQ_SIMULATOR_PORT (the name the worker and the"
                   " demo read; REMIXQ_SIM_PORT, its older name, still works).")  # fmt: skip
@click.option("--access-log/--no-access-log", default=False, show_default=True,
              help="Log every request (slows the simulator down).")  # fmt: skip
@_setting_options
def simulator(host: str, port: int, access_log: bool, **settings: Any) -> None:
    from simulator.server import serve  # keeps `--help` light: no werkzeug server import

    chosen = {name: value for name, value in settings.items() if value not in (None, ())}
    try:
        config = SimulatorConfig.from_env().with_overrides(chosen)
    except (ValidationError, ValueError) as exc:
        raise click.UsageError(str(exc)) from exc
    refusal = listen_refusal(host, allow_remote=config.allow_remote)
    if refusal is not None:
        raise _OneLine(refusal)
    # No webhook or upload URL in a log line (A15): the handler's formatter cleans them.
    configure = click.get_current_context().meta.get(LOGGING_HOOK)
    if configure is not None:  # `remixq simulator`: remixq's format (REMIXQ_LOG_FORMAT)
        configure(logging.INFO, scrub=scrub_targets)
    else:  # `python -m simulator`
        handler = logging.StreamHandler()
        handler.setFormatter(TargetFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        root = logging.getLogger()
        root.addHandler(handler)
        root.setLevel(logging.INFO)
    logging.getLogger("simulator").info(
        "Runware simulator on http://%s:%d/v1 (control: /_control/faults)", host, port
    )
    serve(config, host, port, access_log=access_log)
