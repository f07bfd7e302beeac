"""The reconnect policy of the worker and of the live widgets (``coflux.background.Backoff``)."""

from __future__ import annotations

import itertools

import pytest

from coflux.background import Backoff
from coflux.notebook import live
from coflux.worker import transport


def test_the_worker_waits_as_documented_doubling_from_a_tenth_of_a_second_to_five() -> None:
    backoff = Backoff(transport.BACKOFF_MIN, transport.BACKOFF_MAX)
    assert [backoff.next() for _ in range(9)] == pytest.approx([0.1, 0.2, 0.4, 0.8, 1.6, 3.2, 5.0, 5.0, 5.0])


def test_the_widgets_wait_doubling_from_a_fifth_of_a_second_to_five() -> None:
    backoff = Backoff(live.BACKOFF_MIN, live.BACKOFF_MAX)
    assert [backoff.next() for _ in range(7)] == pytest.approx([0.2, 0.4, 0.8, 1.6, 3.2, 5.0, 5.0])


def test_a_healthy_connection_starts_the_waits_afresh() -> None:
    backoff = Backoff(0.1, 5.0)
    for _ in range(5):
        backoff.next()
    assert backoff.delay == pytest.approx(3.2)
    backoff.reset()
    assert backoff.delay == 0.1
    assert [backoff.next() for _ in range(2)] == pytest.approx([0.1, 0.2])


def test_jitter_spreads_each_wait_below_its_step() -> None:
    draws = itertools.cycle([0.0, 1.0, 0.5])
    backoff = Backoff(1.0, 8.0, jitter=0.5, rng=lambda: next(draws))
    assert [backoff.next() for _ in range(5)] == pytest.approx([1.0, 1.0, 3.0, 8.0, 4.0])


@pytest.mark.parametrize(
    ("first", "cap", "factor", "jitter"),
    [(0.0, 1.0, 2.0, 0.0), (2.0, 1.0, 2.0, 0.0), (0.1, 1.0, 0.5, 0.0), (0.1, 1.0, 2.0, 1.5)],
)
def test_a_policy_that_would_never_wait_or_shrink_is_refused(
    first: float, cap: float, factor: float, jitter: float
) -> None:
    with pytest.raises(ValueError):
        Backoff(first, cap, factor=factor, jitter=jitter)
