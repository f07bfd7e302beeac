"""``python -m coflux.cli``: the same as the ``coflux`` command."""

from coflux.cli import main

main(prog_name="coflux")
