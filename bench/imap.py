"""IMAP fetch throughput against a throwaway Dovecot holding the shared corpus (3,000 messages).

    .venv/bin/python bench/imap.py [--corpus DIR] [--batch 50]

Prints msgs/s for (1) a bare imapclient loop that only fetches the messages in batches, and
(2) the Postdesk poller fetching them into a fresh spool (fsync per message, state per batch),
and, for reference, spool.put alone: the poller's ceiling on this disk.
Each figure is a function taking the server and user and returning (messages, seconds), so
more can be added beside them (e.g. `postdesk_end_to_end`, into tickets, and the SMTP figure).
The corpus is written straight into the Maildir (faster than 3,000 APPENDs); Dovecot gives it
UIDs on first access.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from ingest.imap import ImapPoller  # noqa: E402
from ingest.imap_config import ImapAccount  # noqa: E402
from ingest.spool import Envelope, Spool  # noqa: E402
from tests.dovecot import DovecotServer, DovecotUser, dovecot_binary  # noqa: E402

DEFAULT_CORPUS = Path(os.environ.get("POSTDESK_CORPUS_DIR", ROOT.parent / "shared" / "corpus")) / "spamassassin-2002"


def corpus_messages(corpus: Path) -> list[bytes]:
    """Each file without its leading mbox `From ` line, with CRLF line ends."""
    messages = []
    for path in sorted((corpus / "ham").iterdir()) + sorted((corpus / "spam").iterdir()):
        raw = path.read_bytes()
        if raw.startswith(b"From "):
            raw = raw.split(b"\n", 1)[1] if b"\n" in raw else b""
        messages.append(raw.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n"))
    return messages


def fill_maildir(server: DovecotServer, user: DovecotUser, messages: list[bytes]) -> None:
    maildir = user.home / "Maildir"
    for sub in ("cur", "new", "tmp"):
        (maildir / sub).mkdir(parents=True, exist_ok=True)
    stamp = int(time.time())
    for n, raw in enumerate(messages):
        (maildir / "new" / f"{stamp}.M{n}P{os.getpid()}.bench").write_bytes(raw)
    for path in [maildir, *maildir.rglob("*")]:
        os.chown(path, server.mail_uid, server.mail_gid)


def plain_fetch(server: DovecotServer, user: DovecotUser, batch: int) -> tuple[int, float]:
    """(1) imapclient only: UID SEARCH ALL, then UID FETCH BODY.PEEK[] `batch` at a time."""
    client = server.client(user)
    started = time.perf_counter()
    client.select_folder("INBOX", readonly=True)
    uids = client.search(["ALL"])
    fetched = 0
    for i in range(0, len(uids), batch):
        fetched += len(client.fetch(uids[i:i + batch], ["BODY.PEEK[]"]))
    elapsed = time.perf_counter() - started
    client.logout()
    return fetched, elapsed


def postdesk_poller(server: DovecotServer, user: DovecotUser, batch: int) -> tuple[int, float]:
    """(2) The poller's own pass (size check, fetch, spool.put with fsync, state, \\Seen)."""
    work = Path(tempfile.mkdtemp(prefix="postdesk-bench-"))
    account = ImapAccount(
        name="bench", host=server.host, port=server.tls_port, username=user.name,
        password=user.password, ca_file=server.ca_file, mailbox="support@example.com",
        initial_sync="all", fetch_batch=batch,
    )
    try:
        started = time.perf_counter()
        imported = ImapPoller(account, Spool(work / "spool"), work / "data").sync_once()
        return imported, time.perf_counter() - started
    finally:
        shutil.rmtree(work, ignore_errors=True)


def spool_only(messages: list[bytes]) -> tuple[int, float]:
    """For reference: the spool's own ceiling (it fsyncs each message before returning)."""
    work = Path(tempfile.mkdtemp(prefix="postdesk-bench-"))
    try:
        spool = Spool(work)
        started = time.perf_counter()
        for raw in messages:
            spool.put(raw, Envelope(source="imap"))
        return len(messages), time.perf_counter() - started
    finally:
        shutil.rmtree(work, ignore_errors=True)


def report(label: str, count: int, seconds: float) -> None:
    print(f"{label:28} {count:5d} msgs in {seconds:6.2f} s = {count / seconds:7.0f} msgs/s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    parser.add_argument("--batch", type=int, default=50)
    args = parser.parse_args()
    binary = dovecot_binary()
    if binary is None:
        sys.exit("dovecot is not installed (apt-get install dovecot-imapd)")
    messages = corpus_messages(args.corpus)
    root = Path(tempfile.mkdtemp(prefix="postdesk-dovecot-"))
    root.chmod(0o755)
    server = DovecotServer(binary, root)
    server.start()
    try:
        user = server.add_user()
        fill_maildir(server, user, messages)
        print(f"{len(messages)} messages, {sum(map(len, messages)) / 2**20:.1f} MiB, batches of {args.batch}")
        for label, figure in (("imapclient fetch only", plain_fetch), ("postdesk poller → spool", postdesk_poller)):
            report(label, *figure(server, user, args.batch))
        report("(spool.put alone)", *spool_only(messages))
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
