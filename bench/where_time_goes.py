"""Where a server's time goes: py-spy samples of a process tree, summed per process and function.

`bench/ingest.py --profile` runs one extra end-to-end round under `py-spy record --gil
--subprocesses` (samples only the thread holding the GIL: the Python work, not the waits) and
prints, for the SMTP process, the runner and its prepare worker, the functions with the most
samples of their own and the most samples below them. py-spy comes with `pip install -e ".[bench]"`.
"""

from __future__ import annotations

import re
import shutil
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path

_PROCESS = re.compile(r"^process (\d+):")
_LINE = re.compile(r"\s*\(([^)]*?)(?::\d+)?\)$")  # "fn (path/file.py:123)" → "fn (path/file.py)"


class PySpy:
    """py-spy attached to a process and its children, writing raw (collapsed) stacks to `out`."""

    def __init__(self, pid: int, out: Path):
        beside = Path(sys.executable).with_name("py-spy")  # the venv's, when it is not on PATH
        binary = str(beside) if beside.exists() else shutil.which("py-spy")
        if binary is None:
            raise SystemExit('--profile needs py-spy: pip install -e ".[bench]"')
        self.out = out
        self._proc = subprocess.Popen(
            [
                binary,
                "record",
                "--pid",
                str(pid),
                "--subprocesses",
                "--gil",
                "--nonblocking",
                "--rate",
                "250",
                "--format",
                "raw",
                "--output",
                str(out),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    def stop(self) -> None:
        self._proc.send_signal(signal.SIGINT)
        self._proc.wait(60)


def _stacks(path: Path):
    """(pid, frames, samples) for each stack; a command line may span lines in py-spy's raw output."""
    pending = ""
    for line in path.read_text(errors="replace").splitlines():
        pending += line
        stack, _, count = pending.rpartition(" ")
        if not count.isdigit():
            continue
        pending = ""
        frames = stack.split(";")
        starts = [i for i, frame in enumerate(frames) if _PROCESS.match(frame)]
        if starts:
            pid = int(_PROCESS.match(frames[starts[-1]])[1])
            yield pid, [_LINE.sub(r" (\1)", f) for f in frames[starts[-1] + 1 :]], int(count)


def summary(path: Path, names: dict[int, str], top: int = 12) -> str:
    """Per process in `names` (pid → label): top functions by own samples and by samples below them."""
    own: dict[int, Counter] = {pid: Counter() for pid in names}
    below: dict[int, Counter] = {pid: Counter() for pid in names}
    totals: Counter = Counter()
    for pid, frames, count in _stacks(path):
        if pid not in names or not frames:
            continue
        totals[pid] += count
        own[pid][frames[-1]] += count
        for frame in set(frames):
            below[pid][frame] += count
    lines = []
    for pid, label in names.items():
        if totals[pid] < 0.01 * sum(totals.values()):  # helpers: multiprocessing's resource tracker
            continue
        total = totals[pid]
        lines.append(f"{label} (pid {pid}): {totals[pid]} samples holding the GIL")
        lines.append("  own time:")
        lines += [f"    {n / total:6.1%}  {frame}" for frame, n in own[pid].most_common(top)]
        lines.append("  with what it calls (frames under nearly every sample, the start-up chain, left out):")
        inner = [(frame, n) for frame, n in below[pid].most_common() if n < 0.9 * total]
        lines += [f"    {n / total:6.1%}  {frame}" for frame, n in inner[:top]]
    return "\n".join(lines)
