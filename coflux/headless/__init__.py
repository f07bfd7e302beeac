"""``coflux run``: execute a notebook headlessly (nbclient) and report the runs it started.

The notebook's kernel is started with the ``coflux`` IPython extension and with ``COFLUX_URL``,
``COFLUX_TOKEN``, ``COFLUX_PROJECT``, ``COFLUX_WORKSPACE`` and ``JPY_SESSION_NAME`` (the notebook's
path, which names its module) in its environment, so it is a worker of the given server, or of an
embedded one started for the occasion. Parameters follow papermill: a cell tagged
``injected-parameters`` goes right after the cell tagged ``parameters`` (or at the top).

After the cells ran (or one failed), the kernel is asked which runs it started
(:func:`coflux.client.started_runs`); they are awaited while the kernel, possibly their worker, is
still up, and summarized in a :class:`HeadlessResult`.
"""

from coflux.headless.execution import (
    DEFAULT_TIMEOUT,
    check_server,
    kernel_environment,
    run_notebook,
    wait_for_runs,
)
from coflux.headless.parameters import (
    INJECTED_TAG,
    PARAMETERS_TAG,
    Parameter,
    check_parameters,
    declared_parameters,
    inject_parameters,
    parse_parameters,
    parse_value,
    read_notebook,
)
from coflux.headless.summary import (
    CellFailure,
    HeadlessResult,
    RunSummary,
    StepFailure,
    format_summary,
    summarize_run,
)

__all__ = [
    "DEFAULT_TIMEOUT",
    "INJECTED_TAG",
    "PARAMETERS_TAG",
    "CellFailure",
    "HeadlessResult",
    "Parameter",
    "RunSummary",
    "StepFailure",
    "check_parameters",
    "check_server",
    "declared_parameters",
    "format_summary",
    "inject_parameters",
    "kernel_environment",
    "parse_parameters",
    "parse_value",
    "read_notebook",
    "run_notebook",
    "summarize_run",
    "wait_for_runs",
]
