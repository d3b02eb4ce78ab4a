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


def _forbidden(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    # is_private covers 10/8, 172.16/12, 192.168/16, fc00::/7, and is_link_local 169.254/16, where the cloud
    # metadata services answer (169.254.169.254, fd00:ec2::254 is private too).
    return bool(
        ip.is_private
        or ip.is_loopback
        or ip.is_link_local
        or ip.is_multicast
        or ip.is_reserved
        or ip.is_unspecified
    )


def check_url(url: str, *, allow_private: bool) -> None:
    """Refuses a webhook URL that is not http(s) or that resolves to an address inside a network (loopback,
    private, link-local, metadata), unless `allow_private`. Raises InputError `webhook_url_invalid` /
    `webhook_url_refused`."""
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
                f"webhook_url's host {parts.hostname!r} resolves to {ip}, a loopback, private, link-local or "
                "metadata address; webhooks go to public addresses only (RECAP_WEBHOOK_ALLOW_PRIVATE lifts this)",
            )
