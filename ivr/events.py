"""The IVR's vocabulary (pure): prompt IDs, the events a call flow consumes and the actions it
returns.

Owns the event types (facts the driver reports) and the action types (imperatives the driver
executes); the prompt IDs (`PromptId`, `PROMPT_PARAMS`) are `ivr.prompt_ids`, re-exported here.
Must not contain behaviour beyond tiny constructors, and must not import adapters: `ivr.flow`
decides, the driver (wired by the composition root) performs.

Driver contract (what executing an action list means):
- Actions run in list order. `Play`/`PlayFile` *enqueue* audio for this caller only and return
  at once; the driver reports `PromptFinished(token)` when each one has played to its end (not
  for audio removed by `StopPlayback`).
- `Hangup`, `TransferToOperator` and `RecordName` wait until the queued audio has drained, so a
  flow may return `[Play(GOODBYE), Hangup(...)]` and the caller hears the goodbye.
- Requests come back as exactly one answering event: `CheckPin` → `PinChecked`, `JoinRoom` →
  `JoinResult`, `RecordName` → `RecordingDone`, `QueryRoomCount` → `RoomCount`,
  `TransferToOperator` → `OperatorResult`, `DialOut` → one or more `DialOutResult`,
  `CheckLogin` → `LoginChecked`, `Ask` → `AskAnswered`, `QueryRoll` → `RollCall`.
  I/O failures are answers too (`RecordingDone(path=None)`, `JoinResult(FULL)`, ...).
- `StartTimer(name)` on a running timer restarts it; `TimerFired(name)` reports expiry.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import ClassVar

from bot.booking.domain import Booking
from bot.conference.endwatch import Closing
from bot.conference.rooms import Role
from bot.config.settings import Tariff
from ivr.kinds import (DialOutcome, DialPurpose, JoinOutcome, Level,  # noqa: F401 (re-exported)
                       Refusal, Timer)
from ivr.prompt_ids import PROMPT_PARAMS, PromptId  # noqa: F401 (PROMPT_PARAMS re-exported)


Params = tuple[tuple[str, object], ...]


# ---- events: facts the driver reports --------------------------------------------------------

@dataclass(frozen=True, slots=True)
class CallAnswered:
    call_id: str
    dialled: str             # request-URI user part (or the whole URI; routing extracts the user)
    caller: str              # caller ID as presented ("" or "anonymous" when withheld)
    at: datetime


@dataclass(frozen=True, slots=True)
class DigitPressed:
    digit: str               # one of 0-9 * # (A-D are ignored by the flow)
    at: datetime | None = None   # the driver stamps it; the flow uses it for toll-fraud windows


@dataclass(frozen=True, slots=True)
class SpeechRecognized:
    """The ASR adapter maps what was said to keys (`keyword`, e.g. "1", "0", "123456#");
    the flow treats it exactly like those digits. `text` is kept for logs."""
    text: str
    keyword: str | None


@dataclass(frozen=True, slots=True)
class PromptFinished:
    token: int


@dataclass(frozen=True, slots=True)
class RecordingDone:
    path: str | None         # None: the recording failed
    duration_ms: int


@dataclass(frozen=True, slots=True)
class TimerFired:
    name: Timer


@dataclass(frozen=True, slots=True)
class PinChecked:
    """The ledger's answer to `CheckPin`. The driver should look the PIN up with a generous
    window (e.g. a day either side) so the flow can say "not started yet" / "already ended";
    the flow applies the real early-join margin itself, at `at`."""
    booking: Booking | None
    is_moderator: bool
    at: datetime


@dataclass(frozen=True, slots=True)
class JoinResult:
    outcome: JoinOutcome
    count: int = 0           # participants in the room including this caller
    seat: int = 0            # the seat it was given ("you are the third participant")


@dataclass(frozen=True, slots=True)
class RoomCount:
    count: int


@dataclass(frozen=True, slots=True)
class MuteChanged:
    """The owner of conference state muted or unmuted this caller: at its own keypad's
    `Ask(Conferences.set_muted ...)`, or by a moderator or the superuser (`by_other`)."""
    muted: bool
    by_other: bool = False


@dataclass(frozen=True, slots=True)
class Moved:
    """Someone moved this caller into another room: counts and announcements are there now.
    `separee`: the séparée's number, 0 for a main room."""
    room: str
    separee: int = 0


@dataclass(frozen=True, slots=True)
class AskAnswered:
    """The owner's answer to this caller's `Ask`: None done (its facts come as their own
    events), or why not, with the seat or séparée number concerned. `now_on`: what a toggle
    has become (muted, locked), None when the operation was none."""
    refusal: Refusal | None = None
    number: int = 0
    now_on: bool | None = None


@dataclass(frozen=True, slots=True)
class NameChanged:
    """A moderator gave this caller a new recorded name: later announcements use it."""
    path: str


@dataclass(frozen=True, slots=True)
class NameAssigned:
    ok: bool                 # False: nobody at that position (or they left meanwhile)


@dataclass(frozen=True, slots=True)
class DialOutResult:
    call_id: str
    outcome: DialOutcome


@dataclass(frozen=True, slots=True)
class OperatorResult:
    connected: bool


@dataclass(frozen=True, slots=True)
class CallEnded:
    reason: str


@dataclass(frozen=True, slots=True)
class ConferenceNotice:
    """The conference this call belongs to ends in `minutes` (`extended` False), or was just
    extended by `minutes` (True). Spoken to callers in the room; ignored elsewhere."""
    minutes: int
    extended: bool = False


@dataclass(frozen=True, slots=True)
class LoginChecked:
    """The answer to `CheckLogin`: the role the personal PIN gives here (None: none); `known`
    says the PIN is a moderator's, but not for this conference."""
    role: Role | None
    known: bool = False


@dataclass(frozen=True, slots=True)
class RollEntry:
    """One member in a roll call: its seat, recorded name (a WAV path) if any, muted, talking
    now, and the séparée it is in (0: the main room)."""
    seat: int
    name: str | None
    muted: bool
    talking: bool
    separee: int = 0


@dataclass(frozen=True, slots=True)
class RollCall:
    """The answer to `QueryRoll`: the conference's members by seat (None: not allowed)."""
    entries: tuple[RollEntry, ...] | None


@dataclass(frozen=True, slots=True)
class Removed:
    """A moderator removed this caller from its conference: say so, goodbye, hang up."""


@dataclass(frozen=True, slots=True)
class ConferenceClosed:
    """The service ends this call's conference now: say why, goodbye, hang up."""
    why: Closing


Event = (CallAnswered | DigitPressed | SpeechRecognized | PromptFinished | RecordingDone
         | TimerFired | PinChecked | JoinResult | RoomCount | NameAssigned | NameChanged
         | MuteChanged | Moved | DialOutResult | OperatorResult | CallEnded | ConferenceNotice
         | ConferenceClosed | AskAnswered | Removed | LoginChecked | RollCall)


# ---- actions: imperatives for the driver ----------------------------------------------------

@dataclass(frozen=True, slots=True)
class Play:
    prompt: PromptId
    params: Params = ()
    barge_in: bool = False   # a key pressed while it plays stops the playback and counts
    token: int = 0

    @property
    def param_dict(self) -> dict[str, object]:
        return dict(self.params)


@dataclass(frozen=True, slots=True)
class PlayFile:
    path: str
    barge_in: bool = False
    token: int = 0


@dataclass(frozen=True, slots=True)
class StopPlayback:
    pass


@dataclass(frozen=True, slots=True)
class CollectDigits:
    """Declares the input now wanted (for the ASR grammar and DTMF detection). Digits still
    arrive one by one as `DigitPressed`; the flow assembles them."""
    max: int
    terminator: str = "#"
    restart: str = "*"
    timeout_ms: int = 8000


@dataclass(frozen=True, slots=True)
class RecordName:
    max_ms: int
    waits_for_prompts: ClassVar[bool] = True


@dataclass(frozen=True, slots=True)
class AssignName:
    """A moderator gives the participant at `position` of `room` (LAST_JOINED = 0: whoever
    joined last) the recorded name `path`; answered by NameAssigned."""
    room: str
    position: int
    path: str


@dataclass(frozen=True, slots=True)
class EndRecording:
    """The caller pressed # after saying the name: stop the recording now (RecordingDone
    follows as after the time limit). Ignored when no recording runs."""


@dataclass(frozen=True, slots=True)
class StartTimer:
    name: Timer
    ms: int


@dataclass(frozen=True, slots=True)
class CancelTimer:
    name: Timer


@dataclass(frozen=True, slots=True)
class CheckPin:
    pin: str


@dataclass(frozen=True, slots=True)
class SetLanguage:
    language: str


@dataclass(frozen=True, slots=True)
class RecordCdr:
    """B8/O4: which dial-in (tariff) this caller used for which booking, in which role."""
    call_id: str
    booking: str | None      # reference; None for 3PTY and direct rooms
    dialled: str
    caller: str
    tariff: Tariff | None
    role: Role


@dataclass(frozen=True, slots=True)
class JoinRoom:
    room: str
    role: Role
    muted: bool = False
    name_path: str | None = None


@dataclass(frozen=True, slots=True)
class LeaveRoom:
    room: str


@dataclass(frozen=True, slots=True)
class Ask:
    """Ask the owner of conference state for one operation on this caller's behalf: the driver
    runs `op(conferences, *args, by=<this call>)` (`op` is a `bot.conference.owner.Conferences`
    method, e.g. `Conferences.toggle_muted`), so a flow cannot act as anyone else and the
    owner's permissions decide. Refused (`NotAllowed`) is logged; what changed comes back as the
    owner's facts (`MuteChanged`, `Moved`, ...). The one way a keypad action changes conference
    state: a new such action is a `KeyAction` member, a `KEY_HANDLERS` entry and a handler
    returning an `Ask` (and, if the owner lacks it, the owner's operation)."""
    op: Callable[..., object]
    args: tuple = ()


@dataclass(frozen=True, slots=True)
class CheckLogin:
    """A caller in a conference entered a personal PIN (`[[moderators]]`) → `LoginChecked`."""
    pin: str


@dataclass(frozen=True, slots=True)
class QueryRoll:
    """A moderator's roll call of its conference → `RollCall`."""


@dataclass(frozen=True, slots=True)
class QueryRoomCount:
    room: str


@dataclass(frozen=True, slots=True)
class AnnounceToRoom:
    room: str
    prompt: PromptId
    params: Params = ()

    @property
    def param_dict(self) -> dict[str, object]:
        return dict(self.params)


@dataclass(frozen=True, slots=True)
class DialOut:
    """Call `number`. For INVITE the driver runs an `ivr.invitee.InviteeFlow(room, inviter,
    title)` on the new call; for THREEWAY it reports ANSWERED and waits for `BridgeInvitee`."""
    number: str
    purpose: DialPurpose
    room: str
    inviter: str = ""        # caller ID or recorded-name path of the inviter
    title: str = ""


@dataclass(frozen=True, slots=True)
class BridgeInvitee:
    call_id: str
    room: str


@dataclass(frozen=True, slots=True)
class NotifyInviter:
    """From an `InviteeFlow`: tell the inviting call's flow (as `DialOutResult(call_id, outcome)`)
    that its invitee accepted or declined."""
    outcome: DialOutcome


@dataclass(frozen=True, slots=True)
class TransferToOperator:
    uri: str
    waits_for_prompts: ClassVar[bool] = True


@dataclass(frozen=True, slots=True)
class Hangup:
    reason: str
    waits_for_prompts: ClassVar[bool] = True


@dataclass(frozen=True, slots=True)
class Log:
    level: Level
    message: str


Action = (Play | PlayFile | StopPlayback | CollectDigits | RecordName | EndRecording | StartTimer
          | CancelTimer | CheckPin | SetLanguage | RecordCdr | JoinRoom | LeaveRoom | Ask
          | QueryRoomCount | AnnounceToRoom | AssignName | DialOut | BridgeInvitee | NotifyInviter
          | TransferToOperator | Hangup | Log | CheckLogin | QueryRoll)


def params(**values: object) -> Params:
    """Prompt parameters in a stable order, for the frozen actions."""
    return tuple(sorted(values.items()))
