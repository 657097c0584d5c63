"""Privacy benchmark: erasing one person from a small and from a large store, and exporting them.

Two stores (SQLite, as `./start` runs it), seeded in bulk through the message store (not SMTP):
SMALL and LARGE messages from many customers, a tenth of them with an attachment. In each round a
person is added to both — 50 messages over 10 tickets, 5 attachments (one file shared with a
message that stays) — and erased from both (preview, then the job, as `postdesk privacy erase`
runs them), alternating; the ratio large/small of the erasure time is the figure (target ≤ 2:
indexed lookups, no scans). Then that person's export, and the export's peak memory for a person
with 100 messages against one with 10,000 (each in a fresh process: the peak RSS while it exports,
and the Python heap's peak by tracemalloc; target ≤ 1.5).

Retention purge throughput on the large store: tickets holding --purge messages in all are put in
Spam, 60 days idle, and the spam rule purges them (`Retention.run`, batches of 100 tickets, as
`postdesk retention run spam` does) in messages/s; the baseline, in the same run and alternating
halves with it, deletes as many messages of other tickets with plain `DELETE FROM tickets` in
transactions of 100 tickets (the cascades and triggers do the rest; no blob files, no spam model,
no audit): the ratio is what the rule's care costs.

Backups of the large store, in MB/s of the backup's bytes: `backup create` (online backup API,
files hashed into the manifest, one syncfs) and `backup restore` (files copied and checked, the
erasure ledger replayed, freed pages scrubbed), each against the same run's baseline, `cp -r` of the
same files (the database, blobs/, spam/) followed by `sync -f`, in alternating rounds.

    python bench/privacy.py [--small 1000] [--large 100000] [--rounds 3] [--purge 10000] [--data-root DIR] [--keep]
    python bench/privacy.py --retention-only [--large 100000] [--purge 10000]
    python bench/privacy.py --backup-only [--rounds 3]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
import tracemalloc
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # before bench/, whose ingest.py would shadow the package

from sqlalchemy import delete, func, select, update  # noqa: E402

from models import Message, Ticket  # noqa: E402
from models.base import utcnow  # noqa: E402
from models.settings import MailboxConfig, Settings  # noqa: E402
from postdesk.app import App  # noqa: E402
from retention.export import export_person  # noqa: E402
from retention.backup import create_backup  # noqa: E402
from retention.ledger import ErasureLedger  # noqa: E402
from retention.restore import restore_backup  # noqa: E402
from tickets.store import Addressee, MessageRecord  # noqa: E402

PERSON = "erase-me@example.org"
SHARED_FILE = b"%PDF-1.4\nthe terms and conditions every customer sends\n%%EOF\n"
BATCH = 500
_serial = iter(range(10**9))


@dataclass
class Part:
    filename: str
    content_type: str
    payload: bytes
    content_id: str = ""
    inline: bool = False


def record(
    sender: str, subject: str, *, ticket_id: int | None = None, files: list[Part] = (), size: int = 3000
) -> MessageRecord:
    n = next(_serial)
    body = (f"Message {n} from {sender}. " * (size // 40))[:size]
    raw = (
        f"From: {sender}\r\nTo: support@example.com\r\nSubject: {subject}\r\nMessage-ID: <bench{n}@example.org>\r\n"
        f"\r\n{body}\r\n"
    ).encode()
    return MessageRecord(
        raw=raw,
        sha256=hashlib.sha256(raw).hexdigest(),
        spool_id=f"bench-{n}",
        source="smtp",
        received_at=datetime.now(UTC),
        envelope_from=sender,
        recipients=[Addressee("envelope", "support@example.com", ""), Addressee("to", "support@example.com", "")],
        message_id=f"bench{n}@example.org",
        date=None,
        in_reply_to=[],
        references=[],
        list_id="",
        subject=subject,
        from_address=sender,
        from_name="",
        text_body=body,
        html_body="",
        upstream={},
        attachments=list(files),
        mailbox_id=1,
        flags=[],
        thread_rule="reference" if ticket_id else "new",
        ticket_id=ticket_id,
    )


def open_store(folder: Path) -> App:
    settings = Settings(data_dir=folder, mailboxes=[MailboxConfig(address="support@example.com")], secret_key="bench")
    app = App.open(settings)
    app.services()  # the mailbox rows
    return app


def seed(app: App, total: int, progress: str) -> None:
    """`total` messages from customers who write 1-5 times each; every tenth has an attachment."""
    written, customer = 0, 0
    while written < total:
        with app.db.write() as session, app.store.batch(session) as writes:
            while written < total and len(writes.written) < BATCH:
                customer += 1
                sender = f"customer{customer}@example.net"
                replies = customer % 5
                files = (
                    [Part(f"invoice{customer}.pdf", "application/pdf", os.urandom(2000))] if customer % 10 == 0 else []
                )
                first = writes.write(record(sender, f"Question {customer}", files=files))
                ticket = session.scalar(select(Message.ticket_id).where(Message.id == first))
                for _ in range(min(replies, total - written - 1)):
                    writes.write(record(sender, f"Re: Question {customer}", ticket_id=ticket))
                written += 1 + min(replies, total - written - 1)
        print(f"\r{progress}: {written}/{total}", end="", file=sys.stderr, flush=True)
    print(file=sys.stderr)
    if customer:  # one shared file, used by mail that stays
        with app.db.write() as session:
            app.store.write(
                session,
                record("keeper@example.net", "Terms", files=[Part("terms.pdf", "application/pdf", SHARED_FILE)]),
            )


def add_person(app: App, address: str, messages: int, tickets: int, attachments: int) -> None:
    per_ticket = messages // tickets
    with app.db.write() as session, app.store.batch(session) as writes:
        n = 0
        for t in range(tickets):
            ticket = None
            for _ in range(per_ticket):
                files = []
                if n < attachments:
                    files = [
                        Part(
                            "terms.pdf" if n == 0 else f"scan{n}.pdf",
                            "application/pdf",
                            SHARED_FILE if n == 0 else os.urandom(5000),
                        )
                    ]
                first = writes.write(record(address, f"Case {t}", ticket_id=ticket, files=files))
                if ticket is None:
                    ticket = session.scalar(select(Message.ticket_id).where(Message.id == first))
                n += 1


def checkpoint(app: App) -> None:
    with app.db.engine.connect() as conn:
        conn.connection.driver_connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")


def erase_once(app: App) -> tuple[float, float, dict]:
    """Seconds for the preview and for the erasure job, and the receipt's counts."""
    engine = app.eraser()
    started = time.perf_counter()
    person = engine.person(PERSON)
    preview = engine.preview(person)
    previewed = time.perf_counter()
    receipt = engine.erase(person, "delete", "bench")
    done = time.perf_counter()
    assert preview.counts()["messages"] == 50 and receipt.counts["messages"] == 50, receipt.counts
    return previewed - started, done - previewed, receipt.counts


def _forget_leftover(app: App) -> None:
    """The person, if a run ended before erasing them (a kept store)."""
    engine = app.eraser()
    person = engine.person(PERSON)
    if engine.preview(person).messages:
        engine.erase(person, "delete", "bench")


def export_child(folder: Path, address: str, output: Path) -> None:
    """In a fresh process: export `address`, print seconds, peak RSS and the heap's peak."""
    app = App.open(
        Settings(data_dir=folder, mailboxes=[MailboxConfig(address="support@example.com")], secret_key="bench"),
        migrate=False,
    )
    Path("/proc/self/clear_refs").write_text("5")  # the peak RSS starts again from here (Linux 4.0+)
    rss_before = _status_kib("VmRSS")
    tracemalloc.start()
    started = time.perf_counter()
    counts = export_person(app.db, app.store, ErasureLedger(app.settings.erasure_ledger_path), address, output, "bench")
    seconds = time.perf_counter() - started
    _, heap_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    print(
        json.dumps(
            {
                "seconds": seconds,
                "messages": counts["messages"],
                "heap_peak": heap_peak,
                "rss_peak_kib": _status_kib("VmHWM"),
                "rss_before_kib": rss_before,
                "zip_bytes": output.stat().st_size,
            }
        )
    )


def _status_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise LookupError(field)


def export_measured(folder: Path, address: str, scratch: Path) -> dict:
    output = scratch / f"{address.split('@')[0]}.zip"
    output.unlink(missing_ok=True)
    done = subprocess.run(
        [sys.executable, __file__, "--export-child", str(folder), address, str(output)],
        capture_output=True,
        text=True,
        check=True,
    )
    output.unlink(missing_ok=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def tickets_holding(app: App, messages: int, taken: set[int]) -> tuple[list[int], int]:
    """Customers' tickets not in `taken`, oldest first, holding about `messages` messages in all."""
    chosen, total = [], 0
    with app.db.read() as session:
        rows = session.execute(
            select(Message.ticket_id, func.count())
            .where(Message.ticket_id.is_not(None))
            .group_by(Message.ticket_id)
            .order_by(Message.ticket_id)
        ).all()
    for ticket_id, n in rows:
        if total >= messages:
            break
        if ticket_id not in taken:
            chosen.append(ticket_id)
            total += n
    taken.update(chosen)
    return chosen, total


def purge_by_rule(app: App, tickets: list[int]) -> float:
    """Seconds for the spam rule to purge these tickets (made Spam, 60 days idle)."""
    with app.db.write() as session:
        for i in range(0, len(tickets), 500):
            session.execute(
                update(Ticket)
                .where(Ticket.id.in_(tickets[i : i + 500]))
                .values(queue="spam", updated_at=utcnow() - timedelta(days=60))
            )
    checkpoint(app)
    started = time.perf_counter()
    report = app.retention().run(["spam"], actor="bench")["spam"]
    seconds = time.perf_counter() - started
    assert report.done["tickets"] == len(tickets), report.done
    return seconds


def plain_delete(app: App, tickets: list[int]) -> float:
    """Seconds for DELETE FROM tickets, 100 tickets a transaction: the baseline."""
    checkpoint(app)
    started = time.perf_counter()
    for i in range(0, len(tickets), 100):
        with app.db.write() as session:
            session.execute(delete(Ticket).where(Ticket.id.in_(tickets[i : i + 100])))
    return time.perf_counter() - started


def retention_measured(app: App, messages: int) -> dict:
    """Messages/s of the spam rule and of the plain delete, alternating halves."""
    taken: set[int] = set()
    seconds = {"rule": 0.0, "plain": 0.0}
    counted = {"rule": 0, "plain": 0}
    for _ in range(2):
        for how, purge in (("plain", plain_delete), ("rule", purge_by_rule)):
            tickets, n = tickets_holding(app, messages // 2, taken)
            seconds[how] += purge(app, tickets)
            counted[how] += n
    return {how: counted[how] / seconds[how] for how in seconds} | {"messages": counted}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", type=int, default=1000)
    parser.add_argument("--large", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--data-root", type=Path, default=ROOT / ".bench")
    parser.add_argument(
        "--purge", type=int, default=10_000, help="Messages purged by the retention rule (and as many by the baseline)."
    )
    parser.add_argument("--retention-only", action="store_true", help="Only the retention purge, on the large store.")
    parser.add_argument("--keep", action="store_true", help="Keep the seeded stores for another run.")
    parser.add_argument("--backup-only", action="store_true", help="Only the backup rounds (no erasure, no export).")
    parser.add_argument("--export-child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.export_child:
        export_child(Path(args.export_child[0]), args.export_child[1], Path(args.export_child[2]))
        return
    root = args.data_root / "privacy"
    stores = {}
    sizes = (("large", args.large),) if args.retention_only else (("small", args.small), ("large", args.large))
    for name, size in sizes:
        folder = root / f"{name}-{size}"
        fresh = not (folder / "postdesk.db").exists()
        app = open_store(folder)
        if fresh:
            started = time.perf_counter()
            seed(app, size, f"seeding {name}")
            if name == "large":
                add_person(app, "export-100@example.org", 100, 10, 10)
                add_person(app, "export-10000@example.org", 10_000, 100, 100)
            print(f"seeded {name} ({size} messages) in {time.perf_counter() - started:.0f} s", file=sys.stderr)
        _forget_leftover(app)
        checkpoint(app)
        stores[name] = app
    if args.retention_only:
        _report_retention(args, retention_measured(stores["large"], args.purge))
        _close(stores, root, args.keep)
        return
    backups = backup_rounds(stores["large"], root / "backup-scratch", args.rounds)
    print(_report_backup(args, backups))
    if args.backup_only:
        _close(stores, root, args.keep)
        return
    rounds = {"small": [], "large": []}
    for n in range(args.rounds):  # alternating, so the machine's drift hits both alike
        for name, app in stores.items():
            add_person(app, PERSON, 50, 10, 5)
            checkpoint(app)
            rounds[name].append(erase_once(app))
        print(
            f"round {n + 1}: small {sum(rounds['small'][-1][:2]):.3f} s, large {sum(rounds['large'][-1][:2]):.3f} s",
            file=sys.stderr,
        )
    scratch = root / "exports"
    scratch.mkdir(parents=True, exist_ok=True)
    large_folder = stores["large"].settings.data_dir
    add_person(stores["large"], PERSON, 50, 10, 5)
    person_export = export_measured(large_folder, PERSON, scratch)
    exports = {n: export_measured(large_folder, f"export-{n}@example.org", scratch) for n in (100, 10_000)}
    _forget_leftover(stores["large"])
    _report(args, rounds, person_export, exports, rounds["small"][-1][2])
    _report_retention(args, retention_measured(stores["large"], args.purge))
    _close(stores, root, args.keep)


def _close(stores: dict, root: Path, keep: bool) -> None:
    for app in stores.values():
        app.db.dispose()
    if not keep:  # a kept store has lost the purged tickets: --keep is for the erasure rounds
        shutil.rmtree(root, ignore_errors=True)


def _report_retention(args, measured: dict) -> None:
    rule, plain = measured["rule"], measured["plain"]
    print(
        f"retention purge on the {args.large:,}-message store (SQLite), spam rule vs plain DELETE, "
        f"alternating halves:\n"
        f"  spam rule     {rule:,.0f} messages/s ({measured['messages']['rule']:,} messages)\n"
        f"  plain delete  {plain:,.0f} messages/s ({measured['messages']['plain']:,} messages)\n"
        f"  ratio rule/plain {rule / plain:.2f}"
    )


def _report(args, rounds: dict, person_export: dict, exports: dict, counts: dict) -> None:
    def med(name: str, i: int) -> float:
        return statistics.median(r[i] for r in rounds[name])

    erase_small, erase_large = med("small", 1), med("large", 1)
    preview_small, preview_large = med("small", 0), med("large", 0)
    per_round = [large[1] / small[1] for small, large in zip(rounds["small"], rounds["large"], strict=True)]
    small_export, big_export = exports[100], exports[10_000]
    lines = [
        f"privacy bench: stores of {args.small:,} and {args.large:,} messages (SQLite), "
        f"{args.rounds} alternating rounds",
        "erase one person (50 messages, 10 tickets, 5 attachments, one file shared with mail that stays):",
        f"  preview  small {preview_small * 1000:.0f} ms, large {preview_large * 1000:.0f} ms "
        f"(large/small {preview_large / preview_small:.2f})",
        f"  erasure  small {erase_small * 1000:.0f} ms, large {erase_large * 1000:.0f} ms "
        f"(large/small {erase_large / erase_small:.2f}, rounds {min(per_round):.2f}-{max(per_round):.2f}; target 2)",
        f"  receipt counts: messages {counts['messages']}, tickets {counts['tickets']}, attachments "
        f"{counts['attachments']}, blob files {counts['blobs']}",
        f"export of that person: {person_export['seconds'] * 1000:.0f} ms, {person_export['zip_bytes']:,} bytes",
        "export peak memory, 100 against 10,000 messages (each in a fresh process):",
        f"  RSS   {small_export['rss_peak_kib'] / 1024:.1f} MiB vs {big_export['rss_peak_kib'] / 1024:.1f} MiB "
        f"(ratio {big_export['rss_peak_kib'] / small_export['rss_peak_kib']:.2f}; target 1.5; the process's peak "
        f"during the export, from {small_export['rss_before_kib'] / 1024:.1f} and "
        f"{big_export['rss_before_kib'] / 1024:.1f} MiB before it)",
        f"  heap  {small_export['heap_peak'] / 2**20:.1f} MiB vs {big_export['heap_peak'] / 2**20:.1f} MiB "
        f"(ratio {big_export['heap_peak'] / small_export['heap_peak']:.2f}; the Python heap by tracemalloc)",
        f"  time  {small_export['seconds']:.2f} s vs {big_export['seconds']:.2f} s, "
        f"zip {small_export['zip_bytes'] / 2**20:.1f} MiB vs {big_export['zip_bytes'] / 2**20:.1f} MiB",
    ]
    print("\n".join(lines))


# --- backups ---------------------------------------------------------------------------------------


def backup_rounds(app: App, scratch: Path, rounds: int) -> list[dict]:
    """Alternating rounds of `cp -r` + `sync -f`, backup create and backup restore of `app`'s store:
    seconds and bytes of each."""
    folder = app.settings.data_dir
    ledger = app.erasure_ledger()
    if not ledger.path.exists():  # as after one erasure (of nobody in this store)
        ledger.append({"kind": "spool", "job": "bench", "raw": [ledger.hmac("0" * 64)]})
    shutil.rmtree(scratch, ignore_errors=True)
    scratch.mkdir(parents=True)
    found = []
    for n in range(rounds):
        copied = scratch / "cp"
        copied.mkdir()
        sources = [folder / "postdesk.db"] + [folder / d for d in ("blobs", "spam") if (folder / d).is_dir()]
        started = time.perf_counter()
        subprocess.run(["cp", "-r", *map(str, sources), str(copied)], check=True)
        subprocess.run(["sync", "-f", str(copied)], check=True)
        cp_seconds = time.perf_counter() - started
        cp_bytes = sum(p.stat().st_size for p in copied.rglob("*") if p.is_file())
        shutil.rmtree(copied)

        started = time.perf_counter()
        backup = create_backup(app.db, folder, scratch / "backup")
        create_seconds = time.perf_counter() - started
        restored = scratch / "restored"
        started = time.perf_counter()
        restore_backup(backup.path, restored, f"sqlite:///{restored / 'postdesk.db'}", ledger, "bench")
        restore_seconds = time.perf_counter() - started
        shutil.rmtree(scratch / "backup")
        shutil.rmtree(restored)
        found.append(
            {
                "cp": cp_seconds,
                "cp_bytes": cp_bytes,
                "create": create_seconds,
                "restore": restore_seconds,
                "bytes": backup.size,
                "files": len(backup.files),
            }
        )
        print(
            f"backup round {n + 1}: cp {cp_seconds:.2f} s, create {create_seconds:.2f} s, "
            f"restore {restore_seconds:.2f} s ({backup.size / 1e6:.0f} MB)",
            file=sys.stderr,
        )
    shutil.rmtree(scratch, ignore_errors=True)
    return found


def _report_backup(args, rounds: list[dict]) -> str:
    def rate(r: dict, what: str) -> float:
        return (r["cp_bytes"] if what == "cp" else r["bytes"]) / r[what] / 1e6

    def line(what: str, label: str) -> str:
        rates = [rate(r, what) for r in rounds]
        ratios = [rate(r, what) / rate(r, "cp") for r in rounds]
        return (
            f"  {label:<8} {statistics.median(rates):7.1f} MB/s (median; {statistics.median(ratios):.2f} of cp's, "
            f"rounds {min(ratios):.2f}-{max(ratios):.2f})"
        )

    last = rounds[-1]
    return "\n".join(
        [
            f"backup of the {args.large:,}-message store (SQLite): {last['bytes'] / 1e6:,.0f} MB in "
            f"{last['files']:,} files, "
            f"{len(rounds)} alternating rounds",
            f"  cp -r + sync -f {statistics.median(rate(r, 'cp') for r in rounds):7.1f} MB/s (the baseline: "
            f"{last['cp_bytes'] / 1e6:,.0f} MB, no checksums)",
            line("create", "create"),
            line("restore", "restore"),
        ]
    )


if __name__ == "__main__":
    main()
