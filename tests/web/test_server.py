"""The web view as an operator runs it: inside `postdesk serve`, alone with `postdesk web`, over HTTPS."""

from __future__ import annotations

import re
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.request

from postdesk.web.server import WebServer
from serve import settings_env
from tls import make_ca
from webhelp import db  # noqa: F401


def _read_until(proc: subprocess.Popen, pattern: str, timeout: float = 60) -> re.Match:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = proc.stdout.readline().decode()
        if match := re.search(pattern, line):
            return match
        if not line and proc.poll() is not None:
            break
    raise AssertionError(f"no line matching {pattern!r} (exit {proc.poll()})")


def _get(url: str, context=None) -> tuple[int, dict, str]:
    with urllib.request.urlopen(url, timeout=30, context=context) as response:
        return response.status, dict(response.headers), response.read().decode()


def test_serve_also_serves_the_web_view_and_says_how_to_make_the_first_owner(serve):
    process = serve()
    url = _read_until(process.proc, r"Web view: (\S+)")[1]
    _read_until(process.proc, r"postdesk users create you@example.com --role owner")
    status, headers, body = _get(url + "signin")
    assert status == 200 and "Sign in" in body and "content-security-policy" in {k.lower() for k in headers}
    assert process.terminate() == 0


def test_postdesk_web_serves_only_the_web_view_until_sigterm(settings, db):
    proc = subprocess.Popen(
        [sys.executable, "-m", "postdesk", "web"],
        env=settings_env(settings),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        url = _read_until(proc, r"Web view: (\S+)")[1]
        assert _get(url + "signin")[0] == 200
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdout.close()
        proc.stderr.close()


def test_postdesk_web_on_a_taken_port_says_so_in_one_line(settings, db):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        env = settings_env(settings) | {"POSTDESK_WEB_PORT": str(taken.getsockname()[1])}
        done = subprocess.run(
            [sys.executable, "-m", "postdesk", "web"], env=env, capture_output=True, text=True, timeout=120
        )
    assert done.returncode == 1 and "cannot listen on 127.0.0.1" in done.stderr
    assert "Traceback" not in done.stderr


def test_with_its_certificate_set_the_web_view_speaks_https_with_secure_cookies(settings, db, tmp_path):
    ca = make_ca(tmp_path / "ca")
    server = WebServer(
        settings.model_copy(update={"web_port": 0, "web_tls_cert": ca.server_cert, "web_tls_key": ca.server_key}), db
    )
    url = server.start()
    try:
        assert url.startswith("https://127.0.0.1:")
        context = ssl.create_default_context(cafile=str(ca.ca_cert))
        status, headers, _ = _get(url + "signin", context)
        headers = {k.lower(): v for k, v in headers.items()}
        assert status == 200 and "Secure" in headers["set-cookie"] and "HttpOnly" in headers["set-cookie"]
        assert headers["strict-transport-security"].startswith("max-age=")
    finally:
        server.stop()
