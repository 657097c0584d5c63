"""A real Dovecot on loopback for the IMAP tests: throwaway config, test CA, one user per test.

Register with `pytest_plugins = ["tests.dovecot"]` (or import the fixtures). Fixtures:
  dovecot_server  session-scoped `DovecotServer`: `.start()`, `.stop()`, `.restart()` for fault tests
  dovecot         the same server, started again if a fault test left it stopped
  imap_user       a fresh passwd-file user (empty Maildir) on it, for each test

Runs as root (as CI and the dev container do): Dovecot refuses mail owned by uid 0, so the mail
belongs to `nobody` and the login processes run as `dovenull`. The folder is made with `tempfile`
(not pytest's 0700 tmp_path) because those users must reach it. The login
failure delay and the per-IP auth penalty are off, so a wrong-password test does not slow the rest.
Dovecot missing or not root: the tests skip, unless CI is set, where they fail.
"""

from __future__ import annotations

import itertools
import os
import pwd
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path

import pytest

from models.settings import ImapAccount
from imapclient import IMAPClient
from waiting import wait_for

HOST = "127.0.0.1"
PASSWORD = "s3cret-test-pw"
_user_numbers = itertools.count(1)

CONFIG = """\
base_dir = {root}/run
state_dir = {root}/state
log_path = {root}/dovecot.log
protocols = imap
listen = {host}
ssl = yes
ssl_cert = <{root}/tls/server.crt
ssl_key = <{root}/tls/server.key
{ssl_dh}
disable_plaintext_auth = no
auth_mechanisms = plain login
mail_location = maildir:~/Maildir
first_valid_uid = 1
first_valid_gid = 1
default_login_user = dovenull
default_internal_user = dovecot
mailbox_idle_check_interval = 1 secs
verbose_proctitle = yes
auth_failure_delay = 0
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {root}/users/%u.passwd
}}
userdb {{
  driver = passwd-file
  args = username_format=%u {root}/users/%u.passwd
}}
service imap-login {{
  chroot =
  inet_listener imap {{
    address = {host}
    port = {plain_port}
  }}
  inet_listener imaps {{
    address = {host}
    port = {tls_port}
    ssl = yes
  }}
}}
service anvil {{
  chroot =
  unix_listener anvil-auth-penalty {{
    mode = 0
  }}
}}
"""


def dovecot_binary() -> str | None:
    sbin = "/usr/sbin/dovecot"  # root's PATH has /usr/sbin; a plain user's may not
    return shutil.which("dovecot") or (sbin if os.access(sbin, os.X_OK) else None)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def _openssl(*args: str) -> None:
    subprocess.run(["openssl", *args], check=True, capture_output=True)


def make_ca(folder: Path, name: str) -> tuple[Path, Path]:
    """A self-signed CA (EC P-256: fast to make); returns (cert, key)."""
    cert, key = folder / f"{name}.crt", folder / f"{name}.key"
    _openssl(
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
        "-keyout",
        str(key),
        "-out",
        str(cert),
        "-days",
        "2",
        "-subj",
        f"/CN=Postdesk {name}",
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign,cRLSign",
    )
    return cert, key


def make_server_cert(folder: Path, ca_cert: Path, ca_key: Path) -> None:
    """server.crt/server.key for localhost and 127.0.0.1, signed by the CA."""
    ext = folder / "server.ext"
    ext.write_text(
        "subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=critical,CA:FALSE\n"
        "keyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n"
        "subjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid,issuer\n"
    )
    _openssl(
        "req",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
        "-keyout",
        str(folder / "server.key"),
        "-out",
        str(folder / "server.csr"),
        "-subj",
        "/CN=localhost",
    )
    _openssl(
        "x509",
        "-req",
        "-in",
        str(folder / "server.csr"),
        "-CA",
        str(ca_cert),
        "-CAkey",
        str(ca_key),
        "-CAcreateserial",
        "-days",
        "2",
        "-extfile",
        str(ext),
        "-out",
        str(folder / "server.crt"),
    )


@dataclass
class DovecotUser:
    name: str
    password: str
    home: Path


class DovecotServer:
    """One Dovecot process with a plain/STARTTLS port and an implicit-TLS port on loopback."""

    def __init__(self, binary: str, root: Path):
        self.binary, self.root = binary, root
        self.host = HOST
        self.plain_port, self.tls_port = free_port(), free_port()
        nobody = pwd.getpwnam("nobody")
        self.mail_uid, self.mail_gid = nobody.pw_uid, nobody.pw_gid
        self.proc: subprocess.Popen | None = None
        self.config = root / "dovecot.conf"
        self.ca_file = self._make_tls()
        self._write_config()

    def _make_tls(self) -> Path:
        tls = self.root / "tls"
        tls.mkdir()
        ca_cert, ca_key = make_ca(tls, "ca")
        make_server_cert(tls, ca_cert, ca_key)
        self.untrusted_ca_file, _ = make_ca(tls, "other-ca")
        return ca_cert

    def _write_config(self) -> None:
        dh = Path("/usr/share/dovecot/dh.pem")
        self.config.write_text(
            CONFIG.format(
                root=self.root,
                host=self.host,
                plain_port=self.plain_port,
                tls_port=self.tls_port,
                ssl_dh=f"ssl_dh = <{dh}" if dh.exists() else "",
            )
        )
        (self.root / "users").mkdir()
        (self.root / "home").mkdir()

    def start(self) -> None:
        if self.running:
            return
        self.proc = subprocess.Popen(
            [self.binary, "-F", "-c", str(self.config)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
        self._wait_listening()

    def _wait_listening(self, timeout: float = 30.0) -> None:
        def listening() -> bool:
            if self.proc.poll() is not None:
                raise RuntimeError(f"dovecot exited: {self.proc.stderr.read().decode()}\n{self.log()}")
            return self._accepts(self.tls_port) and self._accepts(self.plain_port)

        wait_for(listening, timeout, what="dovecot to listen", every=0.05)

    def stop(self) -> None:
        """Stop the master, then kill its process group: the imap processes would otherwise
        linger ~10 s before saying BYE; killed, every client connection drops at once."""
        if not self.running:
            return
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(timeout=10)
        self.proc.stderr.close()
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self._wait_closed()

    def _wait_closed(self, timeout: float = 30.0) -> None:
        wait_for(lambda: not self._accepts(self.plain_port), timeout, what="dovecot's port to close", every=0.05)

    def _accepts(self, port: int) -> bool:
        try:
            socket.create_connection((self.host, port), timeout=0.2).close()
            return True
        except OSError:
            return False

    def restart(self) -> None:
        self.stop()
        self.start()

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def log(self) -> str:
        path = self.root / "dovecot.log"
        return path.read_text(errors="replace")[-4000:] if path.exists() else ""

    def add_user(self, password: str = PASSWORD) -> DovecotUser:
        """A new user with an empty Maildir, in a passwd-file of its own (Dovecot re-reads a changed
        file at most once a second, so one shared file would miss users added in the same second)."""
        name = f"user{next(_user_numbers)}"
        home = self.root / "home" / name
        home.mkdir()
        os.chown(home, self.mail_uid, self.mail_gid)
        line = f"{name}:{{PLAIN}}{password}:{self.mail_uid}:{self.mail_gid}::{home}::\n"
        (self.root / "users" / f"{name}.passwd").write_text(line)
        return DovecotUser(name, password, home)

    def idling(self, user: DovecotUser) -> bool:
        """A session of `user` waits in IDLE, as the process titles of this server's processes say
        (verbose_proctitle; other Dovecots on the machine have users of the same names): from then
        on the server announces mail reaching its folder."""
        wanted = f"dovecot/imap [{user.name} {self.host} IDLE]".encode()
        for pid in filter(str.isdigit, os.listdir("/proc")):
            try:
                with open(f"/proc/{pid}/stat") as stat, open(f"/proc/{pid}/cmdline", "rb") as cmdline:
                    group, title = int(stat.read().rpartition(")")[2].split()[2]), cmdline.read()
            except (OSError, ValueError):  # it ended while we looked
                continue
            if group == self.proc.pid and title.startswith(wanted):
                return True
        return False

    def client(self, user: DovecotUser) -> IMAPClient:
        """A logged-in client over implicit TLS, for the test side (appending, checking)."""
        context = ssl.create_default_context(cafile=str(self.ca_file))
        client = IMAPClient(self.host, port=self.tls_port, ssl=True, ssl_context=context, timeout=10)
        client.login(user.name, user.password)
        return client


@pytest.fixture(scope="session")
def dovecot_server():
    binary = dovecot_binary()
    message = None
    if binary is None:
        message = "dovecot is not installed (apt-get install dovecot-imapd)"
    elif os.geteuid() != 0:
        message = "the Dovecot fixture needs root (it runs mail as nobody, logins as dovenull)"
    if message:
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    root = Path(tempfile.mkdtemp(prefix="postdesk-dovecot-"))
    root.chmod(0o755)
    server = DovecotServer(binary, root)
    server.start()
    yield server
    server.stop()
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def dovecot(dovecot_server: DovecotServer) -> DovecotServer:
    dovecot_server.start()
    return dovecot_server


@pytest.fixture
def imap_user(dovecot: DovecotServer) -> DovecotUser:
    return dovecot.add_user()


@pytest.fixture
def make_account(dovecot, imap_user):
    def make(**overrides) -> ImapAccount:
        fields = dict(
            name="support",
            host="127.0.0.1",
            port=dovecot.tls_port,
            tls="implicit",
            username=imap_user.name,
            password=imap_user.password,
            ca_file=dovecot.ca_file,
            mailbox="support@example.com",
            initial_sync="all",
            poll_interval=30,
            timeout=5,
            reconnect_delay=0.1,
            reconnect_max=0.5,
            login_retry=1.0,
        )
        return ImapAccount(**{**fields, **overrides})

    return make


@pytest.fixture
def mua(dovecot, imap_user):
    """Another client of the same mailbox: the customer's mail arriving, a colleague's webmail."""
    client = dovecot.client(imap_user)
    yield client
    try:
        client.logout()
    except Exception:  # the server restarted under it: close the socket without a word
        with suppress(OSError):
            client.shutdown()
