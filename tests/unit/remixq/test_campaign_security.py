"""Hostile campaign files and user-given URLs (issue 13): local image paths confined to the
campaign's folder and the operator's image folders, only real images of the format their name
claims, no local file read for requests from the HTTP API, and URLs the provider will contact
held to http(s) and, when asked, to public hosts."""

from __future__ import annotations

import base64
import io
import json
import os
import socket
import uuid
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from remixq.campaigns import NO_LOCAL_FILES, read_campaign, read_requests
from remixq.errors import FieldError, InvalidInput
from remixq.local_images import (
    MAX_LOCAL_IMAGE_BYTES,
    MAX_LOCAL_IMAGE_PIXELS,
    OUTSIDE,
    LocalImages,
)
from remixq.url_policy import UrlPolicy
from tests.support.cli import remixq
from tests.support.images import image_bytes, jpeg_bytes, png_bytes, webp_bytes

IMAGE_UUID = "c64351d5-4c59-42f7-95e1-eace013eddab"
PUBLIC_URL = "https://93.184.215.14/ref.png"


def request(image: str = IMAGE_UUID, **extra: Any) -> dict[str, Any]:
    return {
        "model": "ideogram:4@2",
        "positivePrompt": "a poster",
        "width": 1024,
        "height": 1024,
        "inputs": {"referenceImages": [image]},
        **extra,
    }


def campaign(folder: Path, *rows: dict[str, Any]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "c.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def refusal(path: Path, **kwargs: Any) -> FieldError:
    """The one error reading the campaign at ``path`` gives."""
    with pytest.raises(InvalidInput) as caught:
        read_campaign(path, **kwargs)
    assert len(caught.value.errors) == 1, caught.value.errors
    return caught.value.errors[0]


def inlined(path: Path, **kwargs: Any) -> str:
    """The reference image of the first request of the campaign at ``path``, as sent."""
    image: str = read_campaign(path, **kwargs)[0].request.inputs.reference_images[0]
    return image


# --- local paths stay inside the allowed folders -------------------------------------------------


def test_an_image_beside_the_file_is_inlined_as_what_its_bytes_are(tmp_path: Path) -> None:
    for name, data, mime in (
        ("a.png", png_bytes(), "image/png"),
        ("sub/b.JPG", jpeg_bytes(), "image/jpeg"),
        ("c.jpeg", jpeg_bytes(), "image/jpeg"),
        ("d.webp", webp_bytes(), "image/webp"),
    ):
        (tmp_path / name).parent.mkdir(exist_ok=True)
        (tmp_path / name).write_bytes(data)
        path = campaign(tmp_path, request(name))
        assert inlined(path) == f"data:{mime};base64,{base64.b64encode(data).decode()}"


def test_an_absolute_path_outside_is_refused(tmp_path: Path) -> None:
    secret = tmp_path / "elsewhere" / "secret.png"
    secret.parent.mkdir()
    secret.write_bytes(png_bytes())  # a real image: only where it lies is wrong
    error = refusal(campaign(tmp_path / "campaign", request(str(secret))))
    assert error == FieldError("inputs.referenceImages[0]", str(secret), OUTSIDE, "line 1")


def test_an_absolute_path_to_a_system_file_is_refused(tmp_path: Path) -> None:
    error = refusal(campaign(tmp_path, request("/etc/passwd")))
    assert error.allowed in (OUTSIDE, "a .png, .jpg, .jpeg or .webp image file")
    assert error.allowed == OUTSIDE  # confinement is checked before anything else


def test_a_dotdot_escape_is_refused(tmp_path: Path) -> None:
    (tmp_path / "fake_secret.png").write_bytes(png_bytes())
    path = campaign(tmp_path / "a" / "b", request("../../fake_secret.png"))
    assert refusal(path).allowed == OUTSIDE


def test_a_dotdot_that_comes_back_inside_is_accepted(tmp_path: Path) -> None:
    folder = tmp_path / "campaign"
    (folder / "sub").mkdir(parents=True)
    (folder / "ref.png").write_bytes(png_bytes())
    assert inlined(campaign(folder, request("sub/../ref.png"))).startswith("data:image/png;")


def test_a_symlink_to_a_text_file_outside_is_refused(tmp_path: Path) -> None:
    """The attack of the issue: a secret symlinked as innocent.png was sent as data:image/png."""
    secret = tmp_path / "secret.txt"
    secret.write_text("API_KEY=hunter2\n")
    folder = tmp_path / "campaign"
    folder.mkdir()
    (folder / "innocent.png").symlink_to(secret)
    error = refusal(campaign(folder, request("innocent.png")))
    assert error.field == "inputs.referenceImages[0]" and error.allowed == OUTSIDE


def test_a_symlink_to_an_image_outside_is_refused(tmp_path: Path) -> None:
    outside = tmp_path / "outside.png"
    outside.write_bytes(png_bytes())
    folder = tmp_path / "campaign"
    folder.mkdir()
    (folder / "link.png").symlink_to(outside)
    assert refusal(campaign(folder, request("link.png"))).allowed == OUTSIDE


def test_a_symlinked_folder_leading_outside_is_refused(tmp_path: Path) -> None:
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "a.png").write_bytes(png_bytes())
    folder = tmp_path / "campaign"
    folder.mkdir()
    (folder / "images").symlink_to(tmp_path / "outside", target_is_directory=True)
    assert refusal(campaign(folder, request("images/a.png"))).allowed == OUTSIDE


def test_a_symlink_inside_the_folder_is_followed(tmp_path: Path) -> None:
    (tmp_path / "real.png").write_bytes(png_bytes())
    (tmp_path / "alias.png").symlink_to(tmp_path / "real.png")
    assert inlined(campaign(tmp_path, request("alias.png"))).startswith("data:image/png;")


def test_image_dirs_let_an_outside_folder_in(tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    (shared / "a.png").write_bytes(png_bytes())
    folder = tmp_path / "campaign"
    folder.mkdir()
    (folder / "link.png").symlink_to(shared / "a.png")
    for value in (str(shared / "a.png"), "../shared/a.png", "link.png"):
        path = campaign(folder, request(value))
        assert refusal(path).allowed == OUTSIDE
        assert inlined(path, image_dirs=[shared]).startswith("data:image/png;")
    # The allowed folder is one folder, not a prefix of names.
    (tmp_path / "shared-not").mkdir()
    (tmp_path / "shared-not" / "b.png").write_bytes(png_bytes())
    path = campaign(folder, request("../shared-not/b.png"))
    assert refusal(path, image_dirs=[shared]).allowed == OUTSIDE


def test_a_missing_file_and_a_symlink_loop_are_refused(tmp_path: Path) -> None:
    (tmp_path / "loop.png").symlink_to(tmp_path / "loop.png")
    for value in ("missing.png", "loop.png"):
        error = refusal(campaign(tmp_path, request(value)))
        assert error.value == value and "an existing image file" in error.allowed


# --- only real images of the claimed format, size-capped -----------------------------------------


def test_a_text_file_named_png_is_refused(tmp_path: Path) -> None:
    (tmp_path / "notes.png").write_text("not an image at all\n")
    error = refusal(campaign(tmp_path, request("notes.png")))
    assert error.allowed == "a PNG image (the file's bytes do not decode as one)"


def test_a_png_named_jpg_is_refused(tmp_path: Path) -> None:
    (tmp_path / "photo.jpg").write_bytes(png_bytes())
    error = refusal(campaign(tmp_path, request("photo.jpg")))
    assert error.allowed == "a JPEG image, as its extension says (its bytes are PNG)"


def test_an_unknown_extension_is_refused(tmp_path: Path) -> None:
    (tmp_path / "a.gif").write_bytes(image_bytes("GIF"))
    error = refusal(campaign(tmp_path, request("a.gif")))
    assert error.allowed == "a .png, .jpg, .jpeg or .webp image file"


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "WEBP"])
def test_a_truncated_image_is_refused(tmp_path: Path, fmt: str) -> None:
    noise = Image.frombytes("RGB", (64, 64), os.urandom(64 * 64 * 3))
    out = io.BytesIO()
    noise.save(out, format=fmt)
    data = out.getvalue()
    name = f"cut.{fmt.lower()}"
    (tmp_path / name).write_bytes(data[: len(data) // 2])
    error = refusal(campaign(tmp_path, request(name)))
    assert error.allowed == f"a {fmt} image (the file's bytes do not decode as one)"
    (tmp_path / name).write_bytes(data)  # whole, the same file is accepted
    assert inlined(campaign(tmp_path, request(name))).startswith("data:image/")


def test_an_oversize_file_is_refused_before_it_is_read(tmp_path: Path) -> None:
    big = tmp_path / "big.png"
    with big.open("wb") as file:  # sparse: the size says it all
        file.write(png_bytes())
        file.truncate(MAX_LOCAL_IMAGE_BYTES + 1)
    assert refusal(campaign(tmp_path, request("big.png"))).allowed == (
        "an image file of at most 10 MB"
    )


@pytest.mark.parametrize(
    ("side", "declared"),
    [
        (8_000, "it declares 8000x8000"),  # over remixq's cap, under Pillow's own
        (20_000, "it declares more"),  # over Pillow's: refused as Pillow opens it
    ],
)
def test_a_decompression_bomb_is_refused(tmp_path: Path, side: int, declared: str) -> None:
    # Millions of pixels of one colour: kilobytes on disk, hundreds of megabytes once decoded.
    out = io.BytesIO()
    Image.new("1", (side, side)).save(out, format="PNG")
    assert len(out.getvalue()) < 200_000
    (tmp_path / "bomb.png").write_bytes(out.getvalue())
    error = refusal(campaign(tmp_path, request("bomb.png")))
    assert error.allowed == f"an image of at most {MAX_LOCAL_IMAGE_PIXELS:,} pixels ({declared})"


def test_a_fifo_is_refused_without_blocking(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "pipe.png")
    assert refusal(campaign(tmp_path, request("pipe.png"))).allowed == "a regular image file"


def test_every_bad_image_of_a_file_is_named(tmp_path: Path) -> None:
    (tmp_path / "text.png").write_text("x")
    (tmp_path / "ok.png").write_bytes(png_bytes())
    path = campaign(tmp_path, request("ok.png"), request("text.png"), request("/etc/hostname"))
    with pytest.raises(InvalidInput) as caught:
        read_campaign(path)
    assert [(e.location, e.value) for e in caught.value.errors] == [
        ("line 2", "text.png"),
        ("line 3", "/etc/hostname"),
    ]


# --- requests from the HTTP API read no local file -----------------------------------------------


def test_read_requests_reads_no_local_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "ref.png").write_bytes(png_bytes())
    monkeypatch.chdir(tmp_path)  # the file exists where a relative path would find it
    for value in ("ref.png", str(tmp_path / "ref.png"), "/etc/passwd", "file:///etc/passwd"):
        with pytest.raises(InvalidInput) as caught:
            read_requests([request(IMAGE_UUID), request(value)])
        assert caught.value.errors == [
            FieldError("inputs.referenceImages[0]", value, NO_LOCAL_FILES, "requests[1]")
        ]


def test_read_requests_takes_references_and_names_each_request(tmp_path: Path) -> None:
    data_uri = "data:image/png;base64," + base64.b64encode(png_bytes()).decode()
    rows = [request(IMAGE_UUID), request(PUBLIC_URL), request(data_uri)]
    jobs = read_requests(rows)
    assert [job.location for job in jobs] == ["requests[0]", "requests[1]", "requests[2]"]
    assert jobs[2].request.inputs.reference_images == [data_uri]
    with pytest.raises(InvalidInput) as caught:
        read_requests([request(), "not an object", request(numberResults=99)])
    assert [(e.location, e.field) for e in caught.value.errors] == [
        ("requests[1]", "(request)"),
        ("requests[2]", "numberResults"),
    ]
    with pytest.raises(InvalidInput, match="at least one request"):
        read_requests([])


def test_read_requests_reads_local_files_only_where_told(tmp_path: Path) -> None:
    (tmp_path / "ref.png").write_bytes(png_bytes())
    jobs = read_requests([request("ref.png")], local_images=LocalImages(tmp_path))
    assert jobs[0].request.inputs.reference_images[0].startswith("data:image/png;base64,")


# --- URLs the provider will contact --------------------------------------------------------------

REFUSE = UrlPolicy(refuse_private=True)


def url_errors(row: dict[str, Any], urls: UrlPolicy | None) -> list[FieldError]:
    try:
        read_requests([row], urls=urls)
    except InvalidInput as exc:
        return exc.errors
    return []


@pytest.mark.parametrize(
    "url", ["ftp://x.test/a.png", "file:///etc/passwd", "gopher://x.test/", "http://", "http:x"]
)
def test_urls_are_http_or_https_only(url: str) -> None:
    for row, field in (
        (request(uploadEndpoint=url), "uploadEndpoint"),
        (request(url), "inputs.referenceImages[0]"),
    ):
        errors = url_errors(row, None)
        assert [e.field for e in errors] == [field], errors
        assert "http(s) URL" in errors[0].allowed


@pytest.mark.parametrize(
    ("host", "kind"),
    [
        ("10.1.2.3", "private"),
        ("172.16.0.1", "private"),
        ("192.168.1.1", "private"),
        ("127.0.0.1", "loopback"),
        ("127.1.2.3", "loopback"),
        ("169.254.169.254", "link-local"),  # the cloud metadata service
        ("224.0.0.1", "multicast"),
        ("240.0.0.1", "reserved"),
        ("0.0.0.0", "unspecified"),  # noqa: S104 (a URL's host here, nothing binds to it)
        ("100.64.0.1", "non-global"),
        ("[::1]", "loopback"),
        ("[::]", "unspecified"),
        ("[fe80::1]", "link-local"),
        ("[fc00::1]", "private"),
        ("[ff02::1]", "multicast"),
        ("[::ffff:127.0.0.1]", "loopback"),
        ("[::ffff:10.0.0.1]", "private"),
    ],
)
def test_private_ip_literals_are_refused_when_asked(host: str, kind: str) -> None:
    for row, field in (
        (request(uploadEndpoint=f"https://{host}:8443/put"), "uploadEndpoint"),
        (request(f"http://{host}/ref.png"), "inputs.referenceImages[0]"),
    ):
        assert url_errors(row, None) == []  # local use: any host
        errors = url_errors(row, REFUSE)
        assert [e.field for e in errors] == [field], errors
        assert errors[0].allowed.startswith("an http(s) URL to a public host")
        assert errors[0].allowed.endswith(f"{host.strip('[]')} is a {kind} address")


@pytest.mark.parametrize("host", ["localhost", "LOCALHOST.", "api.localhost"])
def test_localhost_is_refused_by_name(host: str) -> None:
    errors = url_errors(request(uploadEndpoint=f"http://{host}:8700/put"), REFUSE)
    assert [e.field for e in errors] == ["uploadEndpoint"]
    assert "is the local machine" in errors[0].allowed


def test_a_number_that_names_loopback_is_refused() -> None:
    # 2130706433 and 0x7f.1 are 127.0.0.1 to the resolver, though not IP literals by the book.
    for host in ("2130706433", "0x7f.1"):
        errors = url_errors(request(f"http://{host}/ref.png"), REFUSE)
        assert errors and errors[0].allowed.endswith("resolves to 127.0.0.1, a loopback address")


def test_a_hostname_resolving_to_loopback_is_refused() -> None:
    host = socket.gethostname()
    try:
        addresses = {info[4][0] for info in socket.getaddrinfo(host, None)}
    except OSError:
        pytest.skip(f"this machine's name {host!r} does not resolve")
    if not any(str(a).startswith("127.") for a in addresses):
        pytest.skip(f"this machine's name {host!r} resolves to {addresses}, not loopback")
    errors = url_errors(request(uploadEndpoint=f"https://{host}/put"), REFUSE)
    assert [e.field for e in errors] == ["uploadEndpoint"]
    assert f"{host.lower()} resolves to 127." in errors[0].allowed
    assert url_errors(request(uploadEndpoint=f"https://{host}/put"), None) == []


def test_a_hostname_that_does_not_resolve_is_refused_when_asked() -> None:
    row = request(uploadEndpoint="https://no-such-host.invalid/put")
    assert url_errors(row, None) == []
    [error] = url_errors(row, REFUSE)
    assert error.allowed.endswith("no-such-host.invalid does not resolve")


def test_a_public_host_is_accepted_and_every_address_counts() -> None:
    # The name service is the outer boundary: no DNS where the tests run.
    name = "images.example.org"
    public = UrlPolicy(refuse_private=True, resolve={name: ["93.184.215.14"]}.__getitem__)
    mixed = UrlPolicy(
        refuse_private=True, resolve={name: ["93.184.215.14", "10.0.0.7"]}.__getitem__
    )
    row = request("https://images.example.org/a.png", uploadEndpoint="https://[2606:4700::1111]/")
    assert url_errors(row, public) == []
    [error] = url_errors(row, mixed)
    assert error.field == "inputs.referenceImages[0]"
    assert error.allowed.endswith("images.example.org resolves to 10.0.0.7, a private address")
    assert url_errors(request(PUBLIC_URL), REFUSE) == []


def test_the_policy_applies_to_campaign_files(tmp_path: Path) -> None:
    path = campaign(tmp_path, request("http://169.254.169.254/latest/meta-data/x.png"))
    assert read_campaign(path)  # off by default
    error = refusal(path, urls=REFUSE)
    assert error.location == "line 1" and "link-local" in error.allowed


# --- the command line ----------------------------------------------------------------------------


def test_cli_refuses_a_symlink_escape_in_one_line(tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("API_KEY=hunter2\n")
    folder = tmp_path / "campaign"
    folder.mkdir()
    (folder / "innocent.png").symlink_to(secret)
    path = campaign(folder, request(), request("innocent.png"))
    done = remixq(tmp_path, "submit", str(path), "--json")
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr == (
        f"error: line 2: inputs.referenceImages[0]: 'innocent.png' is not allowed; {OUTSIDE}\n"
    )
    status = remixq(tmp_path, "status", "--json")
    assert status.returncode == 2 and "CAMPAIGN" in status.stderr  # nothing was stored


def test_cli_image_dir_and_environment(tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    (shared / "a.png").write_bytes(png_bytes())
    path = campaign(tmp_path / "campaign", request("../shared/a.png"))
    assert remixq(tmp_path, "submit", str(path)).returncode == 2
    done = remixq(tmp_path, "submit", str(path), "--image-dir", str(shared), "--json")
    assert done.returncode == 0, done.stderr
    done = remixq(
        tmp_path, "submit", str(path), "--again", env={"REMIXQ_IMAGE_DIRS": f"/nowhere:{shared}"}
    )
    assert done.returncode == 0, done.stderr


def test_cli_applies_the_private_url_option(tmp_path: Path) -> None:
    path = campaign(tmp_path, request(uploadEndpoint=f"http://127.0.0.1:9/{uuid.uuid4()}"))
    done = remixq(tmp_path, "submit", str(path), env={"REMIXQ_REFUSE_PRIVATE_URLS": "1"})
    assert done.returncode == 2 and done.stderr.count("\n") == 1
    assert "uploadEndpoint" in done.stderr and "127.0.0.1 is a loopback address" in done.stderr
    assert remixq(tmp_path, "submit", str(path), "--json").returncode == 0  # off by default
