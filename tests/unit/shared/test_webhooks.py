"""Webhook signatures (what a receiver verifies) and the address check (what keeps webhooks out of our network)."""

from __future__ import annotations

import hashlib
import hmac
import json
import time

import pytest
from standardwebhooks import Webhook, WebhookVerificationError

from shared.errors import InputError
from shared.webhooks import check_url, pin, sign, standard_headers, verify

BODY = b'{"job_id": "1", "status": "done"}'


def test_the_signature_is_an_hmac_of_the_timestamp_and_body() -> None:
    header = sign("whsec_abc", BODY, at=1_700_000_000)
    mac = hmac.new(b"whsec_abc", b"1700000000." + BODY, hashlib.sha256).hexdigest()
    assert header == f"t=1700000000,v1={mac}"
    assert verify("whsec_abc", BODY, header, now=1_700_000_100)


@pytest.mark.parametrize(
    ("secret", "body", "now"),
    [
        ("whsec_other", BODY, 1_700_000_000),  # another tenant's secret
        ("whsec_abc", BODY + b" ", 1_700_000_000),  # a changed body
        ("whsec_abc", BODY, 1_700_000_301),  # a replay past the tolerance
        ("whsec_abc", BODY, 1_699_999_699),  # a timestamp from the future
    ],
)
def test_a_wrong_secret_body_or_stale_timestamp_fails(secret: str, body: bytes, now: int) -> None:
    header = sign("whsec_abc", BODY, at=1_700_000_000)
    assert not verify(secret, body, header, now=now)


@pytest.mark.parametrize("header", ["", "t=abc,v1=00", "v1=00", "t=1700000000"])
def test_a_malformed_header_fails(header: str) -> None:
    assert not verify("whsec_abc", BODY, header, now=1_700_000_000)


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/h",
        "http://127.9.9.9/h",
        "http://10.0.0.1/h",
        "http://172.16.5.4/h",
        "http://192.168.1.1/h",
        "http://169.254.169.254/latest/meta-data",
        "http://0.0.0.0/h",
        "http://[::1]/h",
        "http://[fe80::1]/h",
        "http://[fd00:ec2::254]/h",
        "http://[::ffff:10.0.0.1]/h",
        "http://localhost:9000/h",
        "http://100.64.0.1/h",  # shared address space (carrier-grade NAT)
        "http://100.100.100.200/latest/meta-data/",  # a cloud's metadata service, in 100.64/10
        "http://[2002:7f00:1::]/h",  # 127.0.0.1 in 6to4 form
        "http://[64:ff9b::a00:1]/h",  # 10.0.0.1 through NAT64
        "http://[2001:0:4136:e378:8000:63bf:f5ff:fffe]/h",  # Teredo, its client 10.0.0.1
        "http://192.0.2.10/h",  # documentation
        "http://224.0.0.1/h",  # multicast
    ],
)
def test_internal_addresses_are_refused(url: str) -> None:
    with pytest.raises(InputError) as refused:
        check_url(url, allow_private=False)
    assert refused.value.code == "webhook_url_refused"
    check_url(url, allow_private=True)  # tests and private deployments may


@pytest.mark.parametrize(
    "url",
    [
        "ftp://example.com/h",
        "http:///h",
        "example.com/h",
        "javascript:alert(1)",
        "http://8.8.8.8/\r\nX-Injected: 1",  # httpx refuses it at every attempt
        " http://8.8.8.8/",
        "http://8.8.8.8/a b",
    ],
)
def test_non_http_urls_are_invalid(url: str) -> None:
    with pytest.raises(InputError) as refused:
        check_url(url, allow_private=True)
    assert refused.value.code == "webhook_url_invalid"


def test_a_public_address_is_accepted() -> None:
    check_url("https://93.184.215.14:8443/hooks/recap", allow_private=False)  # an IP literal: no DNS needed


def test_standard_webhooks_signatures_verify_with_the_reference_library() -> None:
    secret = "whsec_" + "ab" * 32  # what tenants.webhook_secret gives: hex is valid base64
    now = int(time.time())
    headers = standard_headers(secret, "msg_1", BODY, at=now)
    assert headers["webhook-id"] == "msg_1" and headers["webhook-timestamp"] == str(now)
    assert Webhook(secret).verify(BODY, headers) == json.loads(BODY)
    with pytest.raises(WebhookVerificationError):
        Webhook("whsec_" + "cd" * 32).verify(BODY, headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(BODY + b" ", headers)


@pytest.mark.parametrize(
    ("url", "pinned", "host"),
    [
        ("http://93.184.215.14:8080/h?q=1", "http://93.184.215.14:8080/h?q=1", "93.184.215.14:8080"),
        ("https://u:p@[2606:2800:21f:cb07:6820:80da:af6b:8b2c]/h", None, None),
    ],
)
def test_pinning_keeps_path_query_and_credentials(url: str, pinned: str | None, host: str | None) -> None:
    request = pin(url, allow_private=False)
    if pinned is not None:
        assert str(request.url) == pinned and request.host_header == host and request.extensions == {}
    else:
        assert request.url.host == "2606:2800:21f:cb07:6820:80da:af6b:8b2c"
        assert request.url.userinfo == b"u:p" and request.url.path == "/h"
        assert request.extensions == {"sni_hostname": "2606:2800:21f:cb07:6820:80da:af6b:8b2c"}


def test_a_name_that_does_not_resolve_has_its_own_code() -> None:
    with pytest.raises(InputError) as refused:
        check_url("http://no-such-host.invalid/h", allow_private=False)
    assert refused.value.code == "webhook_host_unresolved"
