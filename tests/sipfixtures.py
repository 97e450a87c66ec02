"""Helpers for end-to-end SIP tests with independent clients (Debian's baresip and sipp).

Owns: free-port picking, tone WAV generation, a baresip caller (its own config dir, `aufile` as
the microphone, `sndfile` recording what it hears, `aubridge` as a speaker that costs no CPU,
`ctrl_tcp` for dial/hangup/quit), sipp
scenarios (RFC 4733 digits from Debian's pcap, SIP INFO digits), and the signal analysis the
tests assert on (tone power by FFT). Must not import pjsua2 or start the server: tests build
the server through `bot.service.voice` like the composition root does.
"""
from __future__ import annotations

import glob
import json
import math
import random
import shutil
import signal
import socket
import subprocess
import time
import wave
from dataclasses import dataclass
from pathlib import Path

import numpy as np

BARESIP = shutil.which("baresip")
SIPP = shutil.which("sipp")
SIPP_PCAPS = Path("/usr/share/sip-tester")
RATE = 8000


def free_port(kind: int = socket.SOCK_DGRAM, also_tcp: bool = True) -> int:
    """A port free for UDP (and TCP) on 127.0.0.1 right now."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, kind) as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if not also_tcp:
            return port
        try:
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as t:
                t.bind(("127.0.0.1", port))
            return port
        except OSError:
            continue
    raise RuntimeError("no free port")


def free_low_ports(count: int) -> int:
    """The first of `count` consecutive ports free for UDP and TCP, below the kernel's
    ephemeral range (32768+), where no outgoing connection can take one meanwhile. A baresip
    phone uses three: SIP on p, its SIP/TLS transport on p + 1 (always opened), ctrl_tcp on
    p + 2. With ephemeral ports, "Address already in use" hit a phone now and then."""
    rng = random.Random()
    for _ in range(500):
        port = rng.randrange(15000, 30000)
        try:
            for p in range(port, port + count):
                for kind in (socket.SOCK_DGRAM, socket.SOCK_STREAM):
                    with socket.socket(socket.AF_INET, kind) as s:
                        s.bind(("127.0.0.1", p))
        except OSError:
            continue
        return port
    raise RuntimeError("no free low ports")


def free_port_block(size: int) -> int:
    """The start of `size` consecutive UDP ports free right now (for an RTP range)."""
    for _ in range(200):
        start = free_port(also_tcp=False) & ~1
        if start + size >= 65000:
            continue
        socks = []
        try:
            for p in range(start, start + size):
                s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                socks.append(s)
                s.bind(("127.0.0.1", p))
            return start
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    raise RuntimeError("no free port block")


def write_tone(path: Path, freq: float, seconds: float = 60.0, amplitude: float = 0.3) -> Path:
    t = np.arange(int(RATE * seconds)) / RATE
    samples = (amplitude * 32767 * np.sin(2 * math.pi * freq * t)).astype("<i2")
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(RATE)
        w.writeframes(samples.tobytes())
    return path


def read_wav(path: Path) -> tuple[np.ndarray, int]:
    with wave.open(str(path), "rb") as w:
        rate, n, width, ch = w.getframerate(), w.getnframes(), w.getsampwidth(), w.getnchannels()
        raw = w.readframes(n)
    if width != 2:
        raise ValueError(f"{path}: {width * 8}-bit WAV")
    data = np.frombuffer(raw, "<i2").astype(np.float64) / 32768.0
    if ch > 1:
        data = data.reshape(-1, ch).mean(axis=1)
    return data, rate


class Phases:
    """Phases of a call cut out of each phone's recording by sample index (not wall-clock
    offsets): `mark(name)` where a phase starts, `mark(name + "_end")` where it ends, and after
    the call `cut(phases)` → ({phone: {phase: samples}}, rate)."""

    def __init__(self, phones: dict) -> None:
        self.phones, self.marks = phones, {}

    def mark(self, name: str) -> None:
        self.marks[name] = {n: p.recorded_samples() for n, p in self.phones.items()}

    def cut(self, phases) -> tuple[dict, int]:
        out, rate = {}, 0
        for n, p in self.phones.items():
            rec = p.recording()
            assert rec is not None, p.log()
            samples, rate = read_wav(rec)
            out[n] = {ph: samples[self.marks[ph][n]:self.marks[f"{ph}_end"][n]] for ph in phases}
        return out, rate


def tone_power(samples: np.ndarray, rate: int, freq: float, width: float = 15.0) -> float:
    """RMS amplitude of the signal within ±width Hz of freq (Hann-windowed FFT)."""
    if len(samples) < rate // 10:
        return 0.0
    win = np.hanning(len(samples))
    spec = np.fft.rfft(samples * win)
    freqs = np.fft.rfftfreq(len(samples), 1 / rate)
    band = (freqs > freq - width) & (freqs < freq + width)
    # Parseval with the window's energy: band power as an RMS amplitude
    power = 2 * np.sum(np.abs(spec[band]) ** 2) / (len(samples) * np.sum(win ** 2))
    return float(math.sqrt(power))


def tones_heard(samples: np.ndarray, rate: int, freqs: list[float], threshold: float = 0.02
                ) -> set[float]:
    return {f for f in freqs if tone_power(samples, rate, f) >= threshold}


# ---- baresip ------------------------------------------------------------------------------

@dataclass
class Baresip:
    """One baresip process: a caller whose microphone is a WAV file and whose ear is recorded."""
    workdir: Path
    tone: Path
    sip_port: int
    ctrl_port: int
    rtp_port: int
    proc: subprocess.Popen | None = None
    answer: str = "manual"       # "auto": answers incoming calls at once (operator, invitee)
    user: str = "tester"         # baresip refuses calls to any other user part ("UA not found")

    @classmethod
    def create(cls, workdir: Path, tone: Path, answer: str = "manual",
               user: str = "tester") -> "Baresip":
        workdir.mkdir(parents=True, exist_ok=True)
        low = free_low_ports(3)
        b = cls(workdir, tone, low, low + 2, free_port_block(10),
                answer=answer, user=user)
        b._write_config()
        return b

    @property
    def uri_host(self) -> str:
        return f"127.0.0.1:{self.sip_port}"

    def _write_config(self) -> None:
        rec = self.workdir / "rec"
        rec.mkdir(exist_ok=True)
        (self.workdir / "config").write_text("\n".join([
            "poll_method epoll",
            "net_interface 127.0.0.1",
            f"sip_listen 127.0.0.1:{self.sip_port}",
            f"audio_source aufile,{self.tone}",
            # aubridge as the speaker and the ringer: it takes the frames (the recording is
            # sndfile's, on the decode path) at ~2 % of a core; alsa's "null" device never
            # blocks, so its player thread spun a whole core per phone (docs/PERFORMANCE.md)
            "audio_player aubridge,ear",
            "audio_alert aubridge,bell",
            "ausrc_srate 8000",
            "auplay_srate 8000",
            "ausrc_channels 1",
            "auplay_channels 1",
            f"rtp_ports {self.rtp_port}-{self.rtp_port + 9}",
            "rtp_stats yes",
            "module_path /usr/lib/baresip/modules",
            "module stdio.so" if False else "",
            "module g711.so",
            "module aufile.so",
            "module aubridge.so",
            "module sndfile.so",
            f"snd_path {rec}",
            "module_app account.so",
            "module_app menu.so",
            "module_app ctrl_tcp.so",
            f"ctrl_tcp_listen 127.0.0.1:{self.ctrl_port}",
            "",
        ]))
        (self.workdir / "accounts").write_text(
            f"<sip:{self.user}@127.0.0.1:{self.sip_port}>;regint=0;answermode={self.answer}\n")
        (self.workdir / "contacts").write_text("")

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [BARESIP, "-f", str(self.workdir)], cwd=self.workdir, stdin=subprocess.DEVNULL,
            stdout=open(self.workdir / "stdout.log", "wb"), stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.ctrl_port), timeout=0.2).close()
                return
            except OSError:
                if self.proc.poll() is not None:
                    raise RuntimeError(f"baresip exited: {self.log()}")
                time.sleep(0.05)
        raise TimeoutError(f"baresip ctrl_tcp did not open: {self.log()}")

    def command(self, command: str, params: str = "") -> None:
        msg = json.dumps({"command": command, "params": params, "token": "t"}).encode()
        with socket.create_connection(("127.0.0.1", self.ctrl_port), timeout=2) as s:
            s.sendall(str(len(msg)).encode() + b":" + msg + b",")
            s.settimeout(0.5)
            try:
                s.recv(4096)
            except OSError:
                pass

    def dial(self, uri: str) -> None:
        self.command("dial", uri)

    def send_digits(self, keys: str, gap: float = 0.12) -> None:
        """DTMF as RFC 4733 telephone-events, one key per command (blocking; use a thread)."""
        for key in keys:
            self.command("sndcode", key)
            time.sleep(gap)

    def hangup(self) -> None:
        self.command("hangup")

    def transfer(self, uri: str) -> None:
        """Blind transfer of the current call: baresip sends REFER (Refer-To: uri) and hangs
        up its call once the NOTIFY reports the referred call answered (sipfrag 200)."""
        self.command("transfer", uri)

    def hold(self) -> None:
        self.command("hold")        # re-INVITE with a=sendonly

    def resume(self) -> None:
        self.command("resume")      # re-INVITE with a=sendrecv

    def recorded_samples(self) -> int:
        """Samples in the current call's recording so far (sndfile writes as it decodes), to
        cut phases out of it later by sample index rather than by wall-clock offsets. After
        a hold, baresip 1.0 stops writing this file for the rest of the call."""
        rec = self.recording()
        return max(0, (rec.stat().st_size - 44) // 2) if rec is not None else 0

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        try:
            self.command("quit")
        except OSError:
            pass
        try:
            self.proc.wait(3)
        except subprocess.TimeoutExpired:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(3)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def recording(self) -> Path | None:
        files = sorted(glob.glob(str(self.workdir / "rec" / "*-dec.wav")))
        return Path(files[-1]) if files else None

    def log(self) -> str:
        p = self.workdir / "stdout.log"
        return p.read_text(errors="replace")[-3000:] if p.exists() else ""


# ---- sipp ---------------------------------------------------------------------------------

SIPP_HEAD = """<?xml version="1.0" encoding="ISO-8859-1" ?>
<!DOCTYPE scenario SYSTEM "sipp.dtd">
<scenario name="{name}">
  <send retrans="500"><![CDATA[
INVITE sip:[service]@[remote_ip]:[remote_port] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
From: sipp <sip:sipp@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
To: <sip:[service]@[remote_ip]:[remote_port]>
Call-ID: [call_id]
CSeq: 1 INVITE
Contact: sip:sipp@[local_ip]:[local_port]
Max-Forwards: 70
Content-Type: application/sdp
Content-Length: [len]

v=0
o=user1 53655765 2353687637 IN IP[local_ip_type] [local_ip]
s=-
c=IN IP[media_ip_type] [media_ip]
t=0 0
m=audio [media_port] RTP/AVP 8 101
a=rtpmap:8 PCMA/8000
a=rtpmap:101 telephone-event/8000
a=fmtp:101 0-15
a=ptime:20
]]></send>
  <recv response="100" optional="true"/>
  <recv response="180" optional="true"/>
  <recv response="183" optional="true"/>
  <recv response="200" rtd="true"/>
  <send><![CDATA[
ACK sip:[service]@[remote_ip]:[remote_port] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
From: sipp <sip:sipp@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
To: <sip:[service]@[remote_ip]:[remote_port]>[peer_tag_param]
Call-ID: [call_id]
CSeq: 1 ACK
Contact: sip:sipp@[local_ip]:[local_port]
Max-Forwards: 70
Content-Length: 0

]]></send>
"""

SIPP_TAIL = """  <send retrans="500"><![CDATA[
BYE sip:[service]@[remote_ip]:[remote_port] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
From: sipp <sip:sipp@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
To: <sip:[service]@[remote_ip]:[remote_port]>[peer_tag_param]
Call-ID: [call_id]
CSeq: {bye_cseq} BYE
Contact: sip:sipp@[local_ip]:[local_port]
Max-Forwards: 70
Content-Length: 0

]]></send>
  <recv response="200" crlf="true"/>
</scenario>
"""

SIPP_INFO = """  <send retrans="500"><![CDATA[
INFO sip:[service]@[remote_ip]:[remote_port] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
From: sipp <sip:sipp@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
To: <sip:[service]@[remote_ip]:[remote_port]>[peer_tag_param]
Call-ID: [call_id]
CSeq: {cseq} INFO
Contact: sip:sipp@[local_ip]:[local_port]
Max-Forwards: 70
Content-Type: application/dtmf-relay
Content-Length: [len]

Signal={digit}
Duration=160
]]></send>
  <recv response="200"/>
  <pause milliseconds="200"/>
"""


def sipp_scenario(name: str, *, rtp_pcaps: tuple[str, ...] = (), info_digits: str = "",
                  hold_ms: int = 500) -> str:
    """An INVITE/ACK ... BYE scenario: play each pcap (RTP, e.g. RFC 4733 digits), send each
    digit as SIP INFO (application/dtmf-relay), pause, hang up."""
    body = [SIPP_HEAD.format(name=name), '  <pause milliseconds="300"/>\n']
    for pcap in rtp_pcaps:
        body.append(f'  <nop><action><exec play_pcap_audio="{pcap}"/></action></nop>\n'
                    '  <pause milliseconds="1200"/>\n')
    cseq = 2
    for digit in info_digits:
        body.append(SIPP_INFO.format(cseq=cseq, digit=digit))
        cseq += 1
    body.append(f'  <pause milliseconds="{hold_ms}"/>\n')
    body.append(SIPP_TAIL.format(bye_cseq=cseq))
    return "".join(body)


def run_sipp(workdir: Path, scenario: str, target: str, service: str, *, calls: int = 1,
             rate: int = 10, timeout: float = 30.0, extra: tuple[str, ...] = ()
             ) -> subprocess.CompletedProcess:
    workdir.mkdir(parents=True, exist_ok=True)
    scf = workdir / "scenario.xml"
    scf.write_text(scenario)
    port = free_port()
    media = free_port_block(4)
    cmd = [SIPP, target, "-sf", str(scf), "-s", service, "-i", "127.0.0.1", "-p", str(port),
           "-mi", "127.0.0.1", "-mp", str(media), "-m", str(calls), "-r", str(rate),
           "-timeout", f"{int(timeout)}s", "-timeout_error", "-nostdin", "-trace_err",
           "-error_file", str(workdir / "errors.log"), *extra]
    return subprocess.run(cmd, cwd=workdir, capture_output=True, timeout=timeout + 10)


SIPP_DIR = Path(__file__).resolve().parent / "sipp"


def run_sipp_file(workdir: Path, scenario: str, target: str, service: str, *,
                  keys: dict[str, str] | None = None, pause_ms: int = 1000, timeout: float = 30.0,
                  pcaps: tuple[str, ...] = ()) -> subprocess.CompletedProcess:
    """Run tests/sipp/<scenario>.xml once against `target`; `keys` become sipp's -key values
    ([name] in the scenario), `pause_ms` its -d (what a bare <pause/> waits), `pcaps` are copied from
    Debian's sip-tester directory into the working directory (scenarios name them relatively)."""
    workdir.mkdir(parents=True, exist_ok=True)
    for name in pcaps:
        shutil.copy(SIPP_PCAPS / name, workdir / name)
    extra = ["-d", str(pause_ms)]
    for k, v in (keys or {}).items():
        extra += ["-key", k, v]
    return run_sipp(workdir, (SIPP_DIR / f"{scenario}.xml").read_text(), target, service,
                    timeout=timeout, extra=tuple(extra))


# ---- server settings ---------------------------------------------------------------------

def voice_settings(rooms: dict[str, int], numbers: dict[str, str], *, log_level: int = 1,
                   max_calls: int = 64):
    """Settings for a VoiceService on a free SIP port and RTP range: `rooms` name → maximum,
    `numbers` dialled user part → room (direct access)."""
    from bot.config.settings import DialIn, Route, RoomSettings, Settings, SipSettings, Tariff
    rtp_range = max(40, max_calls * 4)
    sip = SipSettings(port=free_low_ports(1), rtp_port=free_port_block(rtp_range),
                      rtp_port_range=rtp_range, log_level=log_level, max_calls=max_calls)
    dialin = tuple(DialIn(n, n, Tariff.STANDARD, Route.DIRECT, room=r) for n, r in numbers.items())
    return Settings(sip=sip, dialin=dialin,
                    rooms=tuple(RoomSettings(n, m) for n, m in rooms.items()))


def window(samples: np.ndarray, rate: int, start_from_end: float, stop_from_end: float
           ) -> np.ndarray:
    """The slice from `start_from_end` to `stop_from_end` seconds before the recording's end."""
    n = len(samples)
    a, b = n - int(start_from_end * rate), n - int(stop_from_end * rate)
    if a < 0:
        raise ValueError(f"recording is {n / rate:.2f} s, shorter than {start_from_end} s")
    return samples[a:b]


def baresip_rtp_summary(log: str) -> dict[str, tuple[float, float]]:
    """baresip's end-of-call RTP table ('packets:', 'lost:', 'jitter:' ...) as
    {row: (transmit, receive)}; the last call's table wins."""
    rows: dict[str, tuple[float, float]] = {}
    for line in log.splitlines():
        parts = line.split()
        if len(parts) >= 3 and parts[0] in ("packets:", "lost:", "jitter:", "errors:"):
            try:
                rows[parts[0].rstrip(":")] = (float(parts[1]), float(parts[2]))
            except ValueError:
                continue
    return rows


def frame_rms(samples: np.ndarray, rate: int, ms: int = 20) -> np.ndarray:
    n = rate * ms // 1000
    frames = samples[: len(samples) // n * n].reshape(-1, n)
    return np.sqrt((frames ** 2).mean(axis=1))


# ---- IVR servers -----------------------------------------------------------------------------

def ivr_settings(*, pin_numbers: dict[str, str] | None = None, direct: dict[str, str] | None = None,
                 rooms: dict[str, int] | None = None, operator_uri: str | None = None,
                 dialout_uri: str | None = None, naming: bool = False, name_max_ms: int = 1500,
                 max_calls: int = 64, languages: tuple[str, ...] = ("en",),
                 threeway: tuple[str, ...] = ()):
    """Settings for a VoiceService with the IVR: `pin_numbers` user part → tariff value,
    `threeway` user parts routed to 3PTY."""
    from dataclasses import replace

    from bot.config.settings import DialIn, IvrSettings, Route, ServiceSettings, Tariff
    base = voice_settings(rooms or {}, direct or {}, max_calls=max_calls)
    dialin = base.dialin + tuple(DialIn(n, n, Tariff(t), Route.PIN)
                                 for n, t in (pin_numbers or {}).items())
    dialin += tuple(DialIn(n, n, Tariff.STANDARD, Route.THREEWAY) for n in threeway)
    ivr = IvrSettings(operator_uri=operator_uri, dialout_uri=dialout_uri, naming=naming,
                      name_max_ms=name_max_ms)
    service = ServiceSettings(languages=languages, default_language=languages[0])
    return replace(base, dialin=dialin, ivr=ivr, service=service)


ESPEAK = shutil.which("espeak-ng")


class EspeakSynth:
    """The `ivr.speech.render.Synth` interface over the espeak-ng command (the same engine and voices
    pyttsx3 drives). End-to-end tests use it so they never touch pyttsx3's process-wide engine,
    whose state other tests (tests/test_tts.py) depend on."""
    rate = 160
    VOICES = {"de": "de", "en": "en-us"}

    def voice_for(self, lang: str) -> str:
        return self.VOICES.get(lang, lang)

    def render(self, text: str, lang: str, out_path) -> int:
        Path(out_path).parent.mkdir(parents=True, exist_ok=True)
        subprocess.run([ESPEAK, "-v", self.voice_for(lang), "-s", str(self.rate), "-w",
                        str(out_path), text], check=True, capture_output=True, timeout=30)
        with wave.open(str(out_path), "rb") as w:
            return w.getframerate()


def ivr_context(settings, tmp: Path, store=None, **extra):
    """An IvrContext with the real prompt catalog (prompts/), speech from espeak-ng and a render
    cache under `tmp`."""
    from bot.service.context import IvrContext
    from bot.service.prompts import Prompts
    from ivr import catalog
    from ivr.speech import render
    root = Path(__file__).resolve().parent.parent
    cat = catalog.load(root / "prompts", settings.service.languages,
                       settings.service.default_language)
    cache = render.PromptCache(EspeakSynth(), tmp / "prompts", settings.sip.clock_rate)
    return IvrContext(Prompts(cat, cache), store=store, names_dir=tmp / "names",
                      default_language=settings.service.default_language, **extra)


def band_removed_rms(samples: np.ndarray, rate: int, freqs: list[float], width: float = 25.0,
                     ms: int = 100) -> np.ndarray:
    """Per `ms` frame: RMS of what is left after removing the bands around `freqs` (the callers'
    own tones), i.e. how much speech / announcement there is."""
    n = rate * ms // 1000
    frames = samples[: len(samples) // n * n].reshape(-1, n)
    spec = np.fft.rfft(frames * np.hanning(n), axis=1)
    f = np.fft.rfftfreq(n, 1 / rate)
    keep = np.ones_like(f, dtype=bool)
    for fr in freqs:
        keep &= np.abs(f - fr) > width
    keep &= f > 100
    power = 2 * (np.abs(spec[:, keep]) ** 2).sum(axis=1) / (n * (np.hanning(n) ** 2).sum())
    return np.sqrt(power)
