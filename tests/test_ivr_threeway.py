"""End to end, I7: the ad-hoc three-way call (3PTY) and the bot as a REFER conference factory,
with real baresip phones and sipp over 127.0.0.1, each phone sending its own tone; what each
phone heard is cut into phases by sample index and checked by FFT.

One VoiceService, three acts:
  1. 3PTY: A dials the threeway number, enters B's number and #; the bot dials B (auto-answer)
     and joins A and B into "3pty-<A>"; A presses the invite key *5 and C's number; the bot adds
     C. Then B puts the bot on hold and resumes (two re-INVITEs): the bridge must carry B's
     routes again (H1: pjsua re-creates the port on a re-INVITE, routes and all).
  2. REFER from a phone: A and B call the direct-access lobby; B transfers (REFER) to C; the
     bot accepts, dials C into the lobby and B — a blind transferor — hangs up on the final
     NOTIFY.
  3. REFER that stays (RFC 4579 style, tests/sipp/refer_stay.xml): sipp, in the lobby with
     G.711 audio, refers the bot to B and stays; sipp exits 0 only if it got 202 and a NOTIFY
     sipfrag "SIP/2.0 200".

Numbers: the test deployment's `[ivr] dialout_uri` is "sip:party@127.0.0.1:{number}", i.e. a
dialled "number" is the callee phone's SIP port (each phone needs its own port on 127.0.0.1;
the dialled digits still go through the keypad, the toll-fraud guard and the template).
"""
from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

import sipfixtures as sf

pytestmark = [
    pytest.mark.skipif(sf.BARESIP is None, reason="baresip (Debian package) not installed"),
    pytest.mark.skipif(sf.SIPP is None, reason="sipp (Debian package sip-tester) not installed"),
    pytest.mark.timeout(120),
]
pytest.importorskip("pjsua2", reason="run scripts/build-pjsua2.sh --install")

from bot.sip.events import CallEnded, CallMediaChanged, CallMediaReady  # noqa: E402
from bot.service.switchboard import LegKind  # noqa: E402
from bot.service.voice import VoiceService  # noqa: E402
from ivr.steps import State  # noqa: E402
from test_ivr_conference import quiet, until_asking  # noqa: E402

TONES = {"a": 440.0, "b": 770.0, "c": 1230.0}
HEARD, SILENT = 0.03, 0.006
THREEWAY, LOBBY_NUMBER, LOBBY = "7300", "1000", "lobby"
PHASE = 2.0


class Marks:
    """Sample positions in each phone's current recording, taken at named moments."""

    def __init__(self, phones: dict[str, sf.Baresip]) -> None:
        self.phones, self.at = phones, {}

    def take(self, label: str, *names: str) -> None:
        for n in names:
            self.at[(label, n)] = self.phones[n].recorded_samples()


async def steady(voice: VoiceService) -> None:
    await voice.wait_for(lambda: quiet(voice), 15)
    await asyncio.sleep(0.3)


async def measure(marks: Marks, label: str, *names: str) -> None:
    marks.take(f"{label}:start", *names)
    await asyncio.sleep(PHASE)
    marks.take(f"{label}:end", *names)


async def receiving(voice: VoiceService, call: str, timeout: float = 10.0) -> None:
    """Until the service receives RTP from `call` again (its packet count grows)."""
    end = time.monotonic() + timeout
    before = (await voice.stream_stats()).get(call)
    while time.monotonic() < end:
        await asyncio.sleep(0.2)
        now = (await voice.stream_stats()).get(call)
        if now is not None and (before is None or now.rx_packets >= before.rx_packets + 5):
            return
        before = before if before is not None else now
    raise AssertionError(f"no RTP from {call} for {timeout} s after its resume")


async def new_call(voice: VoiceService, known: set, timeout: float = 30) -> str:
    await voice.wait_for(lambda: set(voice.calls()) - known, timeout)
    return (set(voice.calls()) - known).pop()


async def act_threeway(voice, phones, settings, marks, out) -> None:
    a_phone, b_phone, c_phone = phones["a"], phones["b"], phones["c"]
    known = set(voice.calls())
    a_phone.dial(f"sip:{THREEWAY}@127.0.0.1:{settings.sip.port}")
    a = await new_call(voice, known)
    await until_asking(voice, a, State.THREEWAY_NUMBER)
    room = f"3pty-{a}"
    known = set(voice.calls())
    await asyncio.to_thread(a_phone.send_digits, f"{b_phone.sip_port}#")
    b = await new_call(voice, known)
    await voice.wait_for(lambda: set(voice.rooms().get(room, ())) == {a, b}, 15)
    await steady(voice)
    await asyncio.to_thread(a_phone.send_digits, "*5")
    await until_asking(voice, a, State.INVITE_NUMBER)
    known = set(voice.calls())
    await asyncio.to_thread(a_phone.send_digits, f"{c_phone.sip_port}#")
    c = await new_call(voice, known)
    await voice.wait_for(lambda: set(voice.rooms().get(room, ())) == {a, b, c}, 15)
    out["3pty"] = {"calls": {"a": a, "b": b, "c": c}, "room": room, "rooms": voice.rooms(),
                   "roles": {x: voice.mixer.member(x).role.value for x in (a, b, c)},
                   "dialled": {x: voice.calls()[x].dialled for x in (b, c)},
                   "legs": {x: voice.board.legs[x].kind for x in (b, c)},
                   "flow_parties": voice.drivers[a].flow.parties,
                   "limit": voice.members.conf.limit(room),      # the ad-hoc conference's
                   "ports": {b: str(b_phone.sip_port), c: str(c_phone.sip_port)}}
    await steady(voice)
    await measure(marks, "3pty", "a", "b", "c")
    out["3pty"]["bridge"] = (await voice.bridge_routes(), voice.core_routes())
    # H1: hold and resume re-negotiate B's media; its routes must come back
    b_phone.hold()
    await asyncio.sleep(1.0)
    changed = sum(1 for e in voice.events if e == CallMediaChanged(b))
    b_phone.resume()
    await voice.wait_for(lambda: sum(1 for e in voice.events if e == CallMediaChanged(b))
                         > changed, 5)
    await receiving(voice, b)     # baresip restarts its RTP when it likes: wait for it, bounded
    await asyncio.sleep(0.5)
    await measure(marks, "resumed", "a", "c")
    out["3pty"]["bridge_resumed"] = (await voice.bridge_routes(), voice.core_routes())
    for x in (a, b, c):
        voice.hangup(x, 200)
    await voice.wait_for(lambda: not voice.calls(), 15)


async def act_refer(voice, phones, settings, marks, out, tmp: Path) -> None:
    a_phone, b_phone, c_phone = phones["a"], phones["b"], phones["c"]
    lobby_uri = f"sip:{LOBBY_NUMBER}@127.0.0.1:{settings.sip.port}"
    known = set(voice.calls())
    a_phone.dial(lobby_uri)
    a = await new_call(voice, known)
    await voice.wait_for(lambda: a in voice.rooms().get(LOBBY, ()), 15)
    known = set(voice.calls())
    b_phone.dial(lobby_uri)
    b = await new_call(voice, known)
    await voice.wait_for(lambda: b in voice.rooms().get(LOBBY, ()), 15)
    await steady(voice)
    # act 2: a phone's blind transfer
    known = set(voice.calls())
    b_phone.transfer(f"sip:party@{c_phone.uri_host}")
    c = await new_call(voice, known)
    await voice.wait_for(lambda: c in voice.rooms().get(LOBBY, ()), 15)
    joined_c = voice.rooms()[LOBBY]
    await voice.wait_for(lambda: b not in voice.calls(), 30)
    order = [e for e in voice.events if e in (CallMediaReady(c),) or
             (isinstance(e, CallEnded) and e.call == b)]
    out["refer"] = {"calls": {"a": a, "b": b, "c": c}, "joined": joined_c,
                    "after": voice.rooms(), "c_info": voice.calls()[c], "order": order,
                    "roles": {x: voice.mixer.member(x).role.value for x in (a, c)}}
    await steady(voice)
    await measure(marks, "refer", "a", "c")
    # act 3: sipp refers the bot to B and stays in the lobby
    known = set(voice.calls())
    sipp = asyncio.create_task(asyncio.to_thread(
        sf.run_sipp_file, tmp / "sipp", "refer_stay", f"127.0.0.1:{settings.sip.port}",
        LOBBY_NUMBER, keys={"refer_to": f"sip:party@{b_phone.uri_host}"}, pause_ms=4000,
        pcaps=("g711a.pcap",)))
    try:
        try:
            await voice.wait_for(lambda: len(set(voice.rooms().get(LOBBY, ())) - known) == 2, 15)
        except TimeoutError:
            proc = await sipp
            raise AssertionError(f"no referred party in the lobby: {voice.rooms()}; sipp "
                                 f"{proc.returncode}: {proc.stdout.decode()[-800:]}") from None
        fresh = set(voice.rooms()[LOBBY]) - known
        referred = next(x for x in fresh if x in voice.board.legs)
        referrer = (fresh - {referred}).pop()
        out["stay"] = {"lobby": voice.rooms()[LOBBY], "referrer": referrer, "referred": referred,
                       "owner": voice.board.legs[referred].owner,
                       "kind": voice.board.legs[referred].kind}
        await steady(voice)
        marks.take("stay:start", "b")
        await asyncio.sleep(PHASE)
        marks.take("stay:end", "b")
        out["stay"]["referrer_still_in"] = referrer in voice.rooms().get(LOBBY, ())
    finally:
        proc = await sipp
    failures = [ln for ln in proc.stdout.decode(errors="replace").splitlines()
                if "Failed" in ln or "Unexpected" in ln or "rror" in ln]
    out["stay"]["sipp"] = (proc.returncode, "\n".join(failures[-12:])
                           + proc.stderr.decode(errors="replace")[-800:],
                           (tmp / "sipp" / "errors.log").read_text(errors="replace")[-1500:]
                           if (tmp / "sipp" / "errors.log").exists() else "")
    for x in list(voice.calls()):
        voice.hangup(x, 200)
    await voice.wait_for(lambda: not voice.calls(), 15)


def _run(tmp: Path) -> dict:
    phones = {n: sf.Baresip.create(tmp / n, sf.write_tone(tmp / f"{n}.wav", f),
                                   **({"answer": "auto", "user": "party"} if n != "a" else {}))
              for n, f in TONES.items()}
    settings = sf.ivr_settings(direct={LOBBY_NUMBER: LOBBY}, rooms={LOBBY: 10},
                               threeway=(THREEWAY,),
                               dialout_uri="sip:party@127.0.0.1:{number}")
    ctx = sf.ivr_context(settings, tmp)
    marks = Marks(phones)
    out: dict = {}
    recordings: dict[str, list] = {n: [] for n in phones}

    def keep_recordings() -> None:
        for n, p in phones.items():
            rec = p.recording()
            if rec is not None and rec not in recordings[n]:
                recordings[n].append(rec)

    async def scenario() -> None:
        voice = VoiceService(settings, ivr=ctx)
        await voice.start()
        try:
            for p in phones.values():
                p.start()
            await act_threeway(voice, phones, settings, marks, out)
            keep_recordings()
            await asyncio.sleep(1.1)     # baresip names recordings by the second
            await act_refer(voice, phones, settings, marks, out, tmp)
            keep_recordings()
        finally:
            for p in phones.values():
                p.stop()
            await voice.stop()

    asyncio.run(scenario())
    heard = {}
    for label in ("3pty", "resumed", "refer", "stay"):
        for n in phones:
            if (f"{label}:start", n) not in marks.at:
                continue
            first_act = label in ("3pty", "resumed")
            files = recordings[n]
            path = files[0] if first_act else files[-1]
            samples, rate = sf.read_wav(path)
            x = samples[marks.at[(f"{label}:start", n)]:marks.at[(f"{label}:end", n)]]
            assert len(x) > rate, f"{n} recorded {len(x) / rate:.2f} s in {label}"
            heard[(label, n)] = {f: sf.tone_power(x, rate, f) for f in TONES.values()}
    out["heard"] = heard
    return out


@pytest.fixture(scope="module")
def i7(tmp_path_factory):
    return _run(tmp_path_factory.mktemp("threeway"))


def hears(heard: dict, me: str, others: str) -> None:
    for name, f in TONES.items():
        if name in others:
            assert heard[f] > HEARD, f"{me} does not hear {name}: {heard}"
        else:
            assert heard[f] < SILENT, f"{me} hears {name}: {heard}"


# ---- 1. 3PTY ----------------------------------------------------------------------------------

def test_threeway_number_dials_the_second_party_and_the_invite_key_adds_a_third(i7):
    t = i7["3pty"]
    a, b, c = (t["calls"][n] for n in "abc")
    assert t["rooms"] == {t["room"]: tuple(sorted((a, b, c)))}
    assert t["room"] == f"3pty-{a}"
    assert t["roles"] == {a: "moderator", b: "participant", c: "participant"}
    assert t["legs"] == {b: LegKind.THREEWAY, c: LegKind.THREEWAY}
    assert t["flow_parties"] == 3
    assert t["limit"] == 3                # the ad-hoc room holds three, not the default maximum


def test_threeway_dials_the_numbers_entered_through_the_dialout_template(i7):
    t = i7["3pty"]
    assert t["dialled"] == t["ports"]      # "number" = the callee's port (module docstring)


@pytest.mark.parametrize("me", ["a", "b", "c"])
def test_all_three_parties_hear_each_other_and_not_themselves(i7, me):
    hears(i7["heard"][("3pty", me)], me, {"a": "bc", "b": "ac", "c": "ab"}[me])


def test_the_bridge_carries_exactly_the_routes_the_core_decided(i7):
    bridge, core = i7["3pty"]["bridge"]
    calls = set(i7["3pty"]["calls"].values())
    between = {(s, d) for s, d in core if s in calls and d in calls}
    assert len(between) == 6                       # N-1 for three: everyone to both others
    assert between <= bridge
    assert {(s, d) for s, d in bridge if s in calls and d in calls} == between


# ---- H1: a re-INVITE keeps the call's routes ---------------------------------------------------

def test_after_hold_and_resume_the_bridge_has_the_resumed_calls_routes_again(i7):
    bridge, core = i7["3pty"]["bridge_resumed"]
    b = i7["3pty"]["calls"]["b"]
    mine = {(s, d) for s, d in core if b in (s, d)}
    assert len(mine) >= 4                          # to and from both others
    assert mine <= bridge, sorted(mine - bridge)


@pytest.mark.parametrize("me", ["a", "c"])
def test_after_hold_and_resume_the_others_hear_the_resumed_party_again(i7, me):
    hears(i7["heard"][("resumed", me)], me, {"a": "bc", "c": "ab"}[me])


# ---- 2. REFER from a phone (blind transfer) ------------------------------------------------

def test_refer_dials_the_referred_party_into_the_referrers_room(i7):
    r = i7["refer"]
    a, b, c = (r["calls"][n] for n in "abc")
    assert r["joined"] == tuple(sorted((a, b, c)))
    assert r["after"] == {LOBBY: tuple(sorted((a, c)))}       # B left after its transfer
    assert r["c_info"].outgoing and r["c_info"].dialled == "party"
    assert r["roles"][c] == "participant"


def test_blind_transferor_hangs_up_only_after_the_referred_party_answered(i7):
    order = i7["refer"]["order"]
    c, b = i7["refer"]["calls"]["c"], i7["refer"]["calls"]["b"]
    assert [type(e) for e in order] == [CallMediaReady, CallEnded], order
    assert order[0].call == c and order[1].call == b


@pytest.mark.parametrize("me", ["a", "c"])
def test_referred_party_and_room_hear_each_other(i7, me):
    hears(i7["heard"][("refer", me)], me, {"a": "c", "c": "a"}[me])


# ---- 3. REFER that stays (RFC 4579 conference factory) -------------------------------------

def test_referrer_that_stays_gets_202_and_a_final_sipfrag_notify(i7):
    rc, stdout, errors = i7["stay"]["sipp"]
    assert rc == 0, f"sipp failed ({rc}): {stdout}\n{errors}"


def test_referrer_stays_in_the_room_with_the_referred_party(i7):
    s = i7["stay"]
    assert s["owner"] == s["referrer"] and s["kind"] is LegKind.REFER
    assert {s["referrer"], s["referred"]} <= set(s["lobby"])
    assert len(s["lobby"]) == 4                    # A, C (from act 2), sipp and B
    assert s["referrer_still_in"]


def test_referred_party_hears_the_room(i7):
    heard = i7["heard"][("stay", "b")]
    # (no "not itself" check here: the referrer's pcap is speech, with energy in every band)
    assert heard[TONES["a"]] > HEARD and heard[TONES["c"]] > HEARD, heard
