"""Retraining from the web view: does the server keep answering, and do writers keep writing?

On a fresh SQLite store whose ledger holds the shared corpus (SpamAssassin 2002, 2,500 ham + 500
spam; synthetic mail when it is absent), the web view runs under uvicorn in this process, as in
`postdesk web`, and a retrain runs in a thread beside it, as the spam page starts it. Measured in
the same run:
- page latency: GET /signin (a template render), p50/p95 while idle, then while the retrain runs;
- writers: a small write transaction (an audit row) every 50 ms; the longest wait for one while
  `retrain_in_steps` runs (the web view's), against the same while `retrain` (one transaction,
  the command line's) runs;
- how long each retrain takes.
Prints the figures and the ratios (during / idle, one transaction / in steps).

    .venv/bin/python bench/spam_retrain_web.py [--limit N]
"""

from __future__ import annotations

import argparse
import http.client
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the project's packages, not bench/'s
from bench import corpus  # noqa: E402
from classifier import ledger, versions  # noqa: E402
from models.mail.parse import parse, raw_sha256  # noqa: E402
from models.base import utcnow  # noqa: E402
from postdesk.app import App  # noqa: E402
from models.settings import Settings  # noqa: E402
from postdesk.web.server import WebServer  # noqa: E402
from retention.audit import record  # noqa: E402


def mail() -> list[tuple[bytes, str]]:
    if corpus.available():
        return [(corpus.raw_bytes(path), label) for path, label in corpus.files()]
    words = {"ham": "invoice printer order refund account", "spam": "cheap pills casino winner prize"}
    return [
        (f"From: x{i}@example.org\r\nSubject: {label} {i}\r\n\r\n{words[label]} {i}\r\n".encode(), label)
        for i in range(1500)
        for label in ("ham", "spam")
    ]


def fill_ledger(app: App, messages: list[tuple[bytes, str]]) -> None:
    spam_filter = app.live_model().filter
    for start in range(0, len(messages), 200):
        with app.db.write() as session:
            for raw, label in messages[start : start + 200]:
                features = spam_filter.features(parse(raw, received_at=utcnow()))
                ledger.learn(session, f"raw:{raw_sha256(raw)}", label, features, "bootstrap")


def page_times(url: str, stop: threading.Event | None, count: int = 0) -> list[float]:
    """GET /signin until `stop` is set (or `count` times); seconds each."""
    host, port = url.split("//")[1].rstrip("/").split(":")
    times = []
    while (stop is not None and not stop.is_set()) or len(times) < count:
        connection = http.client.HTTPConnection(host, int(port), timeout=60)
        started = time.perf_counter()
        connection.request("GET", "/signin")
        connection.getresponse().read()
        times.append(time.perf_counter() - started)
        connection.close()
        time.sleep(0.02)
    return times


def write_waits(app: App, stop: threading.Event) -> list[float]:
    waits = []
    while not stop.is_set():
        started = time.perf_counter()
        with app.db.write() as session:
            record(session, "bench", "bench-write", "", {})
        waits.append(time.perf_counter() - started)
        time.sleep(0.05)
    return waits


def during(work, *watchers) -> tuple[float, list]:
    """Run `work()` while each watcher(stop) runs in a thread; seconds, and each watcher's result."""
    stop, results = threading.Event(), [None] * len(watchers)
    threads = [
        threading.Thread(target=lambda i=i, w=w: results.__setitem__(i, w(stop))) for i, w in enumerate(watchers)
    ]
    for thread in threads:
        thread.start()
    started = time.perf_counter()
    work()
    took = time.perf_counter() - started
    stop.set()
    for thread in threads:
        thread.join()
    return took, results


def p(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100)[int(q) - 1] if len(values) > 1 else values[0]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--limit", type=int, default=0, help="Only the first N messages (0: all).")
    args = parser.parse_args()
    messages = mail()
    messages = messages[: args.limit] if args.limit else messages
    with tempfile.TemporaryDirectory() as folder:
        settings = Settings(data_dir=Path(folder), web_port=0, secret_key="bench")
        app = App.open(settings)
        started = time.perf_counter()
        fill_ledger(app, messages)
        print(f"ledger: {len(messages)} messages learned in {time.perf_counter() - started:.1f} s")
        server = WebServer(settings, app.db)
        url = server.start()
        try:
            page_times(url, None, 20)  # warm up
            idle = page_times(url, None, 100)
            spam_filter = app.live_model().filter
            in_steps, (busy, steps_waits) = during(
                lambda: versions.retrain_in_steps(app.db, settings.spam_dir, spam_filter, "bench"),
                lambda stop: page_times(url, stop),
                lambda stop: write_waits(app, stop),
            )

            def one_transaction():
                with app.db.write() as session:
                    versions.retrain(session, settings.spam_dir, spam_filter, "bench")

            whole, (one_waits,) = during(one_transaction, lambda stop: write_waits(app, stop))
        finally:
            server.stop()
            app.db.dispose()
    print(f"GET /signin idle:              p50 {p(idle, 50) * 1000:7.1f} ms  p95 {p(idle, 95) * 1000:7.1f} ms")
    print(
        f"GET /signin during the retrain: p50 {p(busy, 50) * 1000:7.1f} ms  p95 {p(busy, 95) * 1000:7.1f} ms"
        f"  ({len(busy)} requests; ratio p50 {p(busy, 50) / p(idle, 50):.1f}x, p95 {p(busy, 95) / p(idle, 95):.1f}x)"
    )
    print(f"retrain in steps (web view):   {in_steps:6.1f} s; longest wait of a writer {max(steps_waits):6.2f} s")
    print(
        f"retrain in one transaction:    {whole:6.1f} s; longest wait of a writer {max(one_waits):6.2f} s"
        f"  (ratio of the waits {max(one_waits) / max(steps_waits):.0f}x)"
    )


if __name__ == "__main__":
    main()
