"""The whole product, as a customer meets it: `confbot run` (mail and voice in one process,
the shipped config.toml on free ports), a booking mail sent with swaks to its SMTP listener,
the confirmation read from the Maildir outbox, and two real baresip phones dialling the
premium and the toll-free number with the PINs from that mail (RFC 4733). Both land in the
booking's room — the participant and the moderator — and each hears the other (FFT)."""
from __future__ import annotations

import re
import signal
import subprocess
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

import sipfixtures as sf
from test_app import outbox, swaks, wait_for

ROOT = Path(__file__).resolve().parent.parent
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(sf.BARESIP is None, reason="baresip (Debian package) not installed"),
    pytest.mark.timeout(180),
]
pytest.importorskip("pjsua2", reason="run scripts/build-pjsua2.sh --install")

TONES = {"participant": 440.0, "moderator": 770.0}
PREMIUM, TOLLFREE = "499005555100", "498005555100"     # the shipped config's request users


def shipped_config(tmp: Path) -> tuple[Path, int, int]:
    smtp = sf.free_low_ports(2)
    sip = smtp + 1
    rtp = sf.free_port_block(200)
    text = (ROOT / "config.toml").read_text(encoding="utf-8")
    for old, new in (("port = 2525", f"port = {smtp}"), ("port = 5060", f"port = {sip}"),
                     ("rtp_port = 20000", f"rtp_port = {rtp}"),
                     ("rtp_port_range = 10000", "rtp_port_range = 200"),
                     ("naming = true", "naming = false")):   # names: tests/test_ivr_names.py
        assert old in text, old
        text = text.replace(old, new)
    cfg = tmp / "config.toml"
    cfg.write_text(text, encoding="utf-8")
    (tmp / "prompts").symlink_to(ROOT / "prompts")     # the catalog lives beside the config
    return cfg, smtp, sip


def log_lines(tmp: Path) -> str:
    p = tmp / "confbot.log"
    return p.read_text(errors="replace") if p.exists() else ""


def test_a_booking_mail_then_two_phones_with_its_pins_meet_in_its_room(tmp_path):
    cfg, smtp, sip = shipped_config(tmp_path)
    # prompts rendered beforehand, as `make run` does, so the prompts' timing is known
    subprocess.run([sys.executable, "-m", "bot.cli", "prompts", "render", "--config", str(cfg)],
                   cwd=ROOT, check=True, capture_output=True, timeout=120)
    log = open(tmp_path / "confbot.log", "w")
    proc = subprocess.Popen([sys.executable, "-m", "bot.cli", "run", "--config", str(cfg)],
                            cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
    phones = {role: sf.Baresip.create(tmp_path / role, sf.write_tone(tmp_path / f"{role}.wav", f))
              for role, f in TONES.items()}
    try:
        assert wait_for(lambda: "SIP on" in log_lines(tmp_path) or proc.poll() is not None,
                        timeout=30) and proc.poll() is None, log_lines(tmp_path)
        # the mail: starts in 3 minutes (inside the 10-minute early-join margin), in Berlin time
        start = datetime.now(ZoneInfo("Europe/Berlin")) + timedelta(minutes=3)
        res = swaks(smtp, "alice@example.com", "Quarterly numbers",
                    f"Please book a conference on {start:%d.%m.%Y} at {start:%H:%M} for 30 "
                    "minutes, 3 participants.")
        assert res.returncode == 0, res.stdout + res.stderr
        replies = wait_for(lambda: outbox(tmp_path), timeout=15)
        assert replies, log_lines(tmp_path)
        body = replies[0].get_body(("plain",)).get_content()
        ref = re.search(r"CB-[0-9A-Z]{5}", replies[0]["Subject"]).group(0)
        pins = {"participant": re.search(r"Participant PIN:\s*(\d{6,})", body).group(1),
                "moderator": re.search(r"Moderator PIN:\s*(\d{6,})", body).group(1)}
        assert "+49 900 5555 100" in body

        for role, number in (("participant", PREMIUM), ("moderator", TOLLFREE)):
            phone = phones[role]
            phone.start()
            seen = log_lines(tmp_path).count("incoming from")
            phone.dial(f"sip:{number}@127.0.0.1:{sip}")
            assert wait_for(lambda: log_lines(tmp_path).count("incoming from") > seen, 15)
            time.sleep(6.0)   # welcome (~2 s) drops keys; the PIN question takes them
            phone.send_digits(pins[role] + "#")
            joined = f"joined room '{ref}' as {role}"
            assert wait_for(lambda: joined in log_lines(tmp_path), 20), log_lines(tmp_path)[-3000:]

        time.sleep(5.0)       # the joined prompts ("you are the second participant") end
        marks = {r: p.recorded_samples() for r, p in phones.items()}
        time.sleep(2.0)
        ends = {r: p.recorded_samples() for r, p in phones.items()}
        for p in phones.values():
            p.hangup()
        assert wait_for(lambda: log_lines(tmp_path).count(": ended") >= 2, 15)
    finally:
        for p in phones.values():
            p.stop()
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
        log.close()
    assert proc.returncode == 0, log_lines(tmp_path)[-3000:]
    for me, other in (("participant", "moderator"), ("moderator", "participant")):
        rec = phones[me].recording()
        assert rec is not None, phones[me].log()
        x, rate = sf.read_wav(rec)
        window = x[marks[me]:ends[me]]
        assert len(window) > rate, f"{me}: recorded {len(window)} samples in the window"
        assert sf.tone_power(window, rate, TONES[other]) > 0.03, f"{me} does not hear {other}"
        assert sf.tone_power(window, rate, TONES[me]) < 0.006, f"{me} hears itself"
    text = log_lines(tmp_path)
    assert f"joined room '{ref}' as participant (1/3)" in text
    assert f"joined room '{ref}' as moderator (2/3)" in text
