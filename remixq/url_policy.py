"""Which hosts a URL given by a user may name: URLs the provider will be told to contact.

A request's ``uploadEndpoint`` and its reference images given as URLs are fetched or written by
the provider (and, locally, by the simulator), never by remixq; a URL naming an internal address
would turn that party into a probe of its own network. With ``refuse_private`` on
(``REMIXQ_REFUSE_PRIVATE_URLS``), a host is accepted only when it is a global address, or a name
whose every address is: private, loopback, link-local, multicast, reserved and unspecified
addresses are refused, as are ``localhost`` and a name that does not resolve. Names are resolved
at validation time; the provider resolves them again later, so this narrows what a user can aim
at and does not replace network egress rules where the URLs are fetched.

The policy is a value passed to whatever validates (no global state); its cache of resolved names
lives as long as the policy, i.e. one campaign file or one API request.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# Checked in this order, so that 127.0.0.1 is called loopback and 240.0.0.1 reserved, though
# Python counts both as private too.
_CLASSES = ("unspecified", "loopback", "link_local", "multicast", "reserved", "private")


def resolve_host(host: str) -> list[str]:
    """Every address ``host`` resolves to (``socket.getaddrinfo``); OSError when it does not."""
    return sorted({str(info[4][0]) for info in socket.getaddrinfo(host, None)})


@dataclass(frozen=True)
class UrlPolicy:
    """What a user-given URL may point at. The default allows any http(s) host (local use)."""

    refuse_private: bool = False
    # The name service; only tests of a public name (no DNS where they run) give another.
    resolve: Callable[[str], Iterable[str]] = resolve_host
    _resolved: dict[str, str | None] = field(default_factory=dict, compare=False, repr=False)

    def refusal(self, url: str) -> str | None:
        """Why ``url``'s host is refused (the sentence of what is allowed), or None."""
        if not self.refuse_private:
            return None
        try:
            host = urlsplit(url).hostname
        except ValueError:
            host = None
        if not host:
            return "an http(s) URL with a host"
        host = host.rstrip(".")
        if host not in self._resolved:
            self._resolved[host] = self._host_refusal(host)
        return self._resolved[host]

    def _host_refusal(self, host: str) -> str | None:
        public = "an http(s) URL to a public host (REMIXQ_REFUSE_PRIVATE_URLS is on)"
        if host == "localhost" or host.endswith(".localhost"):
            return f"{public}; {host} is the local machine"
        try:
            literal: IPAddress | None = ipaddress.ip_address(host)
        except ValueError:
            literal = None
        if literal is not None:
            kind = address_class(literal)
            return None if kind is None else f"{public}; {host} is a {kind} address"
        try:
            addresses = list(self.resolve(host))
        except (OSError, UnicodeError):
            addresses = []
        if not addresses:
            return f"{public}; {host} does not resolve"
        for address in addresses:
            kind = address_class(ipaddress.ip_address(address.split("%", 1)[0]))
            if kind is not None:
                return f"{public}; {host} resolves to {address}, a {kind} address"
        return None


def address_class(address: IPAddress) -> str | None:
    """The kind of non-public address ``address`` is (``loopback``...), or None when global."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    for name in _CLASSES:
        if getattr(address, f"is_{name}"):
            return name.replace("_", "-")
    if not address.is_global:  # e.g. 100.64.0.0/10, the carrier-grade NAT range
        return "non-global"
    return None
