"""Where a fetch of an image may go: the allow list, the schemes, the addresses.

Image URLs come from the provider's results, and a result can come from anyone who holds a
leaked webhook URL; a fetch must not become a probe of our own network (SSRF). So a URL is
fetched only when:

- its host is on the allow list: `REMIXQ_IMAGE_HOSTS` (the provider's image hosts, by default
  the one the documentation shows, `im.runware.ai`) or `REMIXQ_IMAGE_LOCAL_HOSTS` (hosts of our
  own network, such as the local simulator, added by itself when it is the provider). An entry
  is a name (any port), `name:port`, or `*.suffix` (any name below it);
- its scheme is HTTPS, or plain HTTP for a local host only;
- every address its host resolves to is public, unless the host is a local one: a private,
  loopback, link-local (169.254.169.254, the cloud metadata service), multicast, reserved or
  unspecified address is refused (`remixq.url_policy.address_class`);
- it carries no credentials.

The name is resolved once, here, and the fetch connects to the address that was checked
(`Target.addresses`), never resolving it again: a name that answers a public address to the
check and a private one to the connection (DNS rebinding) cannot slip through. Each redirect is
a new URL checked the same way (`remixq.assets.fetch`).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from remixq.config import Settings
from remixq.url_policy import address_class, resolve_host

MAX_REDIRECTS = 5


class Refused(Exception):
    """The fetch policy refuses a URL, a redirect or a body: the asset ends `refused`."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class HostRule:
    """One allow-list entry: `name`, `name:port` or `*.suffix` (any port unless given)."""

    name: str
    port: int | None = None

    @classmethod
    def parse(cls, entry: str) -> HostRule:
        text = entry.strip().lower().rstrip(".")
        if text.startswith("[") and "]" in text:  # [v6]:port
            host, _, rest = text[1:].partition("]")
            return cls(host, int(rest[1:]) if rest.startswith(":") else None)
        if text.count(":") == 1:
            host, _, port = text.partition(":")
            return cls(host, int(port))
        return cls(text)

    def matches(self, host: str, port: int) -> bool:
        if self.port is not None and self.port != port:
            return False
        if self.name.startswith("*."):
            return host.endswith(self.name[1:]) and host != self.name[2:]
        return host == self.name


@dataclass(frozen=True)
class Target:
    """A checked URL: where to connect (`addresses`, every one of them allowed) and what to
    ask for there."""

    url: str
    scheme: str
    host: str
    port: int
    addresses: tuple[str, ...]
    path: str  # path and query, as sent
    host_header: str


@dataclass(frozen=True)
class FetchPolicy:
    """The rules of the module's docstring, and the limits of one download."""

    hosts: tuple[HostRule, ...] = ()
    local_hosts: tuple[HostRule, ...] = ()
    max_bytes: int = 32 * 1_048_576
    connect_timeout: float = 3.05
    total_timeout: float = 60.0
    # The name service (DNS is the outer boundary: tests of names give their own).
    resolve: Callable[[str], Iterable[str]] = field(default=resolve_host, compare=False)
    # The certificate authorities HTTPS is checked against (None: certifi's, as requests').
    ca_certs: str | None = None

    @classmethod
    def of(cls, settings: Settings) -> FetchPolicy:
        return cls(
            hosts=tuple(HostRule.parse(entry) for entry in settings.image_hosts),
            local_hosts=tuple(HostRule.parse(entry) for entry in settings.local_image_hosts),
            max_bytes=settings.image_max_bytes,
            connect_timeout=settings.http_connect_timeout,
            total_timeout=settings.image_fetch_timeout,
        )

    def check(self, url: str) -> Target:
        """The target `url` names, its host resolved and every address checked; Refused
        (saying why, never with the URL's query: it may be a credential) otherwise."""
        try:
            parts = urlsplit(url)
            port = parts.port
        except ValueError:
            raise Refused("the image URL is not a valid URL") from None
        scheme = parts.scheme.lower()
        host = (parts.hostname or "").rstrip(".")
        if scheme not in ("http", "https") or not host:
            raise Refused(f"an http(s) image URL with a host is allowed, not {scheme or '(none)'}")
        if parts.username is not None or parts.password is not None:
            raise Refused("an image URL with credentials in it is not fetched")
        port = port or (443 if scheme == "https" else 80)
        shown = f"{host}:{port}"
        local = any(rule.matches(host, port) for rule in self.local_hosts)
        if not local and not any(rule.matches(host, port) for rule in self.hosts):
            raise Refused(
                f"host {shown} is not on the image allow list (REMIXQ_IMAGE_HOSTS,"
                " REMIXQ_IMAGE_LOCAL_HOSTS)"
            )
        if scheme == "http" and not local:
            raise Refused(f"plain HTTP is allowed only for local image hosts, not {shown}")
        addresses = self._addresses(host, local=local)
        path = parts.path or "/"
        if parts.query:
            path += "?" + parts.query
        default = 443 if scheme == "https" else 80
        host_header = host if ":" not in host else f"[{host}]"
        if port != default:
            host_header += f":{port}"
        return Target(url, scheme, host, port, addresses, path, host_header)

    def _addresses(self, host: str, *, local: bool) -> tuple[str, ...]:
        try:
            literal: ipaddress.IPv4Address | ipaddress.IPv6Address | None = ipaddress.ip_address(
                host
            )
        except ValueError:
            literal = None
        if literal is not None:
            found = [str(literal)]
        else:
            try:
                found = list(dict.fromkeys(self.resolve(host)))
            except (OSError, UnicodeError):
                found = []
            if not found:
                raise Refused(f"image host {host} does not resolve")
        if not local:
            for address in found:
                kind = address_class(ipaddress.ip_address(address.split("%", 1)[0]))
                if kind is not None:
                    what = "is a" if literal else f"resolves to {address}, a"
                    raise Refused(
                        f"image host {host} {what} {kind} address; only the hosts of"
                        " REMIXQ_IMAGE_LOCAL_HOSTS may be private, loopback or link-local"
                    )
        # IPv4 first: a machine without an IPv6 route fails those connections.
        return tuple(sorted(found, key=lambda a: ":" in a))
