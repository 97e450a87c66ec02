"""A real Dovecot for tests: a session-scoped pytest fixture started from a temp dir.

Owns: writing a private dovecot.conf (passwd-file auth, Maildir, IMAPS with a self-signed
certificate made by `openssl req`, LMTP on loopback), starting `dovecot -F -c DIR/dovecot.conf`,
waiting for the IMAPS banner, delivering mail over LMTP, and stopping it with SIGTERM.
Must not touch: the Debian package's own system instance (/etc/dovecot, /run/dovecot) — every
path lives under the temp dir, and every port is a free loopback port chosen at runtime.

Use it with `pytest_plugins = ("tests.dovecot",)` (root conftest or the test module) and the
`dovecot` fixture, which yields a `Dovecot` (host, imaps_port, lmtp_port, ssl_context(),
add_user() -> Mailbox, deliver(box, raw) over LMTP, flags(box) -> Message-ID: Maildir flags).
Facts from a trial: as root the mail home must be mode 0755 (and its parents traversable);
for a non-root run `chroot =` is needed on anvil and imap-login; the banner appears within
~0.2 s; SIGTERM stops it in ~1 s.
"""
from __future__ import annotations

import os
import re
import pwd
import shutil
import signal
import smtplib
import socket
import ssl
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

DOVECOT = shutil.which("dovecot") or "/usr/sbin/dovecot"
HOST = "127.0.0.1"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


_CONF = """\
base_dir = {d}/run
state_dir = {d}/state
log_path = {d}/dovecot.log
info_log_path = {d}/dovecot.log
protocols = imap lmtp
listen = {host}
ssl = required
ssl_cert = <{d}/cert.pem
ssl_key = <{d}/key.pem
disable_plaintext_auth = no
auth_mechanisms = plain login
auth_failure_delay = 0
mail_location = maildir:~/Maildir
{run_as}
first_valid_uid = {uid}
first_valid_gid = {gid}
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%n {d}/users/%n
}}
userdb {{
  driver = passwd-file
  args = username_format=%n {d}/users/%n
}}
protocol lmtp {{
  postmaster_address = postmaster@localhost
}}
lmtp_save_to_detail_mailbox = no
service imap-login {{
  inet_listener imap {{
    port = 0
  }}
  inet_listener imaps {{
    address = {host}
    port = {imaps_port}
    ssl = yes
  }}
  {chroot}
}}
service anvil {{
  {chroot}
}}
service lmtp {{
  unix_listener lmtp {{
    mode = 0666
  }}
  inet_listener lmtp {{
    address = {host}
    port = {lmtp_port}
  }}
}}
service pop3-login {{
  inet_listener pop3 {{
    port = 0
  }}
  inet_listener pop3s {{
    port = 0
  }}
}}
"""


@dataclass(frozen=True, slots=True)
class Mailbox:
    """One passwd-file user: log in with user/password, mail goes to address."""
    user: str
    password: str
    home: Path

    @property
    def address(self) -> str:
        return f"{self.user}@localhost"

    @property
    def maildir(self) -> Path:
        return self.home / "Maildir"


@dataclass
class Dovecot:
    """One running Dovecot instance in its own directory. Tests isolate themselves with
    `add_user()`: a fresh mailbox per test, so leftovers of one test never reach another."""
    directory: Path
    host: str = HOST
    imaps_port: int = 0
    lmtp_port: int = 0
    process: subprocess.Popen | None = None
    users: dict[str, Mailbox] = field(default_factory=dict)
    _ids: tuple[int, int] = (0, 0)

    @property
    def cafile(self) -> str:
        """The self-signed certificate (CN=localhost, SAN IP 127.0.0.1) to trust."""
        return str(self.directory / "cert.pem")

    def ssl_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=self.cafile)

    def configure(self) -> None:
        d = self.directory
        for sub in ("run", "state", "home", "users"):
            (d / sub).mkdir(parents=True, exist_ok=True)
        os.chmod(d, 0o755)
        os.chmod(d / "home", 0o755)
        self.imaps_port, self.lmtp_port = free_port(), free_port()
        subprocess.run(
            ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
             "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
             "-keyout", str(d / "key.pem"), "-out", str(d / "cert.pem")],
            check=True, capture_output=True)
        if os.geteuid() == 0:
            # Dovecot refuses to run mail processes as root: mailboxes belong to the package's
            # unprivileged user; the login processes drop to dovenull.
            owner = pwd.getpwnam("dovecot")
            self._ids = (owner.pw_uid, owner.pw_gid)
            run_as = "default_internal_user = dovecot\ndefault_login_user = dovenull"
            chroot = ""
        else:
            self._ids = (os.getuid(), os.getgid())
            me = pwd.getpwuid(os.getuid()).pw_name
            run_as = f"default_internal_user = {me}\ndefault_login_user = {me}"
            chroot = "chroot ="
        uid, gid = self._ids
        (d / "dovecot.conf").write_text(_CONF.format(
            d=d, host=self.host, imaps_port=self.imaps_port, lmtp_port=self.lmtp_port,
            run_as=run_as, chroot=chroot, uid=min(uid, 100), gid=min(gid, 100)))

    def add_user(self, user: str, password: str = "secret-test-password") -> Mailbox:
        """A new mailbox. One passwd file per user (the path has %n): a shared file that grew
        within the same second would still be served stale from Dovecot's cache."""
        home = self.directory / "home" / user
        home.mkdir(mode=0o755)
        os.chmod(home, 0o755)
        uid, gid = self._ids
        if os.geteuid() == 0:
            os.chown(home, uid, gid)
        box = Mailbox(user, password, home)
        self.users[user] = box
        with open(self.directory / "users" / user, "w") as f:
            f.write(f"{user}:{{PLAIN}}{password}:{uid}:{gid}::{home}\n")
        return box

    def start(self, timeout: float = 10.0) -> None:
        self.configure()
        self.process = subprocess.Popen(
            [DOVECOT, "-F", "-c", str(self.directory / "dovecot.conf")],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"dovecot exited: {self.process.stdout.read().decode()}"
                                   f"\n{self.log()}")
            if self._banner():
                return
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"dovecot gave no IMAPS banner within {timeout}s\n{self.log()}")

    def _banner(self) -> bool:
        try:
            with socket.create_connection((self.host, self.imaps_port), timeout=1) as raw:
                with self.ssl_context().wrap_socket(raw, server_hostname="localhost") as s:
                    return s.recv(256).startswith(b"* OK")
        except OSError:
            return False

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def log(self) -> str:
        path = self.directory / "dovecot.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def deliver(self, box: Mailbox, raw: bytes, mail_from: str = "alice@example.com") -> None:
        """Deliver one message into the box's INBOX over LMTP, as an MTA would."""
        with smtplib.LMTP(self.host, self.lmtp_port, timeout=5) as lmtp:
            lmtp.sendmail(mail_from, [box.user], raw)

    @staticmethod
    def flags(box: Mailbox) -> dict[str, str]:
        """Message-ID -> Maildir flags ("S" is \\Seen) for every message in the box's INBOX."""
        out = {}
        for sub in ("new", "cur"):
            for p in (box.maildir / sub).glob("*"):
                head = p.read_bytes().split(b"\r\n\r\n", 1)[0].split(b"\n\n", 1)[0]
                m = re.search(rb"(?im)^message-id:\s*(<[^>]+>)", head)
                key = m.group(1).decode() if m else p.name
                out[key] = p.name.split(":2,", 1)[1] if ":2," in p.name else ""
        return out


@pytest.fixture(scope="session")
def dovecot():
    directory = Path(tempfile.mkdtemp(prefix="confbot-dovecot-"))
    server = Dovecot(directory)
    try:
        server.start()
        yield server
    finally:
        server.stop()
        shutil.rmtree(directory, ignore_errors=True)
