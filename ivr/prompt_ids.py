"""The prompt IDs (pure): every prompt a call flow may play, and the parameters each expects.

Owns `PromptId` (shared with the prompt catalog: values are the lower-case names and the keys of
`prompts/<lang>.toml`) and `PROMPT_PARAMS` (the catalog checks its texts against it).
`ivr.events` imports (and re-exports) both, so `from ivr.events import PromptId` keeps working.
"""
from __future__ import annotations

import enum


class PromptId(enum.Enum):
    WELCOME = "welcome"
    LANGUAGE_MENU = "language_menu"
    MAIN_MENU = "main_menu"
    ENTER_PIN = "enter_pin"
    PIN_WRONG = "pin_wrong"                      # {tries_left}
    PIN_LOCKED = "pin_locked"
    CONFERENCE_NOT_STARTED = "conference_not_started"  # {start: datetime}
    CONFERENCE_ENDED = "conference_ended"
    CONFERENCE_CANCELLED = "conference_cancelled"  # a late caller, or those inside when cancelled
    CONFERENCE_ENDS_SOON = "conference_ends_soon"  # {minutes}
    CONFERENCE_EXTENDED = "conference_extended"    # {minutes}
    CONFERENCE_CLOSING = "conference_closing"      # the booked time is over: it ends now
    CONNECTING_OPERATOR = "connecting_operator"
    OPERATOR_UNAVAILABLE = "operator_unavailable"
    UNKNOWN_NUMBER = "unknown_number"
    SAY_NAME = "say_name"
    NAME_PLAYBACK = "name_playback"
    NAME_CONFIRM = "name_confirm"
    JOINED_AS_MODERATOR = "joined_as_moderator"
    JOINED_AS_PARTICIPANT = "joined_as_participant"
    YOU_ARE_NTH = "you_are_nth"                  # {n}
    YOU_ARE_ALONE = "you_are_alone"
    PARTICIPANT_COUNT = "participant_count"      # {count}
    MUTED = "muted"
    UNMUTED = "unmuted"
    MUTED_BY_MODERATOR = "muted_by_moderator"
    UNMUTED_BY_MODERATOR = "unmuted_by_moderator"
    VOLUME_UP = "volume_up"
    VOLUME_DOWN = "volume_down"
    HELP_KEYS = "help_keys"                      # the intro; then one KEY_* per binding
    KEY_TOGGLE_MUTE = "key_toggle_mute"          # {keys}: each says what its keys do
    KEY_MUTE = "key_mute"
    KEY_UNMUTE = "key_unmute"
    KEY_HELP = "key_help"
    KEY_COUNT = "key_count"
    KEY_VOLUME_UP = "key_volume_up"
    KEY_VOLUME_DOWN = "key_volume_down"
    KEY_TALK_LOUDER = "key_talk_louder"
    KEY_TALK_SOFTER = "key_talk_softer"
    KEY_LEAVE = "key_leave"
    KEY_INVITE = "key_invite"
    KEY_NAME_MEMBER = "key_name_member"
    KEY_SEPAREE = "key_separee"
    KEY_CONSULT = "key_consult"
    KEY_BRING_BACK = "key_bring_back"
    KEY_MUTE_SEAT = "key_mute_seat"
    KEY_REMOVE_SEAT = "key_remove_seat"
    KEY_MUTE_ALL = "key_mute_all"
    KEY_UNMUTE_ALL = "key_unmute_all"
    KEY_LOCK = "key_lock"
    KEY_END_CONFERENCE = "key_end_conference"
    KEY_LOGIN = "key_login"
    KEY_ROLL_CALL = "key_roll_call"
    KEY_MOVE_SEAT = "key_move_seat"
    NAME_WHO = "name_who"                        # moderator names a participant: whom?
    SEPAREE_WHO = "separee_who"                  # moderator: the seats for a séparée
    CONSULT_WHO = "consult_who"                  # moderator: the seat for a 1:1 talk
    BRING_BACK_WHICH = "bring_back_which"        # moderator: which séparée comes back
    MUTE_SEAT_WHO = "mute_seat_who"              # moderator: whom to mute or unmute
    REMOVE_SEAT_WHO = "remove_seat_who"          # moderator: whom to remove
    MOVE_SEAT_WHO = "move_seat_who"              # moderator: whom to move, and where
    SEAT_MUTED = "seat_muted"                    # {seat}: told to the moderator
    SEAT_UNMUTED = "seat_unmuted"                # {seat}
    SEAT_REMOVED = "seat_removed"                # {seat}
    ALL_MUTED = "all_muted"
    ALL_UNMUTED = "all_unmuted"
    CONFERENCE_LOCKED = "conference_locked"      # told to the moderator who locked it
    CONFERENCE_UNLOCKED = "conference_unlocked"
    LOCKED_OUT = "locked_out"                    # a newcomer: the conference is locked
    REMOVED = "removed"                          # told to the participant a moderator removed
    ONLY_MODERATOR_UNMUTES = "only_moderator_unmutes"
    END_CONFIRM = "end_confirm"                  # moderator: press 1 to end it for everyone
    ENDED_BY_MODERATOR = "ended_by_moderator"
    LOGIN_PIN = "login_pin"                      # enter your personal moderator PIN
    LOGGED_IN = "logged_in"
    LOGGED_IN_SUPERUSER = "logged_in_superuser"
    LOGIN_WRONG = "login_wrong"
    LOGIN_LOCKED = "login_locked"
    NOT_YOUR_CONFERENCE = "not_your_conference"
    ROLL_SEAT = "roll_seat"                      # {seat}: a roll call's entry starts
    ROLL_NO_NAME = "roll_no_name"
    ROLL_MUTED = "roll_muted"
    ROLL_TALKING = "roll_talking"
    ROLL_IN_SEPAREE = "roll_in_separee"          # {number}
    IN_SEPAREE = "in_separee"                    # {number}: told to those moved in
    BACK_IN_MAIN = "back_in_main"
    DONE = "done"                                # a moderator's action is carried out
    NO_SUCH_SEAT = "no_such_seat"                # {seat}
    NO_SUCH_SEPAREE = "no_such_separee"
    NOT_ALLOWED = "not_allowed"
    NOT_IN_ROOM = "not_in_room"
    SAY_NAME_FOR = "say_name_for"
    NAME_SAVED = "name_saved"
    NO_SUCH_PARTICIPANT = "no_such_participant"
    MODERATOR_ONLY = "moderator_only"
    INVITE_ENTER_NUMBER = "invite_enter_number"
    INVITE_RINGING = "invite_ringing"
    INVITE_JOINED = "invite_joined"
    INVITE_DECLINED = "invite_declined"
    INVITE_BUSY = "invite_busy"
    INVITE_NO_ANSWER = "invite_no_answer"
    INVITE_NOT_ALLOWED = "invite_not_allowed"
    INVITE_UNAVAILABLE = "invite_unavailable"    # no [ivr] dialout_uri: inviting is off
    INVITEE_GREETING = "invitee_greeting"        # {inviter, title}
    INVITEE_CHOICE = "invitee_choice"
    JOIN_ANNOUNCE = "join_announce"              # {name}: a recorded-name WAV path or text
    LEAVE_ANNOUNCE = "leave_announce"            # {name}
    ROOM_FULL = "room_full"
    GOODBYE = "goodbye"
    ERROR_APOLOGY = "error_apology"
    THREEWAY_ENTER_NUMBER = "threeway_enter_number"
    INVALID_INPUT = "invalid_input"
    TIMEOUT_RETRY = "timeout_retry"
    BEEP = "beep"


# The parameters each prompt with variable parts expects (the catalog checks its texts against it).
PROMPT_PARAMS: dict[PromptId, frozenset[str]] = {
    PromptId.YOU_ARE_NTH: frozenset({"n"}),
    PromptId.PARTICIPANT_COUNT: frozenset({"count"}),
    PromptId.INVITEE_GREETING: frozenset({"inviter", "title"}),
    PromptId.JOIN_ANNOUNCE: frozenset({"name"}),
    PromptId.LEAVE_ANNOUNCE: frozenset({"name"}),
    PromptId.CONFERENCE_NOT_STARTED: frozenset({"start"}),
    PromptId.PIN_WRONG: frozenset({"tries_left"}),
    PromptId.CONFERENCE_ENDS_SOON: frozenset({"minutes"}),
    PromptId.CONFERENCE_EXTENDED: frozenset({"minutes"}),
    PromptId.IN_SEPAREE: frozenset({"number"}),
    PromptId.ROLL_IN_SEPAREE: frozenset({"number"}),
    PromptId.ROLL_SEAT: frozenset({"seat"}),
    PromptId.NO_SUCH_SEAT: frozenset({"seat"}),
    **{p: frozenset({"seat"}) for p in (PromptId.SEAT_MUTED, PromptId.SEAT_UNMUTED,
                                        PromptId.SEAT_REMOVED)},
    **{p: frozenset({"keys"}) for p in PromptId if p.value.startswith("key_")},
}
