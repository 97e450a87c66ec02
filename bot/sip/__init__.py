"""The pjsua2 adapter: the SIP stack on its one owner thread (`stack`, `call`) and the events
and commands it exchanges with the service (`events`, pure). Only this package imports pjsua2.

pjsua2 facts the adapter relies on (pjproject 2.12.1, built by scripts/build-pjsua2.sh with SWIG
`-threads`, so every wrapped call releases the GIL and callbacks re-take it):
  * `threadCnt=0, mainThreadOnly=True`: SIP is polled only by our pump, and callbacks raised on
    media threads (DTMF, logs) are deferred to it as pending jobs.
  * `onDtmfDigit` fires once per digit for both RFC 4733 and SIP INFO; its duration is always
    unknown. `onDtmfEvent` (~7 per RFC 4733 digit) is not used.
  * keep `ci = call.getInfo()` in a variable before iterating `ci.media`; a disconnected call's
    AudioMedia raises, so a call's port is dropped the moment it is disconnected.
  * route diffs go to `bot.sip.bridge` (level changes, the order of a batch, read-back); a
    batch never stops half-way: a failing diff is reported (`RoutesFailed`, counted in
    `route_failures`) and the rest applied. `Reconcile` reads the bridge and applies the repair
    in one step on this thread, so no batch queued after it can be undone by a stale read.
  * the talk poll reads only the watched calls' levels, in one batch (`bot.sip.levels`).
  * shutdown order: hang up all, pump, drop calls and ports, shut the account, pump, libDestroy.
  * end of a prompt: `AudioMediaPlayer.onEof2` is raised on the media clock thread (it would
    take the GIL inside the clock tick), so it is not used; the driver knows each WAV's length
    and removes the player when it has played (see `bot.service.driver`).
  * a recorder's WAV header is written when the recorder is destroyed: `StopRecorder` drops it
    on the owner thread outside any callback and only then posts `RecorderStopped`.
  * REFER: `onCallTransferRequest` hands pjsua a fresh call object (`prm.newCall`) so the
    referred party becomes one of our calls; pjsua answers 202 and NOTIFYs the referrer with
    the new call's progress (sipfrag 100/180/200). The bot, as transferee, never ends the
    referrer's call: it is an RFC 4579-style conference factory (bot.service.switchboard joins both).
  * a re-INVITE (hold/resume, codec change) re-creates the call's stream and conference port:
    the slot number may stay the same but its routes are gone. `CallMediaChanged` tells the
    voice service to lay them again; recorders of the call are re-attached here.
  * a CANCEL racing the answer can end a dialog with no DISCONNECTED callback (7 calls in a
    20,000-call soak): a failed command on a call, and a sweep every `SWEEP_S`, end every call
    whose dialog is gone (`isActive()` false) as 487, so no call outlives its dialog.
  * the pjsua2 subclasses (calls, account, log writer) live in `bot.sip.call`.
"""
