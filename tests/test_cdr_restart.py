"""Call records across restarts, with the real stack: two runs of the voice service (real pjsua2)
on one database, real baresip phones calling in with PINs and an invitee dialled out to in each
run — afterwards every call of both runs has its own, correct row. The database starts with a
row a crashed run left open; the first start closes it with "service restarted".

Before the fix, call ids restarted at call-1, so the second run's rows overwrote (or, being
INSERT OR IGNORE, silently dropped) the first run's, and an open row stayed open forever."""
from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

import sipfixtures as sf

pytestmark = [
    pytest.mark.skipif(sf.BARESIP is None, reason="baresip (Debian package) not installed"),
    pytest.mark.timeout(150),
]
pytest.importorskip("pjsua2", reason="run scripts/build-pjsua2.sh --install")

from bot.booking.domain import BookingRequest  # noqa: E402
from bot.store.calls import RESTARTED  # noqa: E402
from bot.config.settings import CapacitySettings  # noqa: E402
from bot.store.sqlite import SqliteStore  # noqa: E402
from bot.service.voice import VoiceService  # noqa: E402
from ivr.steps import State  # noqa: E402
from test_ivr_conference import dial_in, quiet, until_asking  # noqa: E402

PREMIUM, TOLLFREE, INVITED = "7000", "7100", "5551234"


async def _one_run(settings, tmp: Path, phones: dict, booking) -> dict:
    """A (participant PIN) and B (moderator PIN) dial in, B invites C by *5, C joins with 1;
    everybody hangs up; the service stops. Returns the run's call ids and its time window."""
    store = SqliteStore(tmp / "confbot.sqlite3")       # each run opens the file anew
    ctx = sf.ivr_context(settings, tmp, store=store)
    port, room = settings.sip.port, booking.reference
    voice = VoiceService(settings, ivr=ctx)
    started = datetime.now(timezone.utc)
    await voice.start()
    try:
        a = await dial_in(voice, phones["a"], PREMIUM, port, booking.participant_pin, room)
        b = await dial_in(voice, phones["b"], TOLLFREE, port, booking.moderator_pin, room)
        await voice.wait_for(lambda: quiet(voice), 30)
        await asyncio.to_thread(phones["b"].send_digits, "*5")
        await until_asking(voice, b, State.INVITE_NUMBER)
        known = set(voice.calls())
        await asyncio.to_thread(phones["b"].send_digits, INVITED + "#")
        await voice.wait_for(lambda: set(voice.drivers) - known, 30)
        c = (set(voice.drivers) - known).pop()
        await voice.wait_for(lambda: voice.drivers[c].flow.state.value == "choosing", 15)
        await asyncio.to_thread(phones["c"].send_digits, "1")
        await voice.wait_for(lambda: c in voice.rooms().get(room, ()), 5)
        await asyncio.sleep(0.5)
        for call in (a, b, c):
            voice.hangup(call, 200)
        await voice.wait_for(lambda: not voice.calls(), 15)
        run = voice.run.run
    finally:
        await voice.stop()
    await asyncio.wrap_future(ctx.store_executor.submit(lambda: None))
    store.close()
    return {"calls": {"a": a, "b": b, "c": c}, "run": run,
            "window": (started, datetime.now(timezone.utc))}


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("cdrrestart")
    now = datetime.now(timezone.utc)
    seed = SqliteStore(tmp / "confbot.sqlite3")
    booking = seed.reserve(
        BookingRequest(now - timedelta(minutes=5), now + timedelta(minutes=55), 3, "Weekly",
                       "alice@example.com"), now - timedelta(minutes=6), CapacitySettings(), 6).booking
    # what a run killed mid-call leaves behind: its run row, a joined caller, no end
    crashed, _ = seed.begin_run(now - timedelta(minutes=4))
    seed.call_started(f"call-{crashed}-1", "in", PREMIUM, "<sip:old@127.0.0.1>",
                      now - timedelta(minutes=4))
    seed.call_joined(f"call-{crashed}-1", booking.reference, now - timedelta(minutes=3))
    seed.heartbeat(crashed, now - timedelta(minutes=2))
    seed.close()
    phones = {n: sf.Baresip.create(tmp / n, sf.write_tone(tmp / f"{n}.wav", f),
                                   **({"answer": "auto", "user": INVITED} if n == "c" else {}))
              for n, f in {"a": 440.0, "b": 770.0, "c": 1230.0}.items()}
    settings = sf.ivr_settings(pin_numbers={PREMIUM: "premium", TOLLFREE: "tollfree"},
                               dialout_uri=f"sip:{{number}}@{phones['c'].uri_host}")
    for p in phones.values():
        p.start()
    try:
        first = asyncio.run(_one_run(settings, tmp, phones, booking))
        second = asyncio.run(_one_run(settings, tmp, phones, booking))
    finally:
        for p in phones.values():
            p.stop()
    store = SqliteStore(tmp / "confbot.sqlite3")
    rows = store.call_records()
    store.close()
    return {"runs": (first, second), "rows": rows, "booking": booking, "crashed": crashed,
            "now": now}


def test_every_call_of_both_runs_has_its_own_row(runs):
    first, second = runs["runs"]
    ids = [r.call_id for r in runs["rows"]]
    assert len(ids) == len(set(ids)) == 7, ids          # 3 + 3 + the crashed run's one
    for run in (first, second):
        assert set(run["calls"].values()) <= set(ids)
    assert first["run"] != second["run"]
    assert not set(first["calls"].values()) & set(second["calls"].values())


def test_each_row_holds_its_own_runs_call_correctly(runs):
    ref = runs["booking"].reference
    by_id = {r.call_id: r for r in runs["rows"]}
    for run in runs["runs"]:
        lo, hi = run["window"]
        a, b, c = (by_id[run["calls"][k]] for k in "abc")
        assert (a.direction, a.dialled, a.tariff, a.booking, a.role) == (
            "in", PREMIUM, "premium", ref, "participant")
        assert (b.direction, b.dialled, b.tariff, b.booking, b.role) == (
            "in", TOLLFREE, "tollfree", ref, "moderator")
        assert (c.direction, c.dialled, c.room) == ("out", INVITED, ref)   # the dial-out's row
        for r in (a, b, c):
            assert r.run == run["run"] and r.room == ref
            assert lo <= r.answered < r.joined < r.left <= r.ended <= hi, r
            assert r.end_reason and r.end_reason != RESTARTED


def test_the_first_start_closed_the_crashed_runs_open_row_as_service_restarted(runs):
    now, crashed = runs["now"], runs["crashed"]
    [old] = [r for r in runs["rows"] if r.run == crashed]
    assert old.end_reason == RESTARTED
    # closed at the crashed run's last heartbeat, not at the restart and not left open
    last_beat = now - timedelta(minutes=2)
    assert abs((old.ended - last_beat).total_seconds()) < 0.01
    assert old.left == old.ended and old.ended < runs["runs"][0]["window"][0]
