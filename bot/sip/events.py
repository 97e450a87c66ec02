"""The SIP adapter's vocabulary (pure): events it posts and commands it executes.

Owns the frozen values that cross the pjsua2 owner thread's boundary: events (facts raised by
pjsua2 callbacks, posted to the asyncio side) and commands (imperatives queued to the owner
thread), plus `request_user`. Must not import pjsua2 or decide anything: `bot.sip.stack` translates
to and from pjsua2, `bot.service.voice` and the IVR driver decide.

Call ids are ours ("call-12-7": the 7th call of service run 12; see `time_prefix` for a stack
without a store): pjsua's own ids are reused, ours never are, not even across restarts. Port ids
are the ids the mixer core knows a bridge port by (a call's id for its audio, any string for
players).
"""
from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass

from bot.conference.mixer import Connect, Disconnect, Relevel, Route


class DtmfMethod(enum.Enum):
    RFC4733 = "rfc4733"
    SIP_INFO = "sip_info"
    INBAND = "inband"


# ---- events (facts, posted from the owner thread) ----------------------------------------

@dataclass(frozen=True, slots=True)
class CallOffered:
    call: str          # our id ("call-12-7")
    dialled: str       # user part of the request URI ("1000")
    caller: str        # the From URI


@dataclass(frozen=True, slots=True)
class CallRinging:
    """An outgoing call (dial-out, operator, REFER target) got 180/183."""
    call: str
    status: int


@dataclass(frozen=True, slots=True)
class CallConfirmed:
    """The call is established (incoming: ACK received; outgoing: the callee answered)."""
    call: str


@dataclass(frozen=True, slots=True)
class CallMediaReady:
    call: str          # audio is active: the call's port is in the bridge under this id


@dataclass(frozen=True, slots=True)
class CallMediaChanged:
    """A re-INVITE renegotiated the call's audio (hold/resume, codec): its bridge port is new
    and carries no routes; whoever decides routes must lay them again."""
    call: str


@dataclass(frozen=True, slots=True)
class DtmfReceived:
    call: str
    digit: str
    method: DtmfMethod


@dataclass(frozen=True, slots=True)
class CallEnded:
    call: str
    status: int
    reason: str


@dataclass(frozen=True, slots=True)
class TransferRequested:
    """A caller's phone sent REFER (blind transfer / RFC 4579 conference-factory style). The
    REFER was accepted (202) and pjsua is dialling `target` as our new call `new_call`."""
    call: str
    new_call: str
    target: str


@dataclass(frozen=True, slots=True)
class RecorderStopped:
    """A recorder was closed: its WAV at `path` is complete (header written)."""
    port: str
    path: str


@dataclass(frozen=True, slots=True)
class LevelsSampled:
    """One poll of the calls' voices: `levels[i]` is what `calls[i]` sends into the bridge
    (pjsua2's getTxLevel scale, 0..100). Two parallel tuples, not pairs: the stack reuses one
    `calls` tuple from poll to poll, so a poll allocates two objects, not one per call."""
    at_ms: int
    calls: tuple[str, ...]
    levels: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class StreamStats:
    """pjsua2's receive-side statistics of one call's audio stream."""
    rx_packets: int
    rx_loss: int
    jitter_ms: float        # mean interarrival jitter (RTCP)
    jbuf_delay_ms: float    # mean jitter-buffer delay


@dataclass(frozen=True, slots=True)
class CommandFailed:
    command: object
    error: str


@dataclass(frozen=True, slots=True)
class RoutesFailed:
    """Route diffs of one `ApplyRoutes` batch the bridge did not apply, each with its error.
    The rest of the batch was applied: the bridge now differs from the core on these routes
    (at least) until a `Reconcile` repairs it."""
    failed: tuple[tuple[Connect | Disconnect | Relevel, str], ...]


@dataclass(frozen=True, slots=True)
class BridgeReconciled:
    """The answer to `Reconcile`: the repairs applied (those in `failed` did not take),
    and the desired routes that could not be laid because a port is not in the bridge."""
    repairs: tuple[Connect | Disconnect | Relevel, ...]
    failed: tuple[tuple[Connect | Disconnect | Relevel, str], ...]
    unreachable: tuple[Route, ...]


SipEvent = (CallOffered | CallRinging | CallConfirmed | CallMediaReady | CallMediaChanged
            | DtmfReceived | CallEnded | TransferRequested | RecorderStopped | LevelsSampled
            | CommandFailed | RoutesFailed | BridgeReconciled)


# ---- commands (imperatives, executed on the owner thread) --------------------------------

@dataclass(frozen=True, slots=True)
class Answer:
    call: str
    code: int = 200


@dataclass(frozen=True, slots=True)
class Hangup:
    call: str
    code: int = 603


@dataclass(frozen=True, slots=True)
class MakeCall:
    """Dial `uri` as our call `call` (an id from `SipStack.new_call_id()`)."""
    call: str
    uri: str


@dataclass(frozen=True, slots=True)
class ApplyRoutes:
    diffs: tuple[Connect | Disconnect | Relevel, ...]


@dataclass(frozen=True, slots=True)
class Reconcile:
    """Read the bridge's routes and repair them to `desired` (the core's routes when this was
    queued: every batch queued before it has been applied when it runs, none after), answered
    by `BridgeReconciled`."""
    desired: frozenset[Route]


@dataclass(frozen=True, slots=True)
class AddPlayer:
    port: str          # the id the mixer core knows this source by
    path: str          # a WAV file at the bridge's clock rate
    loop: bool = True


@dataclass(frozen=True, slots=True)
class StartRecorder:
    """Record what the caller `call` says (its port's audio, not what it hears) into `path`."""
    port: str
    call: str
    path: str


@dataclass(frozen=True, slots=True)
class StopRecorder:
    port: str          # answered by RecorderStopped(port, path)


@dataclass(frozen=True, slots=True)
class RemovePort:
    port: str


@dataclass(frozen=True, slots=True)
class WatchLevels:
    """Start (`on`) or stop polling these calls' voices for talk detection. The stack polls
    only watched calls: a voice nobody watches costs nothing per tick."""
    calls: tuple[str, ...]
    on: bool = True


@dataclass(frozen=True, slots=True)
class RunOnOwner:
    fn: Callable[[], None]


Command = (Answer | Hangup | MakeCall | ApplyRoutes | Reconcile | AddPlayer | StartRecorder
           | StopRecorder | RemovePort | WatchLevels | RunOnOwner)


def request_user(whole_msg: str) -> str:
    """The user part of an INVITE's request URI: 'INVITE sip:1000@h:5060;x SIP/2.0' -> '1000'."""
    first = whole_msg.split("\r\n", 1)[0].split("\n", 1)[0]
    parts = first.split()
    if len(parts) < 2:
        return ""
    uri = parts[1]
    uri = uri.split(":", 1)[1] if ":" in uri else uri
    return uri.split("@", 1)[0] if "@" in uri else ""


# SIP final status of an outgoing call that never answered → what it means for the caller
BUSY_CODES = frozenset({486, 600})
NO_ANSWER_CODES = frozenset({408, 480, 487})


def time_prefix(at: float) -> str:
    """A call-id prefix for a stack without a store: "t" + `at` (the start, epoch seconds) in
    tenths of a second, base 36 (7 digits until the year 2219), so ids of two starts never meet
    in one log."""
    n = int(at * 10)
    digits = ""
    while n:
        n, d = divmod(n, 36)
        digits = "0123456789abcdefghijklmnopqrstuvwxyz"[d] + digits
    return "t" + (digits or "0")
