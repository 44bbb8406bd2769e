"""docker-compose.yml run as local processes, where no container engine runs.

`ComposeFile` reads the file as Compose does: YAML (merge keys included), `${NAME}`,
`${NAME:-default}` and `${NAME:?error}` interpolated from an environment, profiles. Each service
built from the Dockerfile becomes a local process: its entrypoint (the Dockerfile's
`ENTRYPOINT` unless it names one) and command, run from this virtual environment's scripts, with
the image's `ENV` and its own environment. `LocalRun` maps the network as a container engine
would have it: each port a service `expose`s gets a free local port, `<service>:<port>` in any
other service's value becomes `127.0.0.1:<local port>`, and the service's own mentions of the
port (its `--port`, its healthcheck's URL) the local port; `0.0.0.0` becomes `127.0.0.1`. The
image services are the test machine's: PostgreSQL and the broker given by URL, nginx (the
proxy) started on the template the file mounts (tests/support/proxy.py). A healthcheck is its
`test` command, run until it exits 0.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import yaml

from remixq.cli.processes import Process, free_port, stop_all, wait_until
from tests.support.proxy import nginx

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
SIMULATOR_ENV = ROOT / "deploy" / "simulator.env"

_VARIABLE = re.compile(r"\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\}|\$([A-Za-z_]\w*)")
# The images the test machine stands in for: PostgreSQL and Redis by URL, nginx started here.
PROVIDED_IMAGES = ("postgres", "redis", "rabbitmq")
NGINX_TEMPLATE = "/etc/nginx/templates/"


def read_env_file(path: Path) -> dict[str, str]:
    """NAME=value lines (comments and blank lines skipped), as `--env-file` reads them."""
    values = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            name, _, value = line.partition("=")
            values[name.strip()] = value.strip()
    return values


def interpolate(value: Any, env: Mapping[str, str]) -> Any:
    """Compose's interpolation of every string in `value`."""
    if isinstance(value, str):

        def one(match: re.Match[str]) -> str:
            if match.group(0) == "$$":
                return "$"
            name = match.group(1) or match.group(4)
            found, operator, word = env.get(name), match.group(2), match.group(3) or ""
            if operator and operator.startswith(":"):
                found = found or None  # ":" treats empty like unset
            if operator and operator.endswith("?") and found is None:
                raise KeyError(f"{name}: {word}")
            if found is None:
                return word if operator and operator.endswith("-") else ""
            return found

        return _VARIABLE.sub(one, value)
    if isinstance(value, list):
        return [interpolate(item, env) for item in value]
    if isinstance(value, dict):
        return {key: interpolate(item, env) for key, item in value.items()}
    return value


def dockerfile() -> tuple[list[str], dict[str, str]]:
    """The image's ENTRYPOINT (exec form) and ENV, read from the Dockerfile."""
    text = re.sub(r"\\\n\s*", " ", DOCKERFILE.read_text())
    entrypoint: list[str] = []
    env: dict[str, str] = {}
    for line in text.splitlines():
        word, _, rest = line.strip().partition(" ")
        if word == "ENTRYPOINT":
            entrypoint = json.loads(rest)
        elif word == "ENV":
            env.update(part.split("=", 1) for part in rest.split())  # type: ignore[misc]
    return entrypoint, env


@dataclass
class ComposeFile:
    """The file as Compose reads it with `env` (the shell's environment or an --env-file)."""

    env: Mapping[str, str]
    raw: dict[str, Any] = field(init=False)
    services: dict[str, dict[str, Any]] = field(init=False)

    def __post_init__(self) -> None:
        self.raw = yaml.safe_load(COMPOSE_FILE.read_text())
        self.services = interpolate(self.raw["services"], self.env)

    def active(self) -> list[str]:
        """The services that `up` starts with the environment's COMPOSE_PROFILES."""
        profiles = {p for p in self.env.get("COMPOSE_PROFILES", "").split(",") if p}
        return [
            name
            for name, service in self.services.items()
            if not service.get("profiles") or profiles & set(service["profiles"])
        ]

    def built(self, name: str) -> bool:
        return "build" in self.services[name]

    def image(self, name: str) -> str:
        return str(self.services[name].get("image", "")).split(":")[0]

    def environment(self, name: str) -> dict[str, str]:
        found = self.services[name].get("environment") or {}
        if isinstance(found, list):
            found = dict(item.split("=", 1) for item in found)
        return {key: "" if value is None else str(value) for key, value in found.items()}

    def command(self, name: str) -> list[str]:
        service = self.services[name]
        entrypoint = service.get("entrypoint") or dockerfile()[0]
        return [*entrypoint, *(service.get("command") or [])]

    def healthcheck(self, name: str) -> list[str] | None:
        test = (self.services[name].get("healthcheck") or {}).get("test")
        if not test:
            return None
        assert test[0] == "CMD", f"{name}: only the exec form (CMD) runs here: {test}"
        return list(test[1:])

    def exposed(self, name: str) -> list[int]:
        return [int(port) for port in self.services[name].get("expose") or []]

    def order(self, names: Sequence[str]) -> list[str]:
        """`names` with every service after those it depends on."""
        done: list[str] = []

        def visit(name: str) -> None:
            if name in done:
                return
            depends = self.services[name].get("depends_on") or []
            for other in depends if isinstance(depends, list) else list(depends):
                if other in names:
                    visit(other)
            done.append(name)

        for name in names:
            visit(name)
        return done

    def completes(self, name: str) -> bool:
        """Another service waits for this one to exit successfully (a one-off: migrate)."""
        for service in self.services.values():
            depends = service.get("depends_on") or {}
            if isinstance(depends, dict):
                wanted = depends.get(name) or {}
                if wanted.get("condition") == "service_completed_successfully":
                    return True
        return False


@dataclass
class LocalRun:
    """The services of a compose file as local processes (module docstring)."""

    compose: ComposeFile
    tmp: Path
    ports: dict[tuple[str, int], int] = field(default_factory=dict)
    processes: dict[str, Process] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name in self.compose.services:
            for port in self.compose.exposed(name):
                self.ports[(name, port)] = free_port()

    def local_port(self, service: str, port: int) -> int:
        return self.ports[(service, port)]

    def mapped(self, service: str, value: str) -> str:
        """`value` as the service's process sees the network."""
        for (other, port), local in self.ports.items():
            value = re.sub(rf"\b{re.escape(other)}:{port}\b", f"127.0.0.1:{local}", value)
        for port in self.compose.exposed(service):
            value = re.sub(rf"(?<![\d.]){port}(?!\d)", str(self.ports[(service, port)]), value)
        return value.replace("0.0.0.0", "127.0.0.1")  # noqa: S104 (a value, not a bind)

    def environ(self, service: str) -> dict[str, str]:
        """The process's environment: this machine's (no remixq setting of the caller's), the
        image's ENV (its data folder one of the test's), the service's, mapped."""
        base = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith(("REMIXQ_", "RUNWARE_", "PROMETHEUS_"))
        }
        image = dockerfile()[1] if self.compose.built(service) else {}
        image["REMIXQ_DATA_DIR"] = str(self.tmp / service / "data")
        env = {**image, **self.compose.environment(service)}
        return {**base, **{key: self.mapped(service, value) for key, value in env.items()}}

    def argv(self, service: str, command: Sequence[str]) -> list[str]:
        """A command of the image run from this virtual environment's scripts."""
        program, *args = command
        script = Path(sys.executable).parent / program
        assert script.exists(), f"{service}: {program} is not a script of this installation"
        return [str(script), *(self.mapped(service, arg) for arg in args)]

    def run_once(self, service: str, *command: str) -> subprocess.CompletedProcess[str]:
        """`docker compose run --rm SERVICE COMMAND`: the service's image and environment."""
        argv = self.argv(service, [*self.compose.command(service)[:1], *command])
        return subprocess.run(
            argv, env=self.environ(service), capture_output=True, text=True, timeout=120,
            check=False, cwd=self.tmp,
        )  # fmt: skip

    def start(self, service: str) -> Process:
        folder = self.tmp / service
        folder.mkdir(parents=True, exist_ok=True)
        log_dir = self.tmp / "logs"
        log_dir.mkdir(parents=True, exist_ok=True)
        log_path = log_dir / f"{service}.log"
        log = log_path.open("ab")
        popen = subprocess.Popen(
            self.argv(service, self.compose.command(service)),
            env=self.environ(service), stdout=log, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, cwd=folder, start_new_session=True,
        )  # fmt: skip
        process = Process(service, popen, log_path, log, group=True)
        self.processes[service] = process
        return process

    def healthy(self, service: str) -> bool:
        check = self.compose.healthcheck(service)
        assert check is not None, f"{service} has no healthcheck"
        done = subprocess.run(
            self.argv(service, check), env=self.environ(service), capture_output=True,
            timeout=30, check=False,
        )  # fmt: skip
        return done.returncode == 0

    @contextmanager
    def up(self, services: Sequence[str], *, timeout: float = 90) -> Iterator[LocalRun]:
        """Start `services` in dependency order: a one-off (migrate) runs to completion, an
        nginx image is started on its template, the test machine stands in for the other
        images, and each service with a healthcheck is waited for until it passes."""
        with ExitStack() as stack:
            try:
                for name in self.compose.order(services):
                    image = self.compose.image(name)
                    if not self.compose.built(name):
                        if image == "nginx":
                            stack.enter_context(self._nginx(name))
                        else:
                            assert image in PROVIDED_IMAGES, f"{name}: no stand-in for {image}"
                        continue
                    if self.compose.completes(name):
                        done = self.run_once(name, *self.compose.services[name]["command"])
                        assert done.returncode == 0, f"{name} failed: {done.stderr}"
                        continue
                    process = self.start(name)
                    if self.compose.healthcheck(name):
                        wait_until(
                            partial(self.healthy, name),
                            timeout=timeout,
                            interval=0.5,
                            what=f"{name}'s healthcheck",
                            alive=[process],
                        )
                yield self
            finally:
                stop_all(list(self.processes.values()))

    @contextmanager
    def _nginx(self, service: str) -> Iterator[None]:
        mounts = [str(v) for v in self.compose.services[service].get("volumes") or []]
        (template,) = [m.split(":")[0] for m in mounts if NGINX_TEMPLATE in m]
        assert Path(ROOT, template).resolve() == ROOT / "deploy" / "nginx" / "remixq.conf"
        values = {k: self.mapped(service, v) for k, v in self.compose.environment(service).items()}
        with nginx(self.tmp / service, values):
            yield
