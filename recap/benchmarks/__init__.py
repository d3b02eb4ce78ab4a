"""The benchmarks; `quantile` is the one percentile every result file uses."""

from __future__ import annotations

import statistics


def quantile(values: list[float], q: float) -> float:
    """The q-quantile (0 < q < 1) of `values`, interpolated (statistics' inclusive method)."""
    return statistics.quantiles(values, n=100, method="inclusive")[round(q * 100) - 1]
