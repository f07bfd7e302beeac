"""Targets for the token-scope tests (run by a `coflux worker` holding a worker token)."""

import coflux as cf


@cf.workflow()
def kind(value: object) -> str:
    """What the worker received: a pickled argument arrives as its own class."""
    return f"{type(value).__module__}.{type(value).__qualname__}: {value}"


@cf.workflow()
def double(x: int) -> int:
    cf.log_info("doubling {x}", x=x)
    return 2 * x
