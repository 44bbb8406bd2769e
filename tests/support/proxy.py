"""nginx in front of a receiver, as deploy/nginx/remixq.conf ships it: that same file rendered
as the official nginx image renders its templates (each ${NAME} from the given values), inside a
main configuration of the test's own (its folder, its ports, no daemon, no system service)."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

CONFIG = Path(__file__).resolve().parents[2] / "deploy" / "nginx" / "remixq.conf"
_PLACEHOLDER = re.compile(r"\$\{(REMIXQ_[A-Z0-9_]+)\}")


def render(values: Mapping[str, str], template: Path = CONFIG) -> str:
    """The template with each ${REMIXQ_...} replaced; every one must have a value."""
    text = template.read_text()
    missing = sorted({name for name in _PLACEHOLDER.findall(text) if name not in values})
    if missing:
        raise KeyError(f"no value for {', '.join(missing)} in {template}")
    return _PLACEHOLDER.sub(lambda match: values[match.group(1)], text)


def nginx_binary() -> str:
    """nginx from Debian's packages (scripts/ensure-services installs it)."""
    found = shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin:/usr/local/sbin")
    if found is None:
        raise FileNotFoundError("nginx is not installed: run scripts/ensure-services")
    return found


@dataclass
class Nginx:
    popen: subprocess.Popen[bytes]
    folder: Path

    def log(self, name: str) -> str:
        return (self.folder / name).read_text(errors="replace")


@contextmanager
def nginx(folder: Path, values: Mapping[str, str]) -> Iterator[Nginx]:
    """nginx serving the rendered configuration from `folder`, stopped on exit."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "remixq.conf").write_text(render(values))
    # As root, nginx's workers would run as nobody, who may not enter the test's folders.
    user = "user root;\n" if os.geteuid() == 0 else ""
    (folder / "nginx.conf").write_text(
        f"{user}daemon off;\nworker_processes 1;\npid {folder}/nginx.pid;\n"
        f"error_log {folder}/error.log warn;\n"
        "events { worker_connections 4096; }\n"
        "http {\n"
        f"  access_log {folder}/access.log;\n"
        f"  client_body_temp_path {folder}/client_body;\n  proxy_temp_path {folder}/proxy;\n"
        f"  fastcgi_temp_path {folder}/fastcgi;\n  uwsgi_temp_path {folder}/uwsgi;\n"
        f"  scgi_temp_path {folder}/scgi;\n"
        f"  include {folder}/remixq.conf;\n"
        "}\n"
    )
    binary = nginx_binary()
    command = [binary, "-p", str(folder), "-c", str(folder / "nginx.conf")]
    command += ["-e", str(folder / "error.log")]
    check = subprocess.run([*command, "-t"], capture_output=True, text=True, check=False)
    if check.returncode != 0:
        raise RuntimeError(f"nginx refused the configuration:\n{check.stderr}")
    with (folder / "output.log").open("ab") as output:
        popen = subprocess.Popen(
            command, stdout=output, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
        )
    try:
        yield Nginx(popen, folder)
    finally:
        with suppress(ProcessLookupError):
            popen.send_signal(signal.SIGTERM)  # fast shutdown: its workers exit with it
        try:
            popen.wait(10)
        except subprocess.TimeoutExpired:
            popen.kill()
            popen.wait(10)
