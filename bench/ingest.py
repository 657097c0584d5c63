"""Ingest benchmark: the corpus over SMTP, one message per connection, as an MX would send it.

Three servers, each in its own process, fed by the same client at concurrency 1, 8 and 32:
  (a) bare    aiosmtpd accepting and discarding — the baseline
  (b) accept  Postdesk's SMTP edge: 250 only after the spool fsync (no runner)
  (c) e2e     `postdesk serve`: the clock stops when every message is on a committed ticket
Prints msgs/s, p50/p99 latency and the ratios b/a and c/a from the same run.

    python bench/ingest.py [--corpus DIR] [--limit N] [--levels 1,8,32]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import smtplib
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
from corpus import corpus_files, wire_bytes  # noqa: E402

MAILBOXES = json.dumps([{"address": "support@example.com", "department": "Support"}])

BARE_SERVER = """
import asyncio, sys
from aiosmtpd.controller import Controller
class Discard:
    async def handle_DATA(self, server, session, envelope):
        return "250 OK"
c = Controller(Discard(), hostname="127.0.0.1", port=0, data_size_limit=33554432)
c.start()
print("PORT", c.server.sockets[0].getsockname()[1], flush=True)
sys.stdin.read()
"""

ACCEPT_SERVER = """
import sys
from postdesk.app import App
from postdesk.settings import load_settings
from ingest.smtp import SmtpServer
app = App.open(load_settings())
server = SmtpServer(app.settings, app.spool, app.directory)
print("PORT", server.start(), flush=True)
sys.stdin.read()
"""


def env_for(data_dir: Path) -> dict:
    env = dict(os.environ)
    env.update(POSTDESK_DATA_DIR=str(data_dir), POSTDESK_SMTP_PORT="0", POSTDESK_MAILBOXES=MAILBOXES,
               POSTDESK_MIN_FREE_DISK="0", POSTDESK_LOG_LEVEL="WARNING", POSTDESK_DATABASE_URL="",
               POSTDESK_MAX_CONNECTIONS_PER_IP="100")
    return env


def start(args: list[str], env: dict) -> tuple[subprocess.Popen, int]:
    proc = subprocess.Popen(args, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True)
    for line in proc.stdout:
        if match := re.search(r"(?:PORT |SMTP: [\d.]+:)(\d+)", line):
            return proc, int(match[1])
    raise RuntimeError(f"server did not start: {args}")


def send_one(port: int, raw: bytes) -> float:
    started = time.perf_counter()
    with smtplib.SMTP("127.0.0.1", port, timeout=120) as client:
        client.sendmail("relay@example.org", ["support@example.com"], raw)
    return time.perf_counter() - started


def blast(port: int, messages: list[bytes], concurrency: int) -> list[float]:
    with ThreadPoolExecutor(concurrency) as pool:
        return list(pool.map(lambda raw: send_one(port, raw), messages))


def spool_empty(data_dir: Path) -> bool:
    return not any(any((data_dir / "spool" / d).glob("*.eml")) for d in ("new", "cur"))


SERVERS = {
    "bare": [sys.executable, "-c", BARE_SERVER],
    "accept": [sys.executable, "-c", ACCEPT_SERVER],
    "e2e": [sys.executable, "-m", "postdesk", "serve"],
}


def run(kind: str, messages: list[bytes], concurrency: int) -> dict:
    """One server, one concurrency level, a fresh data folder."""
    with tempfile.TemporaryDirectory() as folder:
        data_dir = Path(folder)
        proc, port = start(SERVERS[kind], env_for(data_dir))
        try:
            started = time.perf_counter()
            latencies = blast(port, messages, concurrency)
            while kind == "e2e" and not spool_empty(data_dir):
                time.sleep(0.02)
            elapsed = time.perf_counter() - started
        finally:
            proc.terminate()
            proc.wait(60)
    latencies.sort()
    return {"rate": len(messages) / elapsed, "p50": statistics.median(latencies) * 1000,
            "p99": latencies[max(int(len(latencies) * 0.99) - 1, 0)] * 1000}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default_corpus = Path(os.environ.get("POSTDESK_CORPUS_DIR", ROOT.parent / "shared" / "corpus"))
    parser.add_argument("--corpus", type=Path, default=default_corpus / "spamassassin-2002")
    parser.add_argument("--limit", type=int, default=3000)
    parser.add_argument("--levels", default="1,8,32")
    args = parser.parse_args()
    if not (args.corpus / "ham").is_dir():
        sys.exit(f"corpus not found at {args.corpus} (set POSTDESK_CORPUS_DIR or --corpus)")
    messages = [wire_bytes(path) for _, path in corpus_files(args.corpus)][: args.limit]
    print(f"{len(messages)} messages, {sum(map(len, messages)) / 2**20:.1f} MiB, one per connection")
    print(f"{'concurrency':>11} {'server':>7} {'msgs/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'ratio':>6}")
    for level in map(int, args.levels.split(",")):
        figures = {kind: run(kind, messages, level) for kind in SERVERS}
        for kind, f in figures.items():
            ratio = f["rate"] / figures["bare"]["rate"]
            print(f"{level:>11} {kind:>7} {f['rate']:>8.0f} {f['p50']:>8.1f} {f['p99']:>8.1f} {ratio:>6.2f}")


if __name__ == "__main__":
    main()
