"""The one backoff and the one percentile the whole product uses."""

import pytest

from shared.backoff import doubling
from shared.percentile import percentile


def test_the_delay_doubles_from_the_first_and_stops_at_the_cap() -> None:
    assert [doubling(0.5, retries, 3.0) for retries in range(5)] == [0.5, 1.0, 2.0, 3.0, 3.0]


@pytest.mark.parametrize(("q", "expected"), [(0, 1.0), (25, 1.75), (50, 2.5), (95, 3.85), (100, 4.0)])
def test_the_percentile_interpolates_between_neighbours_as_numpy_does(q: float, expected: float) -> None:
    assert percentile([4.0, 1.0, 3.0, 2.0], q) == pytest.approx(expected)
