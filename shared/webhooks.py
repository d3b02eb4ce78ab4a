"""Webhook signatures and the address check: what the notify worker signs with, the API checks URLs with, and a
receiver verifies with. Two signatures: Standard Webhooks (`webhook-id`, `webhook-timestamp`, `webhook-signature`,
verified by the `standardwebhooks` package) and Recap's own `Recap-Signature`, kept for existing receivers."""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import socket
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import SplitResult, urlsplit

import httpx
from standardwebhooks import Webhook

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


def standard_headers(secret: str, msg_id: str, body: bytes, at: int | None = None) -> dict[str, str]:
    """Standard Webhooks' three headers: `v1,<base64 HMAC-SHA256 of "id.timestamp.body">` under the secret's
    base64 bytes (the `whsec_` secret a tenant was given works as is in `standardwebhooks.Webhook`)."""
    t = int(time.time()) if at is None else at
    signature = Webhook(secret).sign(msg_id, datetime.fromtimestamp(t, tz=UTC), body.decode())
    return {"webhook-id": msg_id, "webhook-timestamp": str(t), "webhook-signature": signature}


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


def _parts(url: str) -> SplitResult:
    if any(ord(c) <= 0x20 or ord(c) == 0x7F for c in url):
        # A space or a line break would be refused by httpx at every attempt (or split a header if it were not).
        raise InputError(
            "webhook_url_invalid", f"webhook_url must not contain spaces or control characters: {url!r}"
        )
    parts = urlsplit(url)
    try:
        port = parts.port
    except ValueError as exc:
        raise InputError("webhook_url_invalid", f"webhook_url has an invalid port: {url!r}") from exc
    if parts.scheme not in ("http", "https") or not parts.hostname or port == 0:
        raise InputError(
            "webhook_url_invalid", f"webhook_url must be an http(s) URL with a host, not {url!r}"
        )
    return parts


def _addresses(parts: SplitResult, *, allow_private: bool) -> list[Address]:
    """Every address the URL's host resolves to, each checked; the first is where the request goes."""
    try:
        infos = socket.getaddrinfo(parts.hostname, parts.port or 443, proto=socket.IPPROTO_TCP)
    except (socket.gaierror, UnicodeError) as exc:
        raise InputError(
            "webhook_host_unresolved", f"webhook_url's host {parts.hostname!r} does not resolve"
        ) from exc
    found = [ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos]
    for ip in found:
        if _forbidden(ip) and not allow_private:
            raise InputError(
                "webhook_url_refused",
                f"webhook_url's host {parts.hostname!r} resolves to {ip}, not a globally routable address "
                "(loopback, private, link-local, shared, metadata); webhooks go to public addresses only "
                "(RECAP_WEBHOOK_ALLOW_PRIVATE lifts this)",
            )
    return found


def check_url(url: str, *, allow_private: bool) -> None:
    """Refuses a webhook URL that is not http(s) or that resolves to an address inside a network (loopback,
    private, link-local, metadata), unless `allow_private` (then the host is not looked up). Raises InputError
    `webhook_url_invalid` / `webhook_host_unresolved` / `webhook_url_refused`."""
    parts = _parts(url)
    if not allow_private:
        _addresses(parts, allow_private=False)


@dataclass(frozen=True)
class Pinned:
    """A request to the address that was checked: the URL's host replaced by it, the name kept in `Host` and,
    for https, in the TLS server name and certificate check. Resolving once closes DNS rebinding (a name that
    answers a public address to the check and 127.0.0.1 to the connection)."""

    url: httpx.URL
    host_header: str
    extensions: dict[str, str]


def pin(url: str, *, allow_private: bool) -> Pinned:
    parts = _parts(url)
    ip = _addresses(parts, allow_private=allow_private)[0]
    target = httpx.URL(url)
    extensions = {"sni_hostname": target.host} if target.scheme == "https" else {}
    return Pinned(target.copy_with(host=str(ip)), target.netloc.decode("ascii"), extensions)
