"""Ingest benchmark: the corpus over SMTP, one message per connection as an MX would send it (or
--per-connection N, as a relaying MTA reusing its connections sends it).

Three servers, each in its own process, fed by the same client at concurrency 1, 8 and 32:
  (a) bare    aiosmtpd accepting and discarding — the baseline
  (b) accept  Postdesk's SMTP edge: 250 only after the spool fsync (no runner)
  (c) e2e     `postdesk serve`: the clock stops when every message is on a committed ticket
Prints msgs/s, p50/p99 latency and the ratios b/a and c/a from the same run. The machine's speed
drifts by a third within a minute here, so each level runs the three servers --repeat times in
turn (a, b, c, a, b, c, ...) and prints the median of each, the ratio of the medians and the range
of the ratios of each round.

    python bench/ingest.py [--corpus DIR] [--limit N] [--levels 1,8,32] [--repeat 3] [--data-root DIR]
                           [--per-connection N]

With --per-connection 300 --levels 8 --limit 2400, eight connections carry 300 distinct corpus
messages each; bare aiosmtpd then no longer pays a connection set-up per message, so the ratios
show what Postdesk costs a relay.

The servers' data folders are made under --data-root: by default `.bench/` in the project, beside
`./data`, where `./start` keeps Postdesk's. Postdesk creates files (spool groups, blobs) and the
bare server none, so the cost of creating a file there weighs on the ratios; the header prints it,
with the same probe in the system's temp folder. On this VM it differs by folder and by the hour
(40 to 1,000 us a file, in /tmp as in the project folder). Since Postdesk creates a file per
spool group rather than two per message, c/a came out the same with --data-root /tmp.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import multiprocessing
import os
import re
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
sys.path.insert(0, str(ROOT / "tests"))
from corpus import corpus_files, wire_bytes  # noqa: E402

sys.path.insert(0, str(ROOT / "bench"))
from where_time_goes import PySpy, summary  # noqa: E402

MAILBOXES = json.dumps([{"address": "support@example.com", "department": "Support"}])

BARE_SERVER = """
import asyncio, sys
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP
class Discard:
    async def handle_DATA(self, server, session, envelope):
        return "250 OK"
class LongLines(SMTP):
    line_length_limit = 64 * 1024  # Postdesk's default: the corpus has lines over 1000 bytes
class PortZeroController(Controller):  # as ingest/smtp.py: wake the server on its real port
    def factory(self):
        return LongLines(self.handler, **self.SMTP_kwargs)
    def _trigger_server(self):
        self.port = self.server.sockets[0].getsockname()[1]
        super()._trigger_server()
c = PortZeroController(Discard(), hostname="127.0.0.1", port=0, data_size_limit=33554432)
c.start()
print("PORT", c.server.sockets[0].getsockname()[1], flush=True)
sys.stdin.read()
"""

ACCEPT_SERVER = """
import sys
from postdesk.app import App
from postdesk.settings_loading import load_settings
from ingest.smtp import SmtpServer
app = App.open(load_settings())
server = SmtpServer(app.settings, app.spool, app.directory)
print("PORT", server.start(), flush=True)
sys.stdin.read()
"""


def env_for(data_dir: Path) -> dict:
    env = dict(os.environ)
    env.update(
        POSTDESK_DATA_DIR=str(data_dir),
        POSTDESK_SMTP_PORT="0",
        POSTDESK_WEB_PORT="0",
        POSTDESK_MAILBOXES=MAILBOXES,
        POSTDESK_MIN_FREE_DISK="0",
        POSTDESK_LOG_LEVEL="WARNING",
        POSTDESK_DATABASE_URL="",
        POSTDESK_MAX_CONNECTIONS_PER_IP="100",
    )
    return env


def start(args: list[str], env: dict, log: Path) -> tuple[subprocess.Popen, int]:
    with open(log, "w") as errors:
        proc = subprocess.Popen(args, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=errors, text=True)
    for line in proc.stdout:
        if match := re.search(r"(?:PORT |SMTP: [\d.]+:)(\d+)", line):
            return proc, int(match[1])
    raise RuntimeError(f"server did not start: {args[-1]}\n{log.read_text()[-2000:]}")


class BenchError(Exception):
    """The server answered something other than what a successful delivery gets."""


async def _expect(reader: asyncio.StreamReader, code: bytes) -> None:
    while True:
        line = await reader.readline()
        if not line.startswith(code):
            raise BenchError(f"expected {code!r}, got {line[:200]!r}")
        if line[3:4] != b"-":
            return


MAIL = (
    (b"MAIL FROM:<relay@example.org>\r\n", b"250"),
    (b"RCPT TO:<support@example.com>\r\n", b"250"),
    (b"DATA\r\n", b"354"),
)


async def _session(port: int, payloads: list[bytes]) -> list[float]:
    """One SMTP session as an MX opens it: EHLO, then MAIL, RCPT and DATA for each payload, QUIT.
    Returns each message's latency: from the connection (the first) or the previous 250 to its own
    250; the last one includes QUIT and the close."""
    started = time.perf_counter()
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    await _expect(reader, b"220")
    writer.write(b"EHLO bench.example.org\r\n")
    await _expect(reader, b"250")
    latencies = []
    for payload in payloads:
        for command, code in (*MAIL, (payload, b"250")):
            writer.write(command)
            await _expect(reader, code)
        latencies.append(time.perf_counter() - started)
        started = time.perf_counter()
    writer.write(b"QUIT\r\n")
    await _expect(reader, b"221")
    writer.close()
    await writer.wait_closed()
    latencies[-1] += time.perf_counter() - started
    return latencies


def dot_stuffed(raw: bytes) -> bytes:
    """The DATA payload: leading dots doubled, CRLF-terminated, then the lone dot."""
    body = raw if raw.endswith(b"\r\n") else raw + b"\r\n"
    body = re.sub(rb"(?m)^\.", b"..", body)
    return body + b".\r\n"


async def _blast(port: int, payloads: list[bytes], concurrency: int, per_connection: int) -> list[float]:
    pending = iter(payloads)
    latencies: list[float] = []

    async def worker() -> None:
        # The workers share one iterator: each message is sent once.
        while chunk := list(itertools.islice(pending, per_connection)):
            latencies.extend(await _session(port, chunk))

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return latencies


# The client runs in its own process, one asyncio loop, the same for all three servers. smtplib
# in 8-32 threads needed ~0.9 ms of CPU a message and held the GIL beside the bench's own work;
# this raw client needs about a third of that (printed as "client CPU" at the end of a run).
_PAYLOADS: list[bytes] = []


def _client_init(corpus: Path, limit: int) -> None:
    _PAYLOADS[:] = [dot_stuffed(raw) for raw in load_messages(corpus, limit)]


def _client_blast(port: int, concurrency: int, per_connection: int) -> tuple[float, float, list[float], float]:
    """(start, end, latencies, CPU seconds) of one blast, on the machine-wide monotonic clock."""
    cpu = time.process_time()
    started = time.monotonic()
    latencies = asyncio.run(_blast(port, _PAYLOADS, concurrency, per_connection))
    return started, time.monotonic(), latencies, time.process_time() - cpu


def load_messages(corpus: Path, limit: int) -> list[bytes]:
    return [wire_bytes(path) for _, path in corpus_files(corpus)][:limit]


SPOOL_FILES = (".entry", ".group")  # ingest.spool's suffixes: this script's name hides the ingest package from it


def drained(data_dir: Path) -> bool:
    """No entry left in new/ or cur/: every message is committed (or in bad/, counted apart)."""
    for folder in ("new", "cur"):
        with os.scandir(data_dir / "spool" / folder) as entries:
            if any(entry.name.endswith(SPOOL_FILES) for entry in entries):
                return False
    return True


def stored(data_dir: Path) -> tuple[int, int]:
    """(messages in the database, entries in spool/bad) after an end-to-end run."""
    with sqlite3.connect(data_dir / "postdesk.db") as db:
        messages = db.execute("SELECT count(*) FROM messages WHERE message_id_header != ?", (WARM_UP_ID,)).fetchone()[0]
    return messages, sum(1 for p in (data_dir / "spool" / "bad").glob("*.entry"))


SERVERS = {
    "bare": [sys.executable, "-c", BARE_SERVER],
    "accept": [sys.executable, "-c", ACCEPT_SERVER],
    "e2e": [sys.executable, "-m", "postdesk", "serve"],
}


def trained_template(corpus: Path, folder: Path) -> Path:
    """A data folder whose spam filter was bootstrapped on the corpus, so e2e pays for real scoring."""
    template = folder / "trained"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "postdesk",
            "spam",
            "train",
            "--ham",
            str(corpus / "ham"),
            "--spam",
            str(corpus / "spam"),
        ],
        env=env_for(template),
        check=True,
        capture_output=True,
    )
    return template


def _process_table() -> tuple[dict[int, int], dict[int, float]]:
    """Every process's parent and CPU seconds so far (utime + stime)."""
    tick = os.sysconf("SC_CLK_TCK")
    parent, cpu = {}, {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rpartition(")")[2].split()
        except OSError:  # the process ended while we looked
            continue
        parent[int(stat.parent.name)] = int(fields[1])
        cpu[int(stat.parent.name)] = (int(fields[11]) + int(fields[12])) / tick
    return parent, cpu


def process_levels(pid: int, parent: dict[int, int]) -> list[set[int]]:
    """The process, its children, their children and so on."""
    levels, frontier = [], {pid}
    while frontier:
        levels.append(frontier)
        frontier = {child for child, up in parent.items() if up in frontier}
    return levels


def tree_cpu(pid: int) -> list[float]:
    """CPU seconds used so far by a process ([0]), its children ([1]: e2e's runner), their children
    ([2]: the runner's prepare worker) and so on."""
    parent, cpu = _process_table()
    return [sum(cpu.get(member, 0.0) for member in level) for level in process_levels(pid, parent)]


LEVEL_NAMES = ("serve: SMTP edge", "runner", "prepare worker")


WARM_UP_ID = "warm-up@bench.example.org"
WARM_UP = (
    b"From: bench@example.org\r\nTo: support@example.com\r\nSubject: warm-up\r\n"
    b"Message-ID: <" + WARM_UP_ID.encode() + b">\r\n\r\nnot part of the figures\r\n"
)


def warm_up(kind: str, port: int, data_dir: Path) -> None:
    """One message through the server before the clock starts; end to end, until it is committed,
    so the runner has loaded the spam model and started its worker (start-up is not measured)."""
    asyncio.run(_session(port, [dot_stuffed(WARM_UP)]))
    while kind == "e2e" and not drained(data_dir):
        time.sleep(0.05)
    time.sleep(0.5)  # the runner's last batch: its spool entries are removed after the commit


def file_create_us(root: Path, files: int = 500) -> float:
    """CPU microseconds to create (and write 4 KB to) one file in a fresh folder under `root`."""
    with tempfile.TemporaryDirectory(dir=root) as folder:
        started = time.process_time()
        for n in range(files):
            with open(os.path.join(folder, f"{n:05d}"), "xb") as fh:
                fh.write(b"x" * 4096)
        return (time.process_time() - started) / files * 1e6


def run(
    kind: str,
    client: ProcessPoolExecutor,
    concurrency: int,
    template: Path | None = None,
    profile: Path | None = None,
    root: Path | None = None,
    per_connection: int = 1,
) -> dict:
    """One server, one concurrency level, a fresh data folder under `root` (the system's temp
    folder when None; a copy of `template` for e2e); with `profile`, under py-spy, whose summary
    is returned as "profile"."""
    with tempfile.TemporaryDirectory(dir=root) as folder:
        data_dir = Path(folder)
        if template is not None and kind == "e2e":
            shutil.copytree(template, data_dir, dirs_exist_ok=True)
        proc, port = start(SERVERS[kind], env_for(data_dir), data_dir / "server.log")
        warm_up(kind, port, data_dir)
        cpu_at_start = tree_cpu(proc.pid)
        spy = None
        try:  # from here on the server is stopped whatever happens: a server left running skews every later figure
            spy = PySpy(proc.pid, profile) if profile else None
            started, ended, latencies, cpu = client.submit(_client_blast, port, concurrency, per_connection).result()
            while kind == "e2e" and not drained(data_dir):
                time.sleep(0.01)
            elapsed = (time.monotonic() if kind == "e2e" else ended) - started
            server_cpu = [
                now - (cpu_at_start[i] if i < len(cpu_at_start) else 0.0) for i, now in enumerate(tree_cpu(proc.pid))
            ]
            levels = process_levels(proc.pid, _process_table()[0])
        finally:
            if spy:
                spy.stop()
            proc.terminate()
            proc.wait(60)
        counts = stored(data_dir) if kind == "e2e" else None
    names = {
        pid: LEVEL_NAMES[i] if i < len(LEVEL_NAMES) else f"level {i}" for i, level in enumerate(levels) for pid in level
    }
    latencies.sort()
    return {
        "rate": len(latencies) / elapsed,
        "p50": statistics.median(latencies) * 1000,
        "p99": latencies[max(int(len(latencies) * 0.99) - 1, 0)] * 1000,
        "client_cpu": cpu / elapsed,
        "server_ms": [level / len(latencies) * 1000 for level in server_cpu],
        "counts": counts,
        "profile": summary(profile, names) if profile else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default_corpus = Path(os.environ.get("POSTDESK_CORPUS_DIR", ROOT.parent / "shared" / "corpus"))
    parser.add_argument("--corpus", type=Path, default=default_corpus / "spamassassin-2002")
    parser.add_argument("--limit", type=int, default=3000)
    parser.add_argument("--levels", default="1,8,32")
    parser.add_argument("--repeat", type=int, default=3, help="rounds of the servers, in turn, at each level")
    parser.add_argument("--untrained", action="store_true", help="e2e without a spam model (no scoring)")
    parser.add_argument(
        "--servers", default=",".join(SERVERS), help="which of bare,accept,e2e to run (ratios need bare)"
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help="after the rounds, one more e2e round under py-spy: where the time goes, per process",
    )
    parser.add_argument(
        "--per-connection",
        type=int,
        default=1,
        metavar="N",
        help="messages per SMTP connection (a relaying MTA reuses its connections)",
    )
    parser.add_argument(
        "--data-root",
        type=Path,
        default=ROOT / ".bench",
        help="where the servers' data folders are made (default: .bench/ in the project)",
    )
    args = parser.parse_args()
    args.data_root.mkdir(parents=True, exist_ok=True)
    if not (args.corpus / "ham").is_dir():
        sys.exit(f"corpus not found at {args.corpus} (set POSTDESK_CORPUS_DIR or --corpus)")
    messages = load_messages(args.corpus, args.limit)
    print(
        f"{len(messages)} messages, {sum(map(len, messages)) / 2**20:.1f} MiB, {args.per_connection} per connection, "
        f"{os.cpu_count()} CPUs"
    )
    print(
        f"data folders under {args.data_root}: creating a file costs {file_create_us(args.data_root):.0f} us of CPU "
        f"there ({file_create_us(Path(tempfile.gettempdir())):.0f} us in {tempfile.gettempdir()})"
    )
    print(
        f"{'concurrency':>11} {'server':>7} {'msgs/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'ratio':>6} {'of rounds':>10} "
        f"{'client CPU':>10}  server CPU ms/msg: all = process + children + grandchildren "
        f"(medians of {args.repeat} rounds)"
    )
    spawn = multiprocessing.get_context("spawn")
    with (
        ProcessPoolExecutor(1, spawn, _client_init, (args.corpus, args.limit)) as client,
        tempfile.TemporaryDirectory(dir=args.data_root) as scratch,
    ):
        template = None if args.untrained else trained_template(args.corpus, Path(scratch))
        print(
            "e2e scores every message with a spam model trained on the corpus"
            if template
            else "e2e without a spam model (--untrained)"
        )
        kinds = args.servers.split(",")
        for level in map(int, args.levels.split(",")):
            rounds = [
                {
                    kind: run(kind, client, level, template, root=args.data_root, per_connection=args.per_connection)
                    for kind in kinds
                }
                for _ in range(args.repeat)
            ]
            report(level, kinds, rounds)
            if args.profile:
                profiled = run(
                    "e2e",
                    client,
                    level,
                    template,
                    Path(scratch) / f"py-spy-{level}.txt",
                    args.data_root,
                    args.per_connection,
                )
                print(
                    f"\nWhere the time goes, e2e at concurrency {level} ({profiled['rate']:.0f} msgs/s under py-spy):"
                )
                print(profiled["profile"], flush=True)


def report(level: int, kinds: list[str], rounds: list[dict]) -> None:
    """Medians over the rounds; a ratio is of the medians, with the range of the rounds' own ratios."""
    median = {
        kind: {key: statistics.median(r[kind][key] for r in rounds) for key in ("rate", "p50", "p99", "client_cpu")}
        for kind in kinds
    }
    for kind in kinds:
        f = median[kind]
        server_ms = [statistics.median(levels) for levels in zip(*(r[kind]["server_ms"] for r in rounds), strict=True)]
        ratio = spread = ""
        if "bare" in median:
            ratios = sorted(r[kind]["rate"] / r["bare"]["rate"] for r in rounds)
            ratio, spread = f"{f['rate'] / median['bare']['rate']:.2f}", f"{ratios[0]:.2f}-{ratios[-1]:.2f}"
        print(
            f"{level:>11} {kind:>7} {f['rate']:>8.0f} {f['p50']:>8.1f} {f['p99']:>8.1f} {ratio:>6} {spread:>10} "
            f"{f['client_cpu']:>9.0%}  {sum(server_ms):.2f} = {' + '.join(f'{ms:.2f}' for ms in server_ms)}",
            flush=True,
        )
    if "e2e" in kinds:
        counts = [r["e2e"]["counts"] for r in rounds]
        print(
            f"{'':>11} e2e stored {', '.join(str(n) for n, _ in counts)} messages "
            f"({', '.join(str(bad) for _, bad in counts)} in spool/bad)",
            flush=True,
        )


if __name__ == "__main__":
    main()
