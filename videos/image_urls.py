"""Image URLs from clients must name a public web address.

The URL is handed to the provider, which fetches it; an address inside our network (or the
provider's) must never be reachable that way. The host is resolved and every address it
resolves to must be public: private, loopback, link-local, reserved and similar ranges are
refused. `resolve_host` is the one seam that tests replace.
"""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlsplit


def resolve_host(host: str, port: int) -> list[str]:
    """Every IP address `host` resolves to; raises OSError when it does not resolve."""
    return [info[4][0] for info in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)]


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


def image_url_problem(url: str) -> str | None:
    """Why `url` cannot be used as a job's image URL, or None when it can."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return "Enter a valid URL."
    if parts.scheme not in ("http", "https"):
        return "The image URL must start with http:// or https://."
    if parts.username is not None or parts.password is not None:
        return "The image URL must not contain a user name or password."
    host = parts.hostname
    if not host:
        return "The image URL has no host."
    try:
        addresses = resolve_host(host, port or (443 if parts.scheme == "https" else 80))
    except (OSError, UnicodeError, ValueError):
        return f"The image URL's host {host!r} does not resolve."
    if not addresses:
        return f"The image URL's host {host!r} does not resolve."
    try:
        public = all(_is_public(address) for address in addresses)
    except ValueError:
        public = False
    if not public:
        return (
            "The image URL must point to a public address; it resolves to a private, "
            "loopback, link-local or reserved one."
        )
    return None
