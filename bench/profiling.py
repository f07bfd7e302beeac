"""Sampling profiles of the server, the worker and the client with py-spy (``pip install py-spy``).

py-spy attaches by pid, samples without stopping the target (``--nonblocking``) and writes collapsed
stacks (``--format raw``): one line per distinct stack, ``frame;frame;... count``, each frame
``function (file:line)``. Only busy samples are recorded (idle threads are left out), so the shares
below are shares of the time a process spent running Python or native code, not of wall time.
"""

from __future__ import annotations

import re
import shutil
import signal
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

_FRAME = re.compile(r"^(?P<function>.*) \((?P<file>[^()]*?)(?::(?P<line>\d+))?\)$")
RATE_HZ = 200


def py_spy() -> str | None:
    """The py-spy executable beside this interpreter or on PATH, if installed."""
    beside = Path(sys.executable).parent / "py-spy"
    return str(beside) if beside.exists() else shutil.which("py-spy")


class Recording:
    """``py-spy record`` on one pid for the duration of a ``with`` block (stopped with SIGINT)."""

    def __init__(self, executable: str, pid: int, output: Path, limit_s: int = 600) -> None:
        self.output = output
        self.command = [executable, "record", "--pid", str(pid), "--format", "raw", "--nonblocking"]
        self.command += ["--rate", str(RATE_HZ), "--duration", str(limit_s), "-o", str(output)]
        self.process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> Recording:
        log = self.output.with_suffix(".log").open("wb")
        with log:
            self.process = subprocess.Popen(self.command, stdout=log, stderr=subprocess.STDOUT)
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGINT)  # py-spy writes its output when interrupted
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(10)


def frame_name(frame: str) -> tuple[str, str]:
    """(``file:function``, file) of one collapsed-stack frame; line numbers are dropped."""
    match = _FRAME.match(frame)
    if match is None:
        return frame, ""
    return f"{match['file']}:{match['function']}", match["file"]


def package_of(file: str) -> str:
    """A coarse owner of a file: ``coflux.orchestrator``, ``sqlalchemy``, ``json``, ``<native>`` ..."""
    if not file:
        return "<native>"
    path = file.replace("\\", "/")
    if "site-packages/" in path:
        path = path.split("site-packages/", 1)[1]
    parts = [part for part in path.split("/") if part]
    if parts and parts[0] in ("coflux", "jupyter_ext") and len(parts) > 2:
        return f"{parts[0]}.{parts[1]}"
    if len(parts) > 1:
        return parts[-2] if re.fullmatch(r"python3\.\d+", parts[0]) else parts[0]
    return parts[0].removesuffix(".py") if parts else "<native>"


@dataclass
class Profile:
    """Collapsed stacks of one process, summed: by leaf frame (self), by any frame (inclusive)."""

    label: str
    samples: int = 0
    self_counts: Counter[str] = field(default_factory=Counter)
    inclusive_counts: Counter[str] = field(default_factory=Counter)
    package_counts: Counter[str] = field(default_factory=Counter)

    @classmethod
    def read(cls, label: str, path: Path) -> Profile:
        profile = cls(label)
        if not path.exists():
            return profile
        for line in path.read_text(errors="replace").splitlines():
            stack, _, count_text = line.rpartition(" ")
            if not count_text.isdigit():
                continue
            count = int(count_text)
            # An empty stack: a sample of a thread with no Python frame (starting, or in native code).
            names = (
                [frame_name(frame) for frame in stack.split(";")] if stack else [("<no Python frame>", "")]
            )
            profile.samples += count
            leaf, leaf_file = names[-1]
            profile.self_counts[leaf] += count
            profile.package_counts[package_of(leaf_file)] += count
            for name in {name for name, _ in names}:
                profile.inclusive_counts[name] += count
        return profile

    def share(self, count: int) -> float:
        return 100.0 * count / self.samples if self.samples else 0.0

    def report(self, top: int = 10, ours_only_inclusive: bool = True) -> str:
        """A text summary: top self frames, top owners, top inclusive frames of our own code."""
        lines = [f"{self.label}: {self.samples} busy samples at {RATE_HZ} Hz"]
        if not self.samples:
            return lines[0] + " (nothing recorded)"
        lines.append("  self time, by file:function")
        lines += [f"    {self.share(n):5.1f}%  {name}" for name, n in self.self_counts.most_common(top)]
        lines.append("  self time, by owner")
        lines += [f"    {self.share(n):5.1f}%  {name}" for name, n in self.package_counts.most_common(top)]
        ours = [
            (name, n)
            for name, n in self.inclusive_counts.most_common()
            if not ours_only_inclusive or name.startswith(("coflux/", "jupyter_ext/", "bench/"))
        ]
        lines.append("  inclusive time, our code (file:function)")
        lines += [f"    {self.share(n):5.1f}%  {name}" for name, n in ours[: top + 5]]
        return "\n".join(lines)
