"""What the quick commands load: `postdesk --help` nothing but Typer and Rich, `spam score` neither
scikit-learn nor Alembic (their times are measured by bench/cli_startup.py, not here)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


ENV = {k: v for k, v in os.environ.items() if not k.startswith("POSTDESK_")}


def imported(*args: str, cwd: Path) -> set[str]:
    """The top-level packages `postdesk ARGS` imports, from `python -X importtime`."""
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "postdesk", *args],
        cwd=cwd,
        env=ENV,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return {
        line.split("|")[-1].strip().split(".")[0]
        for line in done.stderr.splitlines()
        if line.startswith("import time:")
    }


def test_help_loads_no_database_model_or_settings_library(tmp_path):
    loaded = imported("--help", cwd=tmp_path)
    assert "typer" in loaded
    assert not loaded & {
        "sqlalchemy",
        "pydantic",
        "pydantic_settings",
        "numpy",
        "scipy",
        "sklearn",
        "alembic",
        "mailparser",
        "models",
        "classifier",
        "ingest",
        "tickets",
    }


def test_scoring_a_message_loads_neither_scikit_learn_nor_alembic(tmp_path):
    assert (
        subprocess.run(
            [sys.executable, "-m", "postdesk", "spam", "allow", "@example.com"],
            cwd=tmp_path,
            env=ENV,
            capture_output=True,
            timeout=120,
        ).returncode
        == 0
    )  # a data folder with its database
    mail = tmp_path / "mail.eml"
    mail.write_bytes(b"From: a@example.org\r\nSubject: cheap pills\r\n\r\nWin a prize now.\r\n")
    loaded = imported("spam", "score", str(mail), cwd=tmp_path)
    assert {"numpy", "sqlalchemy", "classifier"} <= loaded
    assert not loaded & {"sklearn", "alembic"}
