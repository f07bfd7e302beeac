"""Domain values: ids, retry ramps, target signatures."""

from __future__ import annotations

import pytest

from coflux.models import Parameter, RetryPolicy, TargetDefinition, TargetType, split_execution_id


def test_backoff_climbs_from_min_to_max_over_the_retries() -> None:
    policy = RetryPolicy(limit=3, backoff_min=1, backoff_max=31)
    assert [policy.delay(n) for n in (1, 2, 3)] == [1, 16, 31]


def test_unlimited_retries_reach_the_maximum_and_stay_there() -> None:
    policy = RetryPolicy(limit=2**31 - 1, backoff_min=1, backoff_max=60)
    delays = [policy.delay(n) for n in range(1, 15)]
    assert delays[0] == 1 and delays == sorted(delays)
    assert delays[RetryPolicy.RAMP - 1] == 60 and delays[-1] == 60


def test_execution_ids_parse_and_reject_garbage() -> None:
    assert split_execution_id("Rabc:3:2") == ("Rabc", "Rabc:3", 2)
    for bad in ("", "Rabc:3", "abc:1:1", "Rabc:x:1", "Rabc:1:y", "R" + "x" * 80 + ":1:1"):
        with pytest.raises(ValueError):
            split_execution_id(bad)


def test_argument_counts_are_checked_against_parameters() -> None:
    target = TargetDefinition(
        "m", "f", TargetType.WORKFLOW, (Parameter("a"), Parameter("b", has_default=True))
    )
    assert [target.accepts(n) for n in (0, 1, 2, 3)] == [False, True, True, False]
