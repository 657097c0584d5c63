"""Command-line start-up: how long `postdesk --help`, `postdesk spam score FILE` and the reading
commands take from the shell, against a bare `python -c pass` measured in the same rounds.

Each command runs as a user runs it (the `postdesk` script of this virtual environment) on a data
folder made for the run, with a spam model trained on 50 + 50 corpus messages (synthetic mail when
the corpus is absent). Rounds alternate the commands, as this machine's speed drifts; the figures
are medians of wall and CPU (user + system) time, and their ratio to the bare start-up. Then
`python -X importtime` tells whether scikit-learn or Alembic is imported on each path.

Targets (issue 15): `--help` within 0.3 s and `spam score` within 1 s of wall time on this machine.

Usage: .venv/bin/python bench/cli_startup.py [--rounds 7] [--write]
(--write: the table of bench/results/cli_startup.md)
On a machine busy with other work, wall time is mostly waiting for a core; to measure the
commands rather than the queue, give the run's session priority over the others:
    setsid sh -c 'echo -20 > /proc/$$/autogroup && exec .venv/bin/python bench/cli_startup.py --write'
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a script or with -m
from bench import corpus  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results" / "cli_startup.md"
HEAVY = ("sklearn", "alembic")
NOTES = "## Notes"
TARGETS = {"postdesk --help": 0.3, "postdesk spam score FILE": 1.0}


def run(command: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Wall and CPU seconds of one run of `command`, which must succeed."""
    started = time.perf_counter()
    proc = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - started
    stderr = proc.stderr.read().decode(errors="replace")
    proc.stderr.close()
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{' '.join(command)} failed: {stderr.strip()}")
    return wall, usage.ru_utime + usage.ru_stime


def heavy_imports(args: list[str], env: dict[str, str]) -> list[str]:
    """The heavy packages `postdesk ARGS` imports, from `python -X importtime`."""
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "postdesk", *args], env=env, capture_output=True, text=True
    )
    names = {
        line.split("|")[-1].strip().split(".")[0]
        for line in done.stderr.splitlines()
        if line.startswith("import time:")
    }
    return [name for name in HEAVY if name in names]


def sample_mail(folder: Path) -> tuple[Path, Path, Path]:
    """Folders of 50 ham and 50 spam messages, and one more spam message to score."""
    ham, spam = folder / "ham", folder / "spam"
    ham.mkdir()
    spam.mkdir()
    if corpus.available():
        files = corpus.files()
        chosen = [p for p, label in files if label == "ham"][:50] + [p for p, label in files if label == "spam"][:51]
        for path in chosen:
            shutil.copy(path, (ham if "/ham/" in str(path) else spam) / path.name)
        probe = spam / chosen[-1].name
        shutil.move(probe, folder / "probe.eml")
        return ham, spam, folder / "probe.eml"
    for i in range(50):
        (ham / f"{i}.eml").write_text(f"From: c{i}@example.org\nSubject: invoice {i}\n\nMy printer order {i} broke.\n")
        (spam / f"{i}.eml").write_text(f"From: p{i}@deals.example.biz\nSubject: win {i}\n\nCheap pills casino {i}.\n")
    (folder / "probe.eml").write_text("From: p@deals.example.biz\nSubject: win\n\nCheap casino pills.\n")
    return ham, spam, folder / "probe.eml"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--write", action="store_true", help=f"also write {RESULTS.name}")
    args = parser.parse_args()

    script = str(Path(sys.executable).with_name("postdesk"))
    with tempfile.TemporaryDirectory(prefix="postdesk-cli-bench-") as tmp:
        work = Path(tmp)
        env = {k: v for k, v in os.environ.items() if not k.startswith("POSTDESK_")}
        env["POSTDESK_DATA_DIR"] = str(work / "data")
        ham, spam, probe = sample_mail(work)
        subprocess.run(
            [script, "spam", "train", "--ham", str(ham), "--spam", str(spam)], env=env, check=True, capture_output=True
        )
        commands = {
            "python -c pass (baseline)": [sys.executable, "-c", "pass"],
            "postdesk --help": [script, "--help"],
            "postdesk settings": [script, "settings"],
            "postdesk tickets list": [script, "tickets", "list"],
            "postdesk status": [script, "status"],
            "postdesk spam score FILE": [script, "spam", "score", str(probe)],
        }
        times: dict[str, list[tuple[float, float]]] = {name: [] for name in commands}
        for _ in range(args.rounds):
            for name, command in commands.items():
                times[name].append(run(command, env))
        heavy = {name: heavy_imports(command[1:], env) for name, command in commands.items() if command[0] == script}

    lines = report(times, heavy, args.rounds)
    print("\n".join(lines))
    if args.write:  # the hand-written notes below the table stay
        old = RESULTS.read_text() if RESULTS.exists() else ""
        notes = old[old.index(NOTES) :] if NOTES in old else ""
        RESULTS.write_text("\n".join(lines) + "\n\n" + notes)


def report(times: dict[str, list[tuple[float, float]]], heavy: dict[str, list[str]], rounds: int) -> list[str]:
    medians = {
        name: (statistics.median(w for w, _ in runs), statistics.median(c for _, c in runs))
        for name, runs in times.items()
    }
    base_wall, base_cpu = medians["python -c pass (baseline)"]
    load = os.getloadavg()[0]
    lines = [
        "# Command-line start-up",
        "",
        f"`bench/cli_startup.py --rounds {rounds}`, {time.strftime('%Y-%m-%d')}, {os.cpu_count()} cores, "
        f"load average {load:.1f} at the end (other work shares the machine); this run's scheduling "
        f"group: {_autogroup()}.",
        "Medians of the rounds; the ratios are to bare `python -c pass` from the same rounds.",
        "",
        "| command | wall s | CPU s | wall / bare | CPU / bare | target wall | scikit-learn or Alembic imported |",
        "|---|---:|---:|---:|---:|---:|---|",
    ]
    for name, (wall, cpu) in medians.items():
        target = f"≤ {TARGETS[name]} s" if name in TARGETS else ""
        imported = ", ".join(heavy[name]) or "no" if name in heavy else ""
        lines.append(
            f"| `{name}` | {wall:.3f} | {cpu:.3f} | {wall / base_wall:.1f} | {cpu / base_cpu:.1f} | "
            f"{target} | {imported} |"
        )
    return lines


def _autogroup() -> str:
    try:
        return Path("/proc/self/autogroup").read_text().strip()
    except OSError:
        return "unknown"


if __name__ == "__main__":
    main()
