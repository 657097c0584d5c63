"""Web view benchmark: the queue page, the ticket page and a search, over HTTP, on a small and a large store.

For each backend (SQLite, and PostgreSQL when --pg-url is given) and each store size, a fresh
store is seeded in bulk through the ingest pipeline's stages (`process_batch`, the runner's write
path, spam filter off), 7 in 10 tickets are then closed and 1 in 10 set pending (so the Open
queue is a small part of a large table, as in a real helpdesk), and `postdesk web` is started as
its own process. A signed-in agent of one department (4 in 5 tickets are theirs) then asks, in
turn, for the Open queue's first page, a random ticket of theirs, and a search for a rare word
that 5 messages hold, whatever the size. Prints p50/p95 per page and size, and the ratios of the
large store to the small one; writes them to bench/results/web.md with --write.

    python bench/web.py [--sizes 1000,100000] [--requests 300] [--write]
                        [--pg-url postgresql+psycopg://postgres@127.0.0.1:5432/postgres]
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, UTC
from pathlib import Path
from urllib.parse import urlencode, urlsplit

from sqlalchemy import create_engine, make_url, text
from sqlalchemy.orm import Session

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # the project's `ingest` package, not bench/ingest.py

from ingest.pipeline import process_batch  # noqa: E402
from ingest.prepare import prepare  # noqa: E402
from ingest.spool import Entry  # noqa: E402
from models import Agent, Base  # noqa: E402
from models.db import Database  # noqa: E402
from models.mail.envelope import Envelope  # noqa: E402
from models.settings import MailboxConfig, Settings  # noqa: E402
from postdesk.accounts import users  # noqa: E402
from postdesk.app import App  # noqa: E402
from tickets import search  # noqa: E402

RARE = "quixotically"  # in RARE_COUNT messages at every size
RARE_COUNT = 5
PASSWORD = "benchmark password 1"
MAILBOXES = [
    MailboxConfig(address="support@example.com", department="Support"),
    MailboxConfig(address="billing@example.com", department="Billing"),
]
BATCH = 500
_rng = random.Random(7)
WORDS = ["".join(_rng.choice("abcdefghiklmnoprstuvwy") for _ in range(_rng.randint(3, 9))) for _ in range(4000)]


def message(i: int, n: int) -> tuple[bytes, str]:
    rng = random.Random(i)
    to = "billing@example.com" if i % 5 == 4 else "support@example.com"
    body = " ".join(rng.choices(WORDS, k=80))
    if i % (n // RARE_COUNT) == 0:
        body += f" {RARE}"
    subject = " ".join(rng.choices(WORDS, k=4)).capitalize()
    raw = (
        f"From: Customer {i} <customer{i}@example.org>\r\nTo: {to}\r\nSubject: {subject} (order {i})\r\n"
        f"Message-ID: <bench-{i}@example.org>\r\nDate: Mon, 7 Dec 2026 10:00:00 +0000\r\n\r\n{body}\r\n"
    )
    return raw.encode(), to


def seed(settings: Settings, n: int) -> float:
    """Store n messages (each a new ticket) through the pipeline's stages; returns seconds taken."""
    app = App.open(settings)
    services = app.services()
    services.spam = None
    options = services.prepare_options()
    started, prepared = time.perf_counter(), []
    for i in range(n):
        raw, to = message(i, n)
        envelope = Envelope(
            mail_from=f"customer{i}@example.org",
            rcpt_tos=[to],
            source="import",
            received_at=datetime(2026, 1, 1, tzinfo=UTC).timestamp() + i * 300,
        )
        prepared.append(prepare(Entry(f"bench{i}", raw, envelope), options))
        if len(prepared) == BATCH or i == n - 1:
            with app.db.write() as session, app.blobs.batch():
                process_batch(session, prepared, services)
            prepared = []
    with app.db.write() as session:
        session.execute(text("UPDATE tickets SET status = 'closed' WHERE id % 10 < 7"))
        session.execute(text("UPDATE tickets SET status = 'pending' WHERE id % 10 = 7"))
        created = users.create(session, "bench@example.com", role="agent", departments=["Support"], password=PASSWORD)
        session.get(Agent, created.agent_id).must_change_password = False
    if app.db.is_sqlite:
        with app.db.engine.connect() as conn:
            conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
            conn.exec_driver_sql("ANALYZE")
    else:
        with app.db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql("VACUUM ANALYZE")
    app.db.dispose()
    return time.perf_counter() - started


class Client:
    """A signed-in agent's browser, on one keep-alive connection."""

    def __init__(self, url: str):
        parts = urlsplit(url)
        self.conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=60)
        self.cookies: dict[str, str] = {}

    def request(self, method: str, path: str, body: dict | None = None) -> tuple[int, str]:
        headers = {"Cookie": "; ".join(f"{k}={v}" for k, v in self.cookies.items())}
        data = None
        if body is not None:
            data = urlencode(body)
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        self.conn.request(method, path, body=data, headers=headers)
        response = self.conn.getresponse()
        page = response.read().decode()
        for header in response.headers.get_all("Set-Cookie") or []:
            name, _, rest = header.partition("=")
            self.cookies[name] = rest.split(";")[0]
        return response.status, page

    def sign_in(self) -> None:
        _, page = self.request("GET", "/signin")
        csrf = re.search(r'name="csrf" value="([^"]+)"', page)[1]
        status, _ = self.request("POST", "/signin", {"csrf": csrf, "email": "bench@example.com", "password": PASSWORD})
        assert status == 303, status


def start_web(settings: Settings) -> tuple[subprocess.Popen, str]:
    env = dict(
        os.environ,
        POSTDESK_DATA_DIR=str(settings.data_dir),
        POSTDESK_DATABASE_URL=settings.database_url,
        POSTDESK_WEB_PORT="0",
        POSTDESK_MAILBOXES=json.dumps([m.model_dump() for m in MAILBOXES]),
        POSTDESK_SECRET_KEY="bench",
        POSTDESK_LOG_LEVEL="WARNING",
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "postdesk", "web"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        line = proc.stdout.readline().decode()
        if match := re.search(r"Web view: (\S+)", line):
            return proc, match[1]
        if not line and proc.poll() is not None:
            break
    proc.kill()
    raise RuntimeError("postdesk web did not start")


def measure(url: str, settings: Settings, requests: int) -> dict[str, list[float]]:
    engine = create_engine(settings.sqlalchemy_url)
    with engine.connect() as conn:
        theirs = [
            r[0]
            for r in conn.execute(
                text("SELECT t.id FROM tickets t JOIN departments d ON d.id = t.department_id WHERE d.name = 'Support'")
            )
        ]
    engine.dispose()
    client, rng = Client(url), random.Random(1)
    client.sign_in()
    paths = {
        "queue": lambda: "/queues/open",
        "ticket": lambda: f"/tickets/{rng.choice(theirs)}",
        "search": lambda: f"/search?q={RARE}",
    }
    times: dict[str, list[float]] = {k: [] for k in paths}
    for round_ in range(requests + 20):  # the first 20 warm the caches
        for name, path in paths.items():
            started = time.perf_counter()
            status, page = client.request("GET", path())
            took = (time.perf_counter() - started) * 1000
            assert status == 200, (name, status)
            if name == "search":
                assert page.count('<td class="subject">') == RARE_COUNT, "the search should find each rare message"
            if round_ >= 20:
                times[name].append(took)
    return times


def scrub_seconds(settings: Settings) -> float | None:
    """What an erasure's last step costs on SQLite: rewriting the whole full-text index (tickets.search.scrub)."""
    db = Database(settings.sqlalchemy_url)
    try:
        if not db.is_sqlite:
            return None
        started = time.perf_counter()
        with db.write() as session:
            search.scrub(session)
        return round(time.perf_counter() - started, 2)
    finally:
        db.dispose()


def percentile(values: list[float], p: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[int(p) - 1]


def copy_store(sqlite: Settings, target: Settings) -> float:
    """The rows the pipeline wrote on SQLite, copied table by table into the (migrated) PostgreSQL
    database, and its search index written from them: the pipeline itself takes a round trip per
    statement, about ten a message, which made 100,000 messages an hour's seeding here."""
    started = time.perf_counter()
    App.open(target).db.dispose()  # migrated
    source, sink = create_engine(sqlite.sqlalchemy_url), create_engine(target.sqlalchemy_url)
    tables = [t for t in Base.metadata.sorted_tables if t.name not in {"role_policies"}]
    with source.connect() as read, sink.begin() as write:
        for table in tables:
            result = read.execution_options(stream_results=True).execute(table.select())
            while chunk := result.fetchmany(2000):
                write.execute(table.insert(), [dict(row._mapping) for row in chunk])
            if "id" in table.c:
                write.execute(
                    text(
                        f"SELECT setval(pg_get_serial_sequence('{table.name}', 'id'), "
                        f"coalesce((SELECT max(id) FROM {table.name}), 1))"
                    )
                )
        with Session(bind=write) as session:
            rows = read.execute(
                text(
                    "SELECT m.id, m.subject, m.text_body, m.html_body, m.from_name, m.from_address, "
                    "(SELECT group_concat(r.name || ' ' || r.address, ' ') FROM recipients r "
                    " WHERE r.message_id = m.id AND r.kind IN ('to', 'cc')) FROM messages m"
                )
            )
            while chunk := rows.fetchmany(2000):
                search.index(
                    session,
                    [
                        search.document(
                            m,
                            subject=subj,
                            plain=body,
                            html=html,
                            people=[name, address, others or ""],
                            attachment_names=[],
                        )
                        for m, subj, body, html, name, address, others in chunk
                    ],
                )
            session.flush()
    with sink.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.exec_driver_sql("VACUUM ANALYZE")
    source.dispose()
    sink.dispose()
    return time.perf_counter() - started


def pg_database(args, n: int):
    name = f"pdbench_web_{n}"
    admin = create_engine(args.pg_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        conn.execute(text(f"CREATE DATABASE {name}"))
    admin.dispose()
    return name, make_url(args.pg_url).set(database=name).render_as_string(hide_password=False)


def drop_pg_database(args, name: str) -> None:
    admin = create_engine(args.pg_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
    admin.dispose()


def pages(backend: str, n: int, settings: Settings, args, seconds: float) -> dict:
    proc, url = start_web(settings)
    try:
        times = measure(url, settings, args.requests)
        load = round(os.getloadavg()[0], 1)
    finally:
        proc.terminate()
        proc.wait(60)
    result = {
        "backend": backend,
        "tickets": n,
        "seed_s": round(seconds, 1),
        "scrub_s": scrub_seconds(settings),
        "load": load,
    }
    for page, values in times.items():
        result[page] = (round(percentile(values, 50), 1), round(percentile(values, 95), 1))
    print(json.dumps(result), flush=True)
    return result


def run(n: int, args) -> list[dict]:
    """SQLite seeded through the pipeline and measured; then the same rows in PostgreSQL, measured."""
    folder = Path(tempfile.mkdtemp(prefix=f"web-{n}-", dir=args.data_root))
    settings = Settings(data_dir=folder, mailboxes=MAILBOXES, secret_key="bench", min_free_disk=0)
    try:
        seconds = seed(settings, n)
        results = [pages("sqlite", n, settings, args, seconds)]
        if args.pg_url:
            name, url = pg_database(args, n)
            try:
                pg = settings.model_copy(update={"database_url": url})
                results.append(pages("postgresql", n, pg, args, seconds + copy_store(settings, pg)))
            finally:
                drop_pg_database(args, name)
        return results
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def table(results: list[dict], sizes: list[int]) -> str:
    lines = [
        "| backend | tickets | queue p50 / p95 ms | ticket p50 / p95 ms | search p50 / p95 ms | load average |",
        "|---|---|---|---|---|---|",
    ]
    for r in results:
        lines.append(
            f"| {r['backend']} | {r['tickets']:,} | "
            + " | ".join(f"{r[p][0]} / {r[p][1]}" for p in ("queue", "ticket", "search"))
            + f" | {r['load']} |"
        )
    small, large = min(sizes), max(sizes)
    for backend in dict.fromkeys(r["backend"] for r in results):
        a = next(r for r in results if r["backend"] == backend and r["tickets"] == small)
        b = next(r for r in results if r["backend"] == backend and r["tickets"] == large)
        lines.append(
            f"| {backend} | ratio {large:,} / {small:,} | "
            + " | ".join(f"{b[p][0] / a[p][0]:.2f} / {b[p][1] / a[p][1]:.2f}" for p in ("queue", "ticket", "search"))
            + " | |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,100000")
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--pg-url", default="")
    parser.add_argument(
        "--data-root", default=None, help="Where the stores' data folders go (default: the temp folder)."
    )
    parser.add_argument("--write", action="store_true", help="Write bench/results/web.md.")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    results = sorted((r for n in sizes for r in run(n, args)), key=lambda r: (r["backend"] != "sqlite", r["tickets"]))
    report = table(results, sizes)
    print(report)
    if args.write:
        seeded = ", ".join(f"{r['backend']} {r['tickets']:,}: {r['seed_s']} s" for r in results)
        scrubbed = ", ".join(f"{r['tickets']:,} tickets: {r['scrub_s']} s" for r in results if r["scrub_s"] is not None)
        (ROOT / "bench" / "results" / "web.md").write_text(
            f"# Web view: pages over HTTP ({datetime.now(UTC):%Y-%m-%d})\n\n"
            f"`python bench/web.py --sizes {args.sizes} --requests {args.requests}"
            f"{' --pg-url ...' if args.pg_url else ''} --write`, {args.requests} requests of each page after 20 "
            f"to warm up; `postdesk web` in its own process, the client on one keep-alive connection.\n\n"
            f"{report}\n\nSeeding took {seeded} (SQLite through the pipeline's stages; PostgreSQL then got the "
            f"same rows copied in bulk, its figure includes the SQLite seeding). Rewriting SQLite's full-text "
            f"index, the last step of an erasure (`tickets.search.scrub`, FTS5 'optimize'), took {scrubbed}.\n"
        )


if __name__ == "__main__":
    main()
