"""Installing Postdesk as `./start` and `./test` do: quietly, with nothing for the user to puzzle over."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("postdesk", "ingest", "classifier", "tickets", "retention", "models")


def test_an_editable_install_prints_no_setuptools_warning(tmp_path):
    project = tmp_path / "postdesk"
    project.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, project)
    for package in PACKAGES:
        shutil.copytree(ROOT / package, project / package, ignore=shutil.ignore_patterns("__pycache__"))
    python = str(tmp_path / "venv" / "bin" / "python")
    subprocess.run([sys.executable, "-m", "venv", str(tmp_path / "venv")], check=True, timeout=300)
    # as scripts/bootstrap.sh does: a pip new enough to show the build backend's warnings
    subprocess.run([python, "-m", "pip", "install", "-q", "--upgrade", "pip"], capture_output=True, timeout=600)
    done = subprocess.run(
        [python, "-m", "pip", "install", "-q", "--no-deps", "-e", str(project)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr
    said = [
        line
        for line in (done.stdout + done.stderr).splitlines()
        if line.strip()
        and not line.startswith("WARNING: Location")  # this machine's pip index settings
        and "new release of pip" not in line
        and "To update, run:" not in line
    ]
    assert said == []
