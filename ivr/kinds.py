"""The IVR's enumerations (pure), shared by its events and actions (`ivr.events` re-exports
them): timers, dial-out purposes and outcomes, join outcomes, log levels, refusals."""
from __future__ import annotations

import enum


class Timer(enum.Enum):
    INPUT = "input"          # no (further) key within the input timeout after a question
    KEYPAD = "keypad"        # an unfinished in-conference key sequence (e.g. "*" alone)
    CHOICE = "choice"        # the invitee did not answer the invitation


class DialOutcome(enum.Enum):
    ANSWERED = "answered"    # the callee picked up (an invitee now hears the greeting)
    ACCEPTED = "accepted"    # the invitee pressed 1 and is in the room
    DECLINED = "declined"    # the invitee pressed 2, or let the choice time out
    BUSY = "busy"
    NO_ANSWER = "no_answer"
    FAILED = "failed"        # rejected, unroutable, transport error


class DialPurpose(enum.Enum):
    INVITE = "invite"        # I6: the callee hears INVITEE_GREETING and chooses (InviteeFlow)
    THREEWAY = "threeway"    # I7: the callee is bridged as soon as it answers


class JoinOutcome(enum.Enum):
    JOINED = "joined"
    FULL = "full"
    LOCKED = "locked"        # a moderator locked the conference


class Level(enum.Enum):
    DEBUG = "debug"
    INFO = "info"
    WARNING = "warning"
    ERROR = "error"


class Refusal(enum.Enum):
    """Why the owner refused an `Ask` (each has its spoken reason)."""
    NOT_ALLOWED = "not_allowed"            # this caller's role may not
    NO_SUCH_SEAT = "no_such_seat"          # nobody holds that seat in this conference
    NO_SUCH_SEPAREE = "no_such_separee"
    NOT_IN_ROOM = "not_in_room"            # the caller (or its target) is in no conference
    INVALID = "invalid"                    # e.g. a séparée of one
    MUTED_BY_MODERATOR = "muted_by_moderator"   # only a moderator may unmute this caller
