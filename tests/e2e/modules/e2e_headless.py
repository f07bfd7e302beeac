"""Targets for the headless notebook tests (served by a real `coflux worker`)."""

import coflux as cf


@cf.task()
def explode(message: str) -> None:
    raise ValueError(message)


@cf.workflow()
def fails(message: str) -> None:
    explode(message)
