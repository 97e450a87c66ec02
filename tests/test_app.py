"""The whole service as a newcomer runs it: `confbot run` with a config file, a booking sent
with swaks to its SMTP listener, the reply found in the Maildir outbox, a broken config edit
rejected while the service keeps answering, and Ctrl-C stopping it cleanly."""
from __future__ import annotations

import email
import email.policy
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.slow


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(pred, timeout=15.0, step=0.05):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        value = pred()
        if value:
            return value
        time.sleep(step)
    return None


@pytest.fixture
def service(tmp_path):
    port = free_port()
    text = (ROOT / "config.toml").read_text(encoding="utf-8").replace("port = 2525", f"port = {port}")
    cfg = tmp_path / "config.toml"
    cfg.write_text(text, encoding="utf-8")
    log = open(tmp_path / "confbot.log", "w+")
    proc = subprocess.Popen([sys.executable, "-m", "bot.cli", "run", "--no-voice", "--config", str(cfg)],
                            cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
    up = wait_for(lambda: _connects(port) or proc.poll() is not None)
    assert up and proc.poll() is None, (tmp_path / "confbot.log").read_text()
    yield proc, port, cfg, tmp_path
    if proc.poll() is None:
        proc.kill()
        proc.wait()
    log.close()


def _connects(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
        return True
    except OSError:
        return False


def swaks(port: int, sender: str, subject: str, body: str) -> subprocess.CompletedProcess:
    return subprocess.run(["swaks", "--server", f"127.0.0.1:{port}", "--from", sender,
                           "--to", "confbot@localhost", "--header", f"Subject: {subject}",
                           "--body", body], capture_output=True, text=True, timeout=30)


def outbox(tmp: Path) -> list[email.message.EmailMessage]:
    new = tmp / "var" / "outbox" / "new"
    if not new.is_dir():
        return []
    return [email.message_from_bytes(p.read_bytes(), policy=email.policy.default)
            for p in sorted(new.iterdir())]


def test_booking_by_swaks_gets_a_reply_in_the_outbox_and_ctrl_c_stops_cleanly(service):
    proc, port, cfg, tmp = service
    res = swaks(port, "alice@example.com", "Team call",
                "Hello, please book a conference tomorrow at 10:00 for 1 hour, 8 participants.")
    assert res.returncode == 0, res.stdout + res.stderr
    replies = wait_for(lambda: outbox(tmp), timeout=10)
    assert replies, (tmp / "confbot.log").read_text()
    reply = replies[0]
    assert reply["To"] and "alice@example.com" in reply["To"]
    assert reply["Auto-Submitted"] == "auto-replied"
    assert "CB-" in reply["Subject"]
    body = reply.get_body(("plain",)).get_content()
    assert "+49 900 5555 100" in body
    ics = [p for p in reply.walk() if p.get_content_type() == "text/calendar"]
    assert ics and "METHOD:PUBLISH" in ics[0].get_content()
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=20) == 0


def test_broken_config_edit_is_rejected_and_the_service_keeps_running(service):
    proc, port, cfg, tmp = service
    good = cfg.read_text(encoding="utf-8")
    cfg.write_text(good.replace("total_lines = 200", "total_lines = -3"), encoding="utf-8")
    line = next(i for i, l in enumerate(cfg.read_text().splitlines(), 1) if "total_lines = -3" in l)
    logged = wait_for(lambda: f"{cfg}:{line}: capacity.total_lines must be at least 1"
                      in (tmp / "confbot.log").read_text(), timeout=10)
    assert logged, (tmp / "confbot.log").read_text()
    assert proc.poll() is None
    res = swaks(port, "bob@example.com", "Still there?",
                "Please book tomorrow at 14:00 for 30 minutes, 3 participants.")
    assert res.returncode == 0
    assert wait_for(lambda: outbox(tmp), timeout=10)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=20) == 0


def test_a_valid_config_edit_is_applied_live(service):
    """Removing a sender's domain from allowed_senders takes effect without a restart."""
    proc, port, cfg, tmp = service
    text = cfg.read_text(encoding="utf-8")
    cfg.write_text(text.replace('allowed_senders = ["example.com", "localhost"]',
                                'allowed_senders = ["localhost"]'), encoding="utf-8")
    assert wait_for(lambda: "config reloaded" in (tmp / "confbot.log").read_text(), timeout=10)
    assert swaks(port, "carol@example.com", "Booking",
                 "Please book tomorrow at 11:00 for 1 hour, 4 participants.").returncode == 0
    replies = wait_for(lambda: outbox(tmp), timeout=10)
    assert replies, (tmp / "confbot.log").read_text()
    assert "CB-" not in replies[0]["Subject"]  # a refusal, not a confirmation
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=20) == 0
