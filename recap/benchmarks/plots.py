"""The throughput benchmark's figure: jobs per second by batch size, and the pipeline's latencies."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def plot(result: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    sizes = [1, result["settings"]["batch"]]
    left.plot(sizes, [result["direct_batch1_jobs_per_s"], result["direct_jobs_per_s"]], "o-", label="direct")
    left.plot(
        sizes, [result["pipeline_batch1_jobs_per_s"], result["pipeline_jobs_per_s"]], "s-", label="pipeline"
    )
    left.set(xlabel="batch size", ylabel="jobs / s", title="throughput", xticks=sizes)
    left.legend()
    right.hist(result["latencies_s"], bins=20)
    right.set(xlabel="end-to-end latency (s)", ylabel="jobs", title=f"latency, pipeline batch {sizes[1]}")
    what = result["settings"]["model"] or f"{result['settings']['shape']} shape, random weights"
    fig.suptitle(f"{what}, {result['machine']['cpus']} CPUs")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
