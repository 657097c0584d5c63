"""bogofilter as the benches' baseline: a private word list in a temp folder, trained and asked per message file.

Default settings throughout; its cutoffs come from its own configuration (`bogofilter -Q`), so its
verdicts are the ones a bogofilter user gets. Scores are read with -TT (16 significant digits).
"""

from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path

from classifier.evaluate import Example


class Bogofilter:
    """bogofilter with a private word list in a temp dir; examples carry message file paths."""

    def __init__(self, workdir: Path) -> None:
        self.dir = Path(tempfile.mkdtemp(dir=workdir))
        self.ham_cutoff, self.spam_cutoff = bogofilter_cutoffs()

    def register(self, paths: list[Path], label: str) -> None:
        flag = "-s" if label == "spam" else "-n"
        for start in range(0, len(paths), 500):
            subprocess.run(
                ["bogofilter", "-d", str(self.dir), flag, "-B", *map(str, paths[start : start + 500])],
                check=True,
                stderr=subprocess.DEVNULL,
            )

    def judge(self, path: Path) -> tuple[float, str]:
        if not (self.dir / "wordlist.db").exists():
            return 0.5, "untrained"  # nothing registered yet (online start): bogofilter refuses to score
        with open(path, "rb") as message:
            done = subprocess.run(["bogofilter", "-d", str(self.dir), "-TT"], stdin=message, capture_output=True)
        if done.returncode not in (0, 1, 2):
            raise RuntimeError(f"bogofilter failed: {done.stderr.decode(errors='replace')}")
        score = float(done.stdout.split()[-1])
        return score, self.label_for(score)

    def learn(self, path: Path, label: str) -> None:
        """Online: register the TRUE label (not bogofilter's own verdict, as -u would)."""
        self.register([path], label)

    def label_for(self, score: float) -> str:
        """bogofilter's own rule (man bogofilter): tristate when 0 < ham_cutoff < spam_cutoff."""
        if score >= self.spam_cutoff:
            return "spam"
        if self.ham_cutoff in (0.0, self.spam_cutoff) or score <= self.ham_cutoff:
            return "ham"
        return "unsure"


def bogofilter_cutoffs() -> tuple[float, float]:
    """ham_cutoff and spam_cutoff as bogofilter's configuration (-Q) says."""
    values = {}
    for line in subprocess.run(["bogofilter", "-Q"], capture_output=True, text=True, check=True).stdout.splitlines():
        key, _, rest = line.partition("=")
        values[key.strip()] = rest.split("#")[0].strip()
    return float(values["ham_cutoff"]), float(values["spam_cutoff"])


def bogofilter_fit(workdir: Path):
    """fit(train) -> judge for the batch protocols: a fresh word list trained on `train`."""

    def fit(train: list[Example]):
        bogo = Bogofilter(workdir)
        for label in ("ham", "spam"):
            bogo.register([path for path, theirs, _ in train if theirs == label], label)
        return bogo.judge

    return fit
