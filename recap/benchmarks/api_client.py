"""The load generator for `recap bench-api`, run as its own process (`python -m recap.benchmarks.api_client`):
`clients` concurrent connections POST small JSON transcripts for `seconds`, each as fast as answers come back
(closed loop) or, with `rate`, at a fixed total rate (open loop); it writes every latency, status and job id.
The same load on GET /healthz is the baseline: what any request costs on this machine beside the stack."""

from __future__ import annotations

import asyncio
import json
import sys
import time
from typing import Any

import httpx


def transcript(n: int) -> dict[str, Any]:
    return {
        "turns": [
            {"speaker": "Ann", "text": f"Item {n}: the release moves to Friday if QA signs off by Thursday."},
            {"speaker": "Bo", "text": "QA needs the staging database back first; I will restore it today."},
            {"speaker": "Ann", "text": "Agreed. Bo restores staging, QA signs off, we ship Friday."},
        ],
        "length": "short",
    }


async def load(
    url: str, key: str, clients: int, seconds: float, rate: float | None, path: str = "/v1/jobs"
) -> dict[str, Any]:
    """POSTs transcripts to /v1/jobs; with another `path`, GETs it instead (the baseline: /healthz)."""
    latencies: list[float] = []
    statuses: dict[str, int] = {}
    job_ids: list[str] = []
    errors: list[str] = []
    unanswered = 0  # requests that got no HTTP answer at all (refused, reset, timed out)
    counter = 0
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(
        base_url=url, headers={"Authorization": f"Bearer {key}"}, limits=limits, timeout=30
    ) as client:
        start = time.perf_counter()
        end = start + seconds

        async def one(worker: int) -> None:
            nonlocal counter, unanswered
            sent = 0
            while True:
                if (
                    rate is not None
                ):  # open loop: this client's k-th request leaves at start + k * clients / rate
                    due = start + (sent * clients + worker) / rate
                    if due >= end:
                        return
                    await asyncio.sleep(max(0.0, due - time.perf_counter()))
                elif time.perf_counter() >= end:
                    return
                counter += 1
                sent += 1
                t0 = time.perf_counter()
                try:
                    if path == "/v1/jobs":
                        response = await client.post(path, json=transcript(counter))
                    else:
                        response = await client.get(path)
                except httpx.HTTPError as exc:
                    unanswered += 1
                    errors.append(f"{type(exc).__name__}: {exc}")
                    continue
                latencies.append((time.perf_counter() - t0) * 1000)
                statuses[str(response.status_code)] = statuses.get(str(response.status_code), 0) + 1
                if response.status_code == 202:
                    job_ids.append(response.json()["job_id"])
                elif response.status_code != 200:
                    errors.append(f"{response.status_code}: {response.text[:200]}")

        await asyncio.gather(*(one(i) for i in range(clients)))
        elapsed = time.perf_counter() - start
    return {
        "latencies_ms": latencies,
        "statuses": statuses,
        "job_ids": job_ids,
        "errors": errors,
        "unanswered": unanswered,
        "elapsed_s": elapsed,
    }


def main() -> None:
    url, key, clients, seconds, rate, out, path = sys.argv[1:8]
    result = asyncio.run(
        load(url, key, int(clients), float(seconds), float(rate) if rate != "-" else None, path)
    )
    with open(out, "w") as f:
        json.dump(result, f)


if __name__ == "__main__":
    main()
