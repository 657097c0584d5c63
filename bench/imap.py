"""IMAP ingestion benchmark: the shared corpus (3,000 messages) from a throwaway Dovecot into tickets.

    .venv/bin/python bench/imap.py [--corpus DIR] [--batch 50] [--concurrency 8] [--rounds 1] [--no-extras]

Prints msgs/s from the same run for:
  imap e2e     `postdesk serve` (subprocess, SQLite in a temp data dir) with one IMAP account,
               initial_sync "all", on the Dovecot user holding the corpus; the clock runs from the
               server's ready line until the poller's state shows every UID done and the spool is
               empty; then the SQLite `messages` table is checked: one row on a ticket per distinct
               message (the pipeline drops byte-duplicates by sha256 of the CRLF-normalised bytes)
  imap fetch   a bare imapclient loop: UID SEARCH ALL, UID FETCH BODY.PEEK[] in batches
  smtp e2e     bench/ingest.py's `run("e2e", ...)` at concurrency 8 on the same messages (its
               own client process when it has one), started and stopped the same way
and the ratio imap e2e / smtp e2e (target >= 0.7). Extras, for diagnosis (--no-extras drops them):
the poller alone into a fresh spool (no runner), and spool.put alone (the poller's disk ceiling).
Rates are messages sent (3,000) per second, as bench/ingest.py counts them. On a busy machine use
--rounds 3: the two e2e figures then alternate and the printed ratio is the median of the rounds.

Needs root and Dovecot (it uses tests/dovecot.py's DovecotServer). The corpus is written straight
into the Maildir (faster than 3,000 APPENDs); Dovecot gives it UIDs on first access, which is done
once, untimed, before any figure.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
import multiprocessing
import os
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from ingest.imap.poller import ImapPoller  # noqa: E402
from ingest.imap.state import state_path  # noqa: E402
from ingest.spool import Spool  # noqa: E402
from models.mail.envelope import Envelope  # noqa: E402
from models.mail.parse import normalise_crlf, raw_sha256  # noqa: E402
from models.settings import ImapAccount  # noqa: E402
from tests.dovecot import DovecotServer, DovecotUser, dovecot_binary  # noqa: E402

DEFAULT_CORPUS = Path(os.environ.get("POSTDESK_CORPUS_DIR", ROOT.parent / "shared" / "corpus")) / "spamassassin-2002"
MAILBOX = "support@example.com"
ACCOUNT = "bench"
E2E_TIMEOUT = 900.0  # seconds; the run fails rather than hangs
SMTP_BENCH = "bench_ingest"


def load_smtp_bench():
    """bench/ingest.py as module `bench_ingest` (as `ingest` it would shadow the package); it is
    registered in sys.modules so that its functions pickle for its client process."""
    if SMTP_BENCH in sys.modules:
        return sys.modules[SMTP_BENCH]
    spec = importlib.util.spec_from_file_location(SMTP_BENCH, ROOT / "bench" / "ingest.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[SMTP_BENCH] = module
    spec.loader.exec_module(module)
    return module


def _smtp_client_init(*args) -> None:
    """In bench/ingest.py's client process: load it there too, then its own initializer."""
    load_smtp_bench()._client_init(*args)


def corpus_messages(corpus: Path) -> list[bytes]:
    """Each file without its leading mbox `From ` line, with CRLF line ends (as bench/ingest.py)."""
    messages = []
    for path in sorted((corpus / "ham").iterdir()) + sorted((corpus / "spam").iterdir()):
        raw = path.read_bytes()
        if raw.startswith(b"From "):
            raw = raw.split(b"\n", 1)[1] if b"\n" in raw else b""
        messages.append(raw.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n"))
    return messages


def distinct_count(messages: list[bytes]) -> int:
    """How many messages the pipeline keeps: it dedupes by sha256 of the CRLF-normalised bytes."""
    return len({raw_sha256(normalise_crlf(raw)) for raw in messages})


def fill_maildir(server: DovecotServer, user: DovecotUser, messages: list[bytes]) -> list[int]:
    """Write the messages into the user's Maildir; returns their UIDs (assigned by a first SELECT)."""
    maildir = user.home / "Maildir"
    for sub in ("cur", "new", "tmp"):
        (maildir / sub).mkdir(parents=True, exist_ok=True)
    stamp = int(time.time())
    for n, raw in enumerate(messages):
        (maildir / "new" / f"{stamp}.M{n}P{os.getpid()}.bench").write_bytes(raw)
    for path in [maildir, *maildir.rglob("*")]:
        os.chown(path, server.mail_uid, server.mail_gid)
    client = server.client(user)
    try:
        client.select_folder("INBOX", readonly=True)
        uids = client.search(["ALL"])
    finally:
        client.logout()
    if len(uids) != len(messages):
        raise RuntimeError(f"Dovecot sees {len(uids)} messages, {len(messages)} were written")
    return uids


def account_fields(server: DovecotServer, user: DovecotUser, batch: int) -> dict:
    return dict(
        name=ACCOUNT,
        host=server.host,
        port=server.tls_port,
        tls="implicit",
        username=user.name,
        password=user.password,
        ca_file=str(server.ca_file),
        mailbox=MAILBOX,
        initial_sync="all",
        fetch_batch=batch,
    )


# --- the figures: each returns (messages, seconds) -------------------------------------------


def imap_e2e(
    server: DovecotServer, user: DovecotUser, batch: int, smtp, uids: list[int], distinct: int
) -> tuple[int, float]:
    """`postdesk serve` polling the account until every message is on a committed ticket."""
    with tempfile.TemporaryDirectory(prefix="postdesk-bench-") as folder:
        data_dir = Path(folder)
        env = smtp.env_for(data_dir)
        env["POSTDESK_IMAP_ACCOUNTS"] = json.dumps([account_fields(server, user, batch)])
        state_file = state_path(data_dir, ACCOUNT)
        proc = start_serve(smtp, env, data_dir / "server.log")  # returns at the ready line
        try:
            started = time.perf_counter()
            deadline = started + E2E_TIMEOUT
            while not (_all_uids_done(state_file, uids[-1]) and smtp.drained(data_dir)):
                if proc.poll() is not None:
                    raise RuntimeError(f"postdesk serve exited with {proc.returncode}")
                if time.perf_counter() > deadline:
                    raise RuntimeError(f"imap e2e not done after {E2E_TIMEOUT:.0f}s: {_state_summary(state_file)}")
                time.sleep(0.02)
            elapsed = time.perf_counter() - started
            _check_tickets(data_dir, distinct, state_file)
        finally:
            proc.terminate()
            proc.wait(60)
    return len(uids), elapsed


def start_serve(smtp, env: dict, log: Path) -> subprocess.Popen:
    """`postdesk serve` through bench/ingest.py's start(), so both e2e figures start the same way."""
    return smtp.start(smtp.SERVERS["e2e"], env, log)[0]


def _read_state(state_file: Path) -> dict | None:
    try:
        return json.loads(state_file.read_text())  # written by os.replace: never half a file
    except (FileNotFoundError, json.JSONDecodeError):
        return None


def _all_uids_done(state_file: Path, last_uid: int) -> bool:
    state = _read_state(state_file)
    inbox = (state or {}).get("folders", {}).get("INBOX")
    return bool(inbox) and inbox["last_uid"] >= last_uid


def _state_summary(state_file: Path) -> str:
    state = _read_state(state_file)
    if state is None:
        return "no state file yet"
    inbox = state.get("folders", {}).get("INBOX", {})
    return (
        f"last_uid={inbox.get('last_uid')} imported={inbox.get('imported')} "
        f"skipped={len(inbox.get('skipped', []))} error={state.get('error')!r}"
    )


def _check_tickets(data_dir: Path, distinct: int, state_file: Path) -> None:
    """Every distinct message is a row on a committed ticket, nothing skipped, nothing in spool/bad."""
    db = sqlite3.connect(f"file:{data_dir / 'postdesk.db'}?mode=ro", uri=True)
    try:
        on_ticket, total, imap = db.execute(
            "SELECT count(ticket_id), count(*), sum(source = 'imap') FROM messages"
        ).fetchone()
    finally:
        db.close()
    bad = Spool(data_dir / "spool").depth()["bad"]
    skipped = len(_read_state(state_file)["folders"]["INBOX"].get("skipped", []))
    if (on_ticket, total, imap, bad, skipped) != (distinct, distinct, distinct, 0, 0):
        raise RuntimeError(
            f"imap e2e incomplete: {on_ticket} of {total} message rows on a ticket "
            f"({imap} from IMAP), {distinct} distinct messages expected, "
            f"{bad} in spool/bad, {skipped} skipped by the poller"
        )


def imap_fetch(server: DovecotServer, user: DovecotUser, batch: int) -> tuple[int, float]:
    """imapclient only: log in, UID SEARCH ALL, then UID FETCH BODY.PEEK[] `batch` at a time."""
    started = time.perf_counter()
    client = server.client(user)
    client.select_folder("INBOX", readonly=True)
    uids = client.search(["ALL"])
    fetched = 0
    for i in range(0, len(uids), batch):
        fetched += sum(1 for data in client.fetch(uids[i : i + batch], ["BODY.PEEK[]"]).values() if data.get(b"BODY[]"))
    elapsed = time.perf_counter() - started
    client.logout()
    return fetched, elapsed


def smtp_e2e(smtp, client, messages: list[bytes], concurrency: int) -> tuple[int, float]:
    """bench/ingest.py's e2e figure, with its own client process."""
    figures = smtp.run("e2e", client, concurrency)
    return len(messages), len(messages) / figures["rate"]


@contextlib.contextmanager
def smtp_client(smtp, corpus: Path, count: int):
    """bench/ingest.py's client process (one asyncio loop, the corpus loaded once)."""
    spawn = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(1, spawn, _smtp_client_init, (corpus, count)) as client:
        yield client


def poller_to_spool(server: DovecotServer, user: DovecotUser, batch: int) -> tuple[int, float]:
    """The poller's own pass (size check, fetch, spool.put with fsync, state, \\Seen), no runner."""
    work = Path(tempfile.mkdtemp(prefix="postdesk-bench-"))
    account = ImapAccount(**account_fields(server, user, batch))
    try:
        started = time.perf_counter()
        imported = ImapPoller(account, Spool(work / "spool"), work / "data").sync_once()
        return imported, time.perf_counter() - started
    finally:
        shutil.rmtree(work, ignore_errors=True)


def spool_only(messages: list[bytes]) -> tuple[int, float]:
    """The spool's own ceiling (it fsyncs each message before returning)."""
    work = Path(tempfile.mkdtemp(prefix="postdesk-bench-"))
    try:
        spool = Spool(work)
        started = time.perf_counter()
        for raw in messages:
            spool.put(raw, Envelope(source="imap"))
        return len(messages), time.perf_counter() - started
    finally:
        shutil.rmtree(work, ignore_errors=True)


def row(label: str, count: int, seconds: float) -> float:
    rate = count / seconds
    print(f"{label:40} {count:>6d} {seconds:>8.2f} {rate:>8.0f}", flush=True)
    return rate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    parser.add_argument("--batch", type=int, default=50, help="messages per UID FETCH (the account's fetch_batch)")
    parser.add_argument("--concurrency", type=int, default=8, help="SMTP client connections at once")
    parser.add_argument(
        "--rounds", type=int, default=1, help="e2e pairs to run (alternating order); the ratio is their median"
    )
    parser.add_argument("--no-extras", action="store_true", help="skip the poller-only and spool-only rows")
    args = parser.parse_args()
    if not ((args.corpus / "ham").is_dir() and (args.corpus / "spam").is_dir()):
        sys.exit(f"corpus not found at {args.corpus} (needs ham/ and spam/; set POSTDESK_CORPUS_DIR or --corpus)")
    binary = dovecot_binary()
    if binary is None:
        sys.exit("dovecot is not installed (apt-get install dovecot-imapd)")
    if os.geteuid() != 0:
        sys.exit("run as root: Dovecot's mail belongs to nobody and its logins run as dovenull")
    messages = corpus_messages(args.corpus)
    if not messages:
        sys.exit(f"corpus at {args.corpus} holds no messages")
    distinct = distinct_count(messages)
    smtp = load_smtp_bench()

    root = Path(tempfile.mkdtemp(prefix="postdesk-dovecot-"))
    root.chmod(0o755)
    server = DovecotServer(binary, root)
    server.start()
    stack = contextlib.ExitStack()
    try:
        user = server.add_user()
        uids = fill_maildir(server, user, messages)
        print(
            f"{len(messages)} messages ({distinct} distinct), {sum(map(len, messages)) / 2**20:.1f} MiB; "
            f"IMAP batches of {args.batch}, SMTP concurrency {args.concurrency}; {os.cpu_count()} CPUs"
        )
        print(f"{'':40} {'msgs':>6} {'seconds':>8} {'msgs/s':>8}")
        ratios = []
        client = stack.enter_context(smtp_client(smtp, args.corpus, len(messages)))
        for n in range(1, args.rounds + 1):
            suffix = f" #{n}" if args.rounds > 1 else ""
            rates = {}
            e2e = {
                "imap": lambda suffix=suffix: row(
                    f"imap e2e (postdesk serve → tickets){suffix}",
                    *imap_e2e(server, user, args.batch, smtp, uids, distinct),
                ),
                "smtp": lambda suffix=suffix: row(
                    f"smtp e2e (bench/ingest.py, c={args.concurrency}){suffix}",
                    *smtp_e2e(smtp, client, messages, args.concurrency),
                ),
            }
            for kind in ("imap", "smtp") if n % 2 else ("smtp", "imap"):  # alternate, against drift
                rates[kind] = e2e[kind]()
            ratios.append(rates["imap"] / rates["smtp"])
        row("imap fetch only (imapclient)", *imap_fetch(server, user, args.batch))
        if not args.no_extras:
            row("  poller → spool only (no runner)", *poller_to_spool(server, user, args.batch))
            row("  spool.put only (fsync each)", *spool_only(messages))
        ratio = statistics.median(ratios)
        rounds = f" (median of {', '.join(f'{r:.2f}' for r in ratios)})" if len(ratios) > 1 else ""
        print(f"ratio imap e2e / smtp e2e = {ratio:.2f}{rounds}; target ≥ 0.70: {'met' if ratio >= 0.7 else 'NOT met'}")
    finally:
        stack.close()
        server.stop()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
