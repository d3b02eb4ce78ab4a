"""Webhook signatures and the address check: what the notify worker signs with, the API checks URLs with, and a
receiver verifies with (the README's receiver is `verify` in ten lines)."""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import socket
import time
from urllib.parse import urlsplit

from shared.errors import InputError

SIGNATURE_HEADER = "Recap-Signature"


def _mac(secret: str, t: int, body: bytes) -> str:
    return hmac.new(secret.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()


def sign(secret: str, body: bytes, at: int | None = None) -> str:
    """`t=<unix seconds>,v1=<hex HMAC-SHA256 of "t.body">`: the timestamp is signed too, so a captured request
    cannot be replayed later with a fresh one."""
    t = int(time.time()) if at is None else at
    return f"t={t},v1={_mac(secret, t, body)}"


def verify(
    secret: str, body: bytes, header: str, *, tolerance_s: float = 300, now: float | None = None
) -> bool:
    """True when `header` signs `body` with `secret` and its timestamp is at most `tolerance_s` old."""
    parts = dict(p.split("=", 1) for p in header.split(",") if "=" in p)
    try:
        t = int(parts["t"])
    except (KeyError, ValueError):
        return False
    if abs((time.time() if now is None else now) - t) > tolerance_s:
        return False
    return hmac.compare_digest(_mac(secret, t, body), parts.get("v1", ""))


NAT64 = ipaddress.ip_network("64:ff9b::/96")  # an IPv4 address in its last 32 bits, reached through a gateway
Address = ipaddress.IPv4Address | ipaddress.IPv6Address


def _embedded(ip: Address) -> list[ipaddress.IPv4Address]:
    """The IPv4 addresses an IPv6 one carries (mapped, 6to4, Teredo's client, NAT64): each must pass too."""
    if not isinstance(ip, ipaddress.IPv6Address):
        return []
    found = [v4 for v4 in (ip.ipv4_mapped, ip.sixtofour) if v4 is not None]
    if ip.teredo is not None:
        found.append(ip.teredo[1])
    if ip in NAT64:
        found.append(ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF))
    return found


def _forbidden(ip: Address) -> bool:
    # Only globally routable addresses: is_global leaves out loopback, private, link-local (169.254/16, where
    # cloud metadata answers), shared address space (100.64/10), reserved and documentation ranges.
    return not ip.is_global or ip.is_multicast or any(_forbidden(v4) for v4 in _embedded(ip))


def check_url(url: str, *, allow_private: bool) -> None:
    """Refuses a webhook URL that is not http(s) or that resolves to an address inside a network (loopback,
    private, link-local, metadata), unless `allow_private`. Raises InputError `webhook_url_invalid` /
    `webhook_url_refused`."""
    if any(ord(c) <= 0x20 or ord(c) == 0x7F for c in url):
        # A space or a line break would be refused by httpx at every attempt (or split a header if it were not).
        raise InputError(
            "webhook_url_invalid", f"webhook_url must not contain spaces or control characters: {url!r}"
        )
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InputError(
            "webhook_url_invalid", f"webhook_url must be an http(s) URL with a host, not {url!r}"
        )
    if allow_private:
        return
    try:
        infos = socket.getaddrinfo(parts.hostname, parts.port or 443, proto=socket.IPPROTO_TCP)
    except (socket.gaierror, UnicodeError) as exc:
        raise InputError(
            "webhook_url_invalid", f"webhook_url's host {parts.hostname!r} does not resolve"
        ) from exc
    for info in infos:
        ip = ipaddress.ip_address(str(info[4][0]).split("%")[0])
        if _forbidden(ip):
            raise InputError(
                "webhook_url_refused",
                f"webhook_url's host {parts.hostname!r} resolves to {ip}, not a globally routable address "
                "(loopback, private, link-local, shared, metadata); webhooks go to public addresses only "
                "(RECAP_WEBHOOK_ALLOW_PRIVATE lifts this)",
            )
