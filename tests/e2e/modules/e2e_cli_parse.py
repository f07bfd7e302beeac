"""A task served only by workers started for this module (see e2e_cli_flows.report)."""

from __future__ import annotations

import coflux as cf


@cf.task()
def parse(name: str) -> str:
    return name.upper()
