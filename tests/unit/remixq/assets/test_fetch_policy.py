"""The fetch policy and the download against a real local HTTP server: what is fetched, and
that every SSRF case (127.0.0.1, 169.254.169.254, a private address, a redirect to one, a name
resolving to one, an oversized body) is refused without a request to the internal address."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator

import pytest

from remixq.assets.fetch import Gone, Unavailable, fetch
from remixq.assets.policy import FetchPolicy, HostRule, Refused
from remixq.config import load_settings
from tests.support.image_host import ImageHost, Reply, image_host
from tests.support.images import jpeg_bytes

JPEG = jpeg_bytes((64, 48))


@pytest.fixture
def host() -> Iterator[ImageHost]:
    with image_host() as running:
        yield running


@pytest.fixture
def internal() -> Iterator[ImageHost]:
    """A second server standing for an internal service: it must never be asked anything."""
    with image_host() as running:
        yield running


def names(table: dict[str, list[str]]) -> Callable[[str], Iterable[str]]:
    """A name service answering `table` (DNS is the outer boundary; no DNS where tests run)."""

    def resolve(name: str) -> Iterable[str]:
        if name not in table:
            raise OSError(f"{name} does not resolve")
        return table[name]

    return resolve


def local(host: ImageHost, **kwargs: object) -> FetchPolicy:
    """The policy with `host` (and only it, by port) allowed as a local host."""
    return FetchPolicy(local_hosts=(HostRule("127.0.0.1", host.port),), **kwargs)  # type: ignore[arg-type]


def test_an_allowed_local_host_is_fetched(host: ImageHost) -> None:
    url = host.route("/a.jpg", Reply(200, JPEG, {"Content-Type": "image/jpeg"}))
    fetched = fetch(url, local(host))
    assert fetched.body == JPEG and fetched.content_type == "image/jpeg"
    (seen,) = host.requests("/a.jpg")
    assert seen.headers["Accept-Encoding"] == "identity"


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:{port}/x.jpg",  # loopback, not on the list (its port differs)
        "http://169.254.169.254/latest/meta-data/",  # the cloud metadata service
        "http://10.1.2.3/x.jpg",  # a private address
        "http://[::1]:{port}/x.jpg",  # IPv6 loopback
        "https://im.runware.ai.evil.example/x.jpg",  # not the allowed name
        "ftp://im.runware.ai/x.jpg",
        "https://user:pw@im.runware.ai/x.jpg",
    ],
)
def test_urls_off_the_allow_list_are_refused_unasked(
    url: str, host: ImageHost, internal: ImageHost
) -> None:
    policy = FetchPolicy(
        hosts=(HostRule("im.runware.ai"),),
        local_hosts=(HostRule("127.0.0.1", host.port),),
        resolve=names({"im.runware.ai": ["93.184.216.34"]}),
    )
    with pytest.raises(Refused):
        fetch(url.format(port=internal.port), policy)
    assert internal.requests() == []


def test_plain_http_is_refused_for_a_public_host() -> None:
    policy = FetchPolicy(hosts=(HostRule("im.runware.ai"),), resolve=names({}))
    with pytest.raises(Refused, match="plain HTTP is allowed only for local image hosts"):
        fetch("http://im.runware.ai/x.jpg", policy)


@pytest.mark.parametrize("address", ["127.0.0.1", "169.254.169.254", "10.0.0.7", "::1"])
def test_an_allowed_name_resolving_to_an_internal_address_is_refused(
    address: str, internal: ImageHost
) -> None:
    policy = FetchPolicy(
        hosts=(HostRule("images.example.test"),),
        resolve=names({"images.example.test": ["93.184.216.34", address]}),
    )
    with pytest.raises(Refused, match=f"resolves to {address}, a"):
        fetch(f"https://images.example.test:{internal.port}/x.jpg", policy)
    assert internal.requests() == []


def test_an_internal_ip_on_the_public_list_is_still_refused(internal: ImageHost) -> None:
    policy = FetchPolicy(hosts=(HostRule("127.0.0.1"),))
    with pytest.raises(Refused, match=r"127\.0\.0\.1 is a loopback address"):
        fetch(f"https://127.0.0.1:{internal.port}/x.jpg", policy)
    assert internal.requests() == []


@pytest.mark.parametrize(
    "location",
    [
        "http://127.0.0.1:{port}/secret",  # loopback, another port than the allowed one
        "http://169.254.169.254/latest/meta-data/",
        "http://192.168.1.1/admin",
        "https://rebound.example.test:{port}/x.jpg",  # an allowed name, resolving to loopback
    ],
)
def test_a_redirect_to_an_internal_address_is_refused_unasked(
    location: str, host: ImageHost, internal: ImageHost
) -> None:
    url = host.route("/r.jpg", Reply.redirect(location.format(port=internal.port)))
    policy = FetchPolicy(
        hosts=(HostRule("rebound.example.test"),),
        local_hosts=(HostRule("127.0.0.1", host.port),),
        resolve=names({"rebound.example.test": ["127.0.0.1"]}),
    )
    with pytest.raises(Refused):
        fetch(url, policy)
    assert len(host.requests("/r.jpg")) == 1
    assert internal.requests() == []


def test_a_redirect_within_the_allow_list_is_followed(host: ImageHost) -> None:
    host.route("/final.jpg", Reply(200, JPEG))
    url = host.route("/moved.jpg", Reply.redirect("/final.jpg", 301))
    fetched = fetch(url, local(host))
    assert fetched.body == JPEG and fetched.url.endswith("/final.jpg")


def test_too_many_redirects_are_refused(host: ImageHost) -> None:
    url = host.route("/loop.jpg", Reply.redirect("/loop.jpg"))
    with pytest.raises(Refused, match="more than 5 redirects"):
        fetch(url, local(host))
    assert len(host.requests("/loop.jpg")) == 6


def test_the_connection_goes_to_the_checked_address(host: ImageHost) -> None:
    """The name is resolved once per hop, by the policy, and the request goes to that address
    with the name in its Host header: a second (rebinding) answer is never asked for."""
    calls: list[str] = []

    def resolve(name: str) -> Iterable[str]:
        calls.append(name)
        return ["127.0.0.1"] if len(calls) == 1 else ["10.9.9.9"]

    url = host.route("/n.jpg", Reply(200, JPEG))
    policy = FetchPolicy(
        local_hosts=(HostRule("images.internal.test", host.port),), resolve=resolve
    )
    named = url.replace("127.0.0.1", "images.internal.test")
    assert fetch(named, policy).body == JPEG
    assert calls == ["images.internal.test"]
    (seen,) = host.requests("/n.jpg")
    assert seen.headers["Host"] == f"images.internal.test:{host.port}"


@pytest.mark.parametrize("chunked", [False, True])
def test_an_oversized_body_is_refused(host: ImageHost, chunked: bool) -> None:
    url = host.route("/big.jpg", Reply(200, b"\xff" * 300_000, chunked=chunked))
    with pytest.raises(Refused, match="REMIXQ_IMAGE_MAX_BYTES"):
        fetch(url, local(host, max_bytes=100_000))


def test_a_body_cut_short_is_unavailable(host: ImageHost) -> None:
    url = host.route("/cut.jpg", Reply(200, JPEG, send_bytes=len(JPEG) // 2))
    with pytest.raises(Unavailable, match="cut short"):
        fetch(url, local(host))


@pytest.mark.parametrize(("status", "kind"), [(500, Unavailable), (503, Unavailable),
                                               (404, Unavailable), (429, Unavailable),
                                               (403, Gone), (410, Gone)])  # fmt: skip
def test_answers_are_transient_or_permanent(host: ImageHost, status: int, kind: type) -> None:
    url = host.route("/s.jpg", Reply(status, b"no"))
    with pytest.raises(kind, match=f"HTTP {status}"):
        fetch(url, local(host))


def test_a_closed_port_is_unavailable(host: ImageHost) -> None:
    port = host.port
    host.stop()
    policy = FetchPolicy(local_hosts=(HostRule("127.0.0.1", port),))
    with pytest.raises(Unavailable, match="no answer"):
        fetch(f"http://127.0.0.1:{port}/x.jpg", policy)


def test_the_settings_make_the_policy() -> None:
    settings = load_settings(
        image_hosts="im.runware.ai,*.cdn.example",
        image_local_hosts="minio:9000",
        simulator_port=8765,
    )
    policy = FetchPolicy.of(settings)
    assert HostRule("im.runware.ai") in policy.hosts
    assert any(rule.matches("a.cdn.example", 443) for rule in policy.hosts)
    assert not any(rule.matches("cdn.example", 443) for rule in policy.hosts)
    # The simulator is the provider without a key: its origin is a local host, by its port.
    assert HostRule("127.0.0.1", 8765) in policy.local_hosts
    assert HostRule("minio", 9000) in policy.local_hosts
    # Each provider without a key is the simulator (Ideogram's own API too): with both keys,
    # no local host; with Runware's alone, the simulator stands in for Ideogram still.
    keys = {"runware_api_key": "k", "image_local_hosts": "", "simulator_port": 8765}
    with_keys = FetchPolicy.of(load_settings(**keys, ideogram_api_key="i"))
    assert with_keys.local_hosts == ()
    runware_key = FetchPolicy.of(load_settings(**keys))
    assert runware_key.local_hosts == (HostRule("127.0.0.1", 8765),)


def test_a_thread_keeps_its_connection_for_the_next_download(host: ImageHost) -> None:
    urls = [host.route(f"/k{i}.jpg", Reply(200, JPEG)) for i in range(3)]
    for url in urls:
        assert fetch(url, local(host)).body == JPEG
    assert len({seen.peer for seen in host.requests()}) == 1


def test_a_connection_the_host_closed_is_not_reused(host: ImageHost) -> None:
    first = host.route("/c1.jpg", Reply(200, JPEG, {"Connection": "close"}))
    second = host.route("/c2.jpg", Reply(200, JPEG))
    assert fetch(first, local(host)).body == JPEG
    assert fetch(second, local(host)).body == JPEG
    (one,), (two,) = host.requests("/c1.jpg"), host.requests("/c2.jpg")
    assert one.peer != two.peer


def test_a_kept_connection_that_fails_is_tried_once_on_a_new_one(host: ImageHost) -> None:
    """A host may close a kept connection as the next request goes out: that request is sent
    again on a new connection, once; a new connection that fails is a failure of the fetch."""
    url = host.route("/h.jpg", Reply(200, JPEG), Reply(hang_up=True), Reply(200, JPEG))
    assert fetch(url, local(host)).body == JPEG
    assert fetch(url, local(host)).body == JPEG  # hung up on the kept one, answered on a new one
    peers = [seen.peer for seen in host.requests("/h.jpg")]
    assert len(peers) == 3 and peers[0] == peers[1] != peers[2]
    fresh = host.route("/f.jpg", Reply(hang_up=True), Reply(200, JPEG))
    host.route("/other.jpg", Reply(200, JPEG, {"Connection": "close"}))
    fetch(host.url("/other.jpg"), local(host))  # no connection kept for the next fetch
    with pytest.raises(Unavailable, match="no answer"):
        fetch(fresh, local(host))
    assert len(host.requests("/f.jpg")) == 1


def test_a_failed_answer_does_not_keep_its_connection(host: ImageHost) -> None:
    url = host.route("/e.jpg", Reply(500, b"oops"), Reply(200, JPEG))
    with pytest.raises(Unavailable):
        fetch(url, local(host))
    assert fetch(url, local(host)).body == JPEG
    first, second = host.requests("/e.jpg")
    assert first.peer != second.peer
