"""`postdesk spam …`: bootstrap, retrain, evaluate, version and teach the spam filter from the command line.

`score` is the quick one: it loads the model and the parser, never scikit-learn (only `evaluate`
and the cross-validation of `train`/`retrain` need that) nor Alembic (it opens the database read-only).
"""

from __future__ import annotations

import json
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any
from collections.abc import Callable

import typer

from postdesk.cli.common import Verbs, err, fail, out
from postdesk.cli.workspace import open_for_reading, open_for_writing

if TYPE_CHECKING:
    from postdesk.app import App

group = Verbs(help="The spam filter: train, evaluate, version, teach.")

LabelFlag = typer.Option(None, "--spam/--ham", help="The label: --spam or --ham.")
PERCENT = {"one_minus_roca": "1-ROCA", "fp_rate": "FP rate", "fn_rate": "FN rate"}  # figures given in percent


def rounded(value: float) -> str:
    """A figure as people read it: at most four decimals, no trailing zeros (0.0011199… → 0.0011)."""
    return f"{value:.4f}".rstrip("0").rstrip(".") if isinstance(value, float) else str(value)


def figures_text(figures: dict) -> str:
    """The summary figures in a line (the curves kept for the web view's charts left out)."""
    return ", ".join(
        f"{PERCENT[k]} {rounded(v)} %" if k in PERCENT else f"{k} {rounded(v)}"
        for k, v in figures.items()
        if k != "curves"
    )


def _files(paths: list[Path]) -> list[Path]:
    found = []
    for path in paths:
        if path.is_dir():
            found += sorted(p for p in path.iterdir() if p.is_file())
        elif path.is_file():
            found.append(path)
        else:
            fail(f"{path} is not a file or folder")
    return found


def _read(path: Path) -> bytes:
    from models.mail.parse import strip_mbox_from

    return strip_mbox_from(path.read_bytes())


def _label(spam: bool | None) -> str:
    if spam is None:
        fail("say --spam or --ham")
    return "spam" if spam else "ham"


def _learn_files(app: App, files: list[Path], label: str, source: str, step: Callable[[], None]) -> dict:
    from classifier import ledger
    from models.base import utcnow
    from models.mail.parse import parse, raw_sha256

    spam_filter = app.live_model().filter
    tally: dict[str, int] = {}
    for start in range(0, len(files), 200):  # short write transactions: the runner keeps going
        with app.db.write() as session:
            for path in files[start : start + 200]:
                raw = _read(path)
                features = spam_filter.features(parse(raw, received_at=utcnow()))
                outcome = ledger.learn(session, f"raw:{raw_sha256(raw)}", label, features, source)
                tally[outcome] = tally.get(outcome, 0) + 1
                step()
    return tally


@group.command()
def train(
    ctx: typer.Context,
    ham: Path = typer.Option(..., help="Folder of ham messages."),
    spam: Path = typer.Option(..., help="Folder of spam messages."),
    note: str = typer.Option("bootstrap", help="A note kept with the new version."),
):
    """Bootstrap from a labelled corpus: learn every file, then make and activate a new version."""
    from rich.progress import Progress

    sets = {"ham": _files([ham]), "spam": _files([spam])}
    app = open_for_writing(ctx, create=True)
    with Progress(console=err) as progress:
        for label, files in sets.items():
            task = progress.add_task(f"learning {label}", total=len(files))
            tally = _learn_files(app, files, label, "bootstrap", partial(progress.advance, task))
            out.print(f"{label}: " + ", ".join(f"{k} {v}" for k, v in sorted(tally.items())), highlight=False)
    _retrain(app, note)


def _retrain(app: App, note: str) -> None:
    from rich.progress import Progress

    from classifier import versions as model_versions

    with app.db.write() as session, Progress(console=err, transient=True) as progress:
        task = progress.add_task("retraining", total=None)
        version = model_versions.retrain(
            session,
            app.settings.spam_dir,
            app.live_model().filter,
            note,
            progress=lambda what: progress.update(task, description=what),
        )
        figures = version.figures
    summary = figures_text(figures) or "too few labelled messages to cross-validate"
    out.print(f"version {version.id} active; {summary}", highlight=False)


@group.command()
def retrain(ctx: typer.Context, note: str = typer.Option("retrain", help="A note kept with the new version.")):
    """Rebuild the counts from the ledger (bootstrap corpus included) as a new active version."""
    _retrain(open_for_writing(ctx, create=False), note)


@group.command()
def evaluate(
    ham: Path = typer.Option(..., help="Folder of ham messages."),
    spam: Path = typer.Option(..., help="Folder of spam messages."),
    folds: int | None = typer.Option(None, "--folds", min=2, help="K-fold cross-validation."),
    online: bool = typer.Option(False, "--online", help="In time order: judge each, then learn it."),
    scores: Path = typer.Option(Path("spam-scores.tsv"), "--scores", help="Per-message scores (TSV)."),
    as_json: bool = typer.Option(False, "--json"),
):
    """How the filter does on your own labelled mail: FP/FN rates, unsure, 1-ROCA%."""
    from rich.progress import Progress

    from classifier.report import evaluate_folders
    from models.mail.parse import silence_mailparser

    if (folds is None) == (not online):
        fail("give exactly one of --folds K or --online")
    silence_mailparser()
    with Progress(console=err) as progress:
        task = progress.add_task("reading", total=None)

        def step(phase: str, done: int, total: int) -> None:
            progress.update(task, description=phase, completed=done, total=total)

        try:
            result = evaluate_folders(ham, spam, folds=folds, online=online, scores_out=scores, progress=step)
        except ValueError as exc:
            fail(str(exc))
    if as_json:
        out.print_json(json.dumps(result, default=str))
        return
    out.print(f"{result['protocol']}: {result['n_ham']} ham, {result['n_spam']} spam", highlight=False)
    out.print(
        f"false positives {result['fp']} ({rounded(result['fp_rate'])} % of decided ham), "
        f"false negatives {result['fn']} ({rounded(result['fn_rate'])} % of decided spam)",
        highlight=False,
    )
    out.print(
        f"unsure: {result['unsure_ham']} ham, {result['unsure_spam']} spam; "
        f"1-ROCA {rounded(result['one_minus_roca'])} %; scores in {result['scores_out']}",
        highlight=False,
    )


@group.command("versions")
def list_versions(ctx: typer.Context, as_json: bool = typer.Option(False, "--json")):
    """Every saved version, its figures, and which one is active."""
    from classifier import ledger, versions as model_versions

    app = open_for_reading(ctx)
    with app.db.read() as session:
        rows: list[dict[str, Any]] = [
            {
                "id": v.id,
                "created_at": v.created_at.isoformat(),
                "active": v.active,
                "note": v.note,
                "last_event_id": v.last_event_id,
                "figures": v.figures,
            }
            for v in model_versions.versions(session)
        ]
        labels = ledger.counts(session)
    if as_json:
        out.print_json(json.dumps(rows))
        return
    out.print(f"ledger: {labels['ham']} ham, {labels['spam']} spam", highlight=False)
    for row in rows:
        figures = figures_text(row["figures"])
        out.print(
            f"{'*' if row['active'] else ' '} {row['id']:>4}  {row['created_at'][:19]}  {row['note']}  {figures}",
            highlight=False,
        )


@group.command()
def activate(ctx: typer.Context, version_id: int):
    """Make a version live (a rollback replays every label learned since it)."""
    from classifier import versions as model_versions

    app = open_for_writing(ctx, create=False)
    try:
        with app.db.write() as session:
            model_versions.activate_version(session, version_id)
    except LookupError as exc:
        fail(str(exc))
    out.print(f"version {version_id} is active")


@group.command()
def score(
    ctx: typer.Context,
    files: list[Path] = typer.Argument(..., help="Message files or folders."),
    as_json: bool = typer.Option(
        False, "--json", help="A JSON list with each file's evidence and coverage (share of it seen before) too."
    ),
):
    """One line per file: path, score at full precision, verdict."""
    from models.base import utcnow
    from models.mail.parse import parse

    paths = _files(files)
    app = open_for_reading(ctx)
    live = app.live_model()
    with app.db.read() as session:
        live.refresh(session)
    scored = [(path, live.filter.classify(parse(_read(path), received_at=utcnow()))) for path in paths]
    if as_json:
        typer.echo(
            json.dumps(
                [
                    {
                        "path": str(path),
                        "score": v.score,
                        "verdict": v.label,
                        "coverage": v.coverage,
                        "evidence": v.evidence,
                    }
                    for path, v in scored
                ]
            )
        )
        return
    for path, verdict in scored:
        typer.echo(f"{path}\t{verdict.score!r}\t{verdict.label}")  # plain tabs, for scripts; repr: every digit


@group.command()
def learn(
    ctx: typer.Context,
    files: list[Path] = typer.Argument(None, help="Message files or folders."),
    spam: bool | None = LabelFlag,
    message: list[int] = typer.Option([], "--message", help="A stored message id (repeatable)."),
):
    """Teach the filter now; a message learned with the other label is unlearned first."""
    from tickets.spam_marks import mark_message

    label, paths = _label(spam), _files(files or [])
    if not message and not paths:
        fail("give message files or --message ID")
    app = open_for_writing(ctx, create=not message)
    if message:
        spam_filter = app.live_model().filter
        with app.db.write() as session:
            for message_id in message:
                try:
                    outcome = mark_message(
                        session, message_id, label, store=app.store, spam_filter=spam_filter, actor="cli", source="cli"
                    )
                except LookupError as exc:
                    fail(str(exc))
                out.print(f"message {message_id}: {outcome} as {label}")
    if paths:
        tally = _learn_files(app, paths, label, "cli", lambda: None)
        out.print(", ".join(f"{k} {v}" for k, v in sorted(tally.items())) + f" as {label}", highlight=False)


@group.command()
def unlearn(
    ctx: typer.Context,
    files: list[Path] = typer.Argument(..., help="Message files or folders."),
    spam: bool | None = LabelFlag,
):
    """Exactly undo an earlier `learn` of these files with this label."""
    from classifier import ledger
    from models.mail.parse import raw_sha256

    label, paths = _label(spam), _files(files)
    app = open_for_writing(ctx, create=False)
    tally = {"unlearned": 0, "not learned": 0, "learned as the other label": 0}
    with app.db.write() as session:
        for path in paths:
            key = f"raw:{raw_sha256(_read(path))}"
            had = ledger.label_of(session, key)
            if had is None:
                tally["not learned"] += 1
            elif had != label:
                tally["learned as the other label"] += 1
            else:
                ledger.unlearn(session, key)
                tally["unlearned"] += 1
    out.print(", ".join(f"{k} {v}" for k, v in tally.items()), highlight=False)


def _sender_rule(ctx: typer.Context, pattern: str, action: str, remove: bool) -> None:
    from classifier import senders

    app = open_for_writing(ctx, create=not remove)
    try:
        with app.db.write() as session:
            if remove:
                done = senders.remove_rule(session, pattern)
                out.print(f"{pattern}: {'removed' if done else 'was not listed'}", highlight=False)
            else:
                out.print(f"{senders.set_rule(session, pattern, action)}: {action}", highlight=False)
    except ValueError as exc:
        fail(str(exc))


@group.command()
def allow(
    ctx: typer.Context,
    pattern: str = typer.Argument(..., help="An address or a domain."),
    remove: bool = typer.Option(False, "--remove", help="Take the rule away."),
):
    """Never put mail from this sender or domain in Spam."""
    _sender_rule(ctx, pattern, "allow", remove)


@group.command()
def block(
    ctx: typer.Context,
    pattern: str = typer.Argument(..., help="An address or a domain."),
    remove: bool = typer.Option(False, "--remove", help="Take the rule away."),
):
    """Always put mail from this sender or domain in Spam."""
    _sender_rule(ctx, pattern, "block", remove)
