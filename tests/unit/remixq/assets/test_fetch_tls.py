"""HTTPS downloads connect to the checked address yet check TLS against the URL's name: a
local TLS server with a certificate for `images.test` (made with openssl for the test)."""

from __future__ import annotations

import ssl
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from remixq.assets.fetch import Unavailable, fetch
from remixq.assets.policy import FetchPolicy, HostRule
from tests.support.image_host import ImageHost, Reply
from tests.support.images import jpeg_bytes

JPEG = jpeg_bytes((10, 10))


def _certificate(folder: Path, name: str) -> tuple[Path, Path]:
    cert, key = folder / f"{name}.pem", folder / f"{name}.key"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", f"/CN={name}", "-addext", f"subjectAltName=DNS:{name}",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    return cert, key


@contextmanager
def tls_host(folder: Path, name: str) -> Iterator[tuple[ImageHost, Path]]:
    """A TLS image host on 127.0.0.1 whose certificate names `name`; and that certificate."""
    cert, key = _certificate(folder, name)
    host = ImageHost()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    host.server.socket = context.wrap_socket(host.server.socket, server_side=True)
    host.start()
    try:
        yield host, cert
    finally:
        host.stop()


def _policy(host: ImageHost, ca: Path) -> FetchPolicy:
    return FetchPolicy(
        local_hosts=(HostRule("images.test", host.port),),
        resolve=lambda _name: ["127.0.0.1"],
        ca_certs=str(ca),
    )


def test_https_checks_the_certificate_of_the_name(tmp_path: Path) -> None:
    with tls_host(tmp_path, "images.test") as (host, cert):
        host.route("/a.jpg", Reply(200, JPEG))
        fetched = fetch(f"https://images.test:{host.port}/a.jpg", _policy(host, cert))
        assert fetched.body == JPEG
        (seen,) = host.requests("/a.jpg")
        assert seen.headers["Host"] == f"images.test:{host.port}"


def test_a_trusted_certificate_for_another_name_is_refused(tmp_path: Path) -> None:
    """The address answers with a certificate we trust, but for another name: the connection
    went to the checked address, and TLS still says it is not `images.test`."""
    with tls_host(tmp_path, "other.test") as (host, cert):
        host.route("/a.jpg", Reply(200, JPEG))
        with pytest.raises(Unavailable, match="no answer"):
            fetch(f"https://images.test:{host.port}/a.jpg", _policy(host, cert))
        assert host.requests() == []
