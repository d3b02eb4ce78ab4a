"""Our log configuration keeps secrets out: httpx's per-request INFO line carries the whole URL."""

from __future__ import annotations

import io
import logging

import httpx

from shared.logs import configure


def test_a_webhook_url_with_credentials_and_a_token_is_not_logged() -> None:
    root, httpx_log = logging.getLogger(), logging.getLogger("httpx")
    saved = root.handlers[:], root.level, httpx_log.level
    stream = io.StringIO()
    configure("INFO", "json", stream)
    try:
        with httpx.Client(transport=httpx.MockTransport(lambda request: httpx.Response(204))) as client:
            client.post("https://hookuser:hookpass@hooks.example.com/recap?token=s3cret")
        logging.getLogger("services.notify").info("webhook delivered")
    finally:
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])
        httpx_log.setLevel(saved[2])
    written = stream.getvalue()
    assert "webhook delivered" in written  # our own lines still come out at INFO
    assert "hookpass" not in written and "s3cret" not in written
