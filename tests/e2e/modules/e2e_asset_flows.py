"""Targets that persist and restore assets (run by real `coflux worker` processes): a writer
worker (``--provides role=writer``) makes a CSV and a PNG; a reader worker restores them."""

from __future__ import annotations

import csv
import os
from pathlib import Path

from PIL import Image

import coflux as cf


def expected_total(rows: int) -> float:
    return float(sum(i * 1.5 for i in range(rows)))


@cf.task(requires={"role": "writer"})
def make_files(rows: int) -> cf.Asset:
    with open("data.csv", "w", newline="") as handle:  # relative: the execution's own directory
        writer = csv.writer(handle)
        writer.writerow(["i", "value"])
        writer.writerows([i, i * 1.5] for i in range(rows))
    Path("plots").mkdir()
    Image.new("RGB", (64, 32), (200, 30, 30)).save("plots/figure.png")
    return cf.asset(["data.csv", "plots"], name="table and plot")


@cf.task(requires={"role": "reader"})
def total(asset: cf.Asset) -> dict[str, object]:
    restored = asset.restore()
    again = asset["data.csv"].restore(at="again")  # recorded once per execution all the same
    assert again.read_bytes() == restored["data.csv"].read_bytes()
    with open(restored["data.csv"], newline="") as handle:
        value = sum(float(row["value"]) for row in csv.DictReader(handle))
    return {
        "total": value,
        "files": sorted(set(os.listdir(".")) - {"again"}),
        "png": Image.open("plots/figure.png").size,
        "cwd_is_own": Path.cwd() == cf.execution_dir(),
    }


@cf.workflow()
def pipeline(rows: int) -> dict[str, object]:
    asset = make_files(rows)
    return {"asset": asset, "result": total(asset)}


@cf.task(requires={"role": "writer"})
def same_file(label: str) -> cf.Asset:
    Path("same.txt").write_text("identical content in every execution\n")
    Path(f"{label}.txt").write_text(label)
    return cf.asset(name=label)


@cf.workflow()
def twice() -> list[cf.Asset]:
    return [same_file("first"), same_file("second")]


@cf.task(requires={"role": "writer"})
def escape(how: str) -> str:
    """Tries to persist a file outside its working directory; returns the refusal."""
    outside = Path(os.environ.get("TMPDIR", "/tmp")) / f"coflux-outside-{os.getpid()}.txt"
    outside.write_text("not yours")
    if how == "symlink":
        Path("link.txt").symlink_to(outside)
    target = {"dotdot": "../outside.txt", "absolute": str(outside), "symlink": "link.txt"}[how]
    try:
        cf.asset(target)
    except cf.CofluxError as err:
        return f"{type(err).__name__}: {err}"
    return "persisted"


@cf.workflow()
def escapes() -> list[str]:
    return [escape(how) for how in ("dotdot", "absolute", "symlink")]


@cf.task(requires={"role": "writer"})
def compose(asset: cf.Asset) -> cf.Asset:
    """A new asset made of another's entry (not uploaded again) and a new file."""
    Path("notes.md").write_text("# notes\n")
    return cf.asset({"renamed.csv": asset["data.csv"], "notes.md": "notes.md"}, name="composed")


@cf.workflow()
def composed(rows: int) -> cf.Asset:
    return compose(make_files(rows))


@cf.workflow()
def handle() -> cf.Execution[cf.Asset]:
    """Returns the execution, not its value: the client resolves it."""
    return same_file.submit("handled")


@cf.task(requires={"role": "writer"})
def broken() -> None:
    raise ValueError("no files today")


@cf.task(requires={"role": "writer"})
def opaque() -> object:
    return complex(1, 2)  # pickled: the run view only describes it


@cf.workflow()
def handles() -> list[cf.Execution[object]]:
    return [broken.submit(), opaque.submit()]
