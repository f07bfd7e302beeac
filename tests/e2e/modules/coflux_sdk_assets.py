"""A module written as for Coflux's own SDK (unchanged): one task persists a CSV asset, another
waits for it and restores one file by name."""

from pathlib import Path

import coflux as cf


@cf.task()
def write() -> cf.Asset:
    (Path.cwd() / "x.csv").write_text("a,b\n1,2\n3,4\n5,6\n")
    return cf.asset()


@cf.task(wait={"asset_"})
def read(asset_: cf.Execution[cf.Asset]) -> int:
    path = asset_.result()["x.csv"].restore()
    return len(path.read_text().splitlines()) - 1


@cf.workflow()
def rows() -> int:
    return read.submit(write.submit()).result()
