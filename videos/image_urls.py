"""URLs that reach outside must name a public web address.

An image URL is handed to the provider, which fetches it; a result URL (and every redirect on
the way to the file) is fetched by our workers. An address inside our network (or the
provider's) must never be reachable that way. The host is resolved, within a time limit, and
every address it resolves to must be public: private, loopback, link-local, reserved and similar
ranges are refused. `resolve_host` is the one seam that tests replace.

What our workers fetch connects to the addresses vetted here (`public_addresses`, then
`videos.outbound`), never to what the name resolves to a moment later.
"""

from __future__ import annotations

import concurrent.futures
import ipaddress
import socket
from urllib.parse import urlsplit

from django.conf import settings

# getaddrinfo has no timeout of its own: it runs here and the caller waits a bounded time.
_resolvers = concurrent.futures.ThreadPoolExecutor(max_workers=4, thread_name_prefix="resolve")


def resolve_host(host: str, port: int) -> list[str]:
    """Every IP address `host` resolves to; raises OSError when it does not resolve."""
    return [str(info[4][0]) for info in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)]


# IPv6 prefixes that carry an IPv4 address in their last 32 bits (IPv4-compatible, NAT64).
_EMBEDS_IPV4_IN_LAST_32_BITS = [ipaddress.ip_network("::/96"), ipaddress.ip_network("64:ff9b::/96")]


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if any(ip in network for network in _EMBEDS_IPV4_IN_LAST_32_BITS):
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def _is_public(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])  # drop an IPv6 zone ("fe80::1%eth0")
    if isinstance(ip, ipaddress.IPv6Address):
        # An IPv6 spelling of an IPv4 address is judged by the IPv4 address it reaches.
        embedded = _embedded_ipv4(ip)
        if embedded is not None and not _is_public(str(embedded)):
            return False
    return ip.is_global and not ip.is_multicast


def _resolve_in_time(host: str, port: int) -> list[str]:
    """`resolve_host`, bounded by DNS_TIMEOUT_SECONDS; raises TimeoutError past it."""
    future = _resolvers.submit(lambda: resolve_host(host, port))
    return future.result(timeout=settings.PIPELINE["DNS_TIMEOUT_SECONDS"])


def image_url_problem(url: str) -> str | None:
    """Why `url` cannot be used as a job's image URL, or None when it can."""
    return public_url_problem(url, name="The image URL")


class NotPublic(Exception):
    """The URL does not name a public http(s) address; the message says why, for people."""


def public_url_problem(url: str, *, name: str) -> str | None:
    """Why `url` does not name a public http(s) address, or None when it does.

    `name` starts each message ("The image URL", "The result URL").
    """
    try:
        public_addresses(url, name=name)
    except NotPublic as exc:
        return str(exc)
    return None


def public_addresses(url: str, *, name: str) -> list[str]:
    """The addresses to connect to for `url`, in the resolver's order (every address its host
    resolves to must be public); raises NotPublic saying why not, its message starting with
    `name`."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise NotPublic("Enter a valid URL.") from exc
    if parts.scheme not in ("http", "https"):
        raise NotPublic(f"{name} must start with http:// or https://.")
    if parts.username is not None or parts.password is not None:
        raise NotPublic(f"{name} must not contain a user name or password.")
    host = parts.hostname
    if not host:
        raise NotPublic(f"{name} has no host.")
    try:
        addresses = _resolve_in_time(host, port or (443 if parts.scheme == "https" else 80))
    except TimeoutError as exc:
        raise NotPublic(f"{name}'s host {host!r} did not resolve in time.") from exc
    except (OSError, UnicodeError, ValueError) as exc:
        raise NotPublic(f"{name}'s host {host!r} does not resolve.") from exc
    if not addresses:
        raise NotPublic(f"{name}'s host {host!r} does not resolve.")
    try:
        public = all(_is_public(address) for address in addresses)
    except ValueError:
        public = False
    if not public:
        raise NotPublic(
            f"{name} must point to a public address; it resolves to a private, "
            "loopback, link-local or reserved one."
        )
    return addresses
