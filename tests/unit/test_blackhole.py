"""The fault suite's proxy forwards for a process that already holds over a thousand descriptors (as a test process
does after the e2e suite): with select() every connection it accepted there died at once."""

from __future__ import annotations

import os
import resource
import socket
from collections.abc import Iterator

import pytest

from tests.blackhole import Blackhole


@pytest.fixture
def many_descriptors() -> Iterator[None]:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < 1200:
        pytest.skip(f"this process may hold only {hard} descriptors")
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, 1200), hard))
    held = [os.open(os.devnull, os.O_RDONLY) for _ in range(1100)]
    yield
    for fd in held:
        os.close(fd)
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def test_the_proxy_forwards_on_descriptors_past_1023(many_descriptors: None) -> None:
    with socket.create_server(("127.0.0.1", 0)) as server:
        proxy = Blackhole(server.getsockname())
        try:
            with socket.create_connection(("127.0.0.1", proxy.port), timeout=5) as client:
                accepted, _ = server.accept()
                with accepted:
                    assert client.fileno() > 1023
                    client.sendall(b"ping")
                    assert accepted.recv(4) == b"ping"
                    accepted.sendall(b"pong")
                    assert client.recv(4) == b"pong"
        finally:
            proxy.close()
