"""What a moderator does by keypad (pure): the owner's operations addressed by seat and séparée
number, as the caller typed them, in the moderator's own conference.

Each function is an `ivr.events.Ask` operation: `op(conferences, *args, by=<the caller>)`,
returning the owner's `Change`. They only translate numbers into calls and rooms and refuse what
does not exist (`NoSuchSeat`, `NoSuchSeparee`); permissions, the net route diff and the facts
are the owner's (`bot.conference.owner`). Must not keep state.
"""
from __future__ import annotations

from collections.abc import Iterable

from bot.conference.facts import Change, NoSuchSeat, NoSuchSeparee, UnknownCall
from bot.conference.owner import Conferences


def _conference(c: Conferences, by: str) -> str:
    s = c.seat_of(by)
    if s is None:
        raise UnknownCall(by)
    return s.conference


def _calls(c: Conferences, conference: str, seats: Iterable[int]) -> list[str]:
    calls = []
    for seat in seats:
        s = c.find(conference, seat) if seat > 0 else None
        if s is None:
            raise NoSuchSeat(seat)
        calls.append(s.call)
    return calls


def separee_of_seats(c: Conferences, seats: tuple[int, ...], *, by: str) -> Change:
    """Open a séparée with the members in `seats` (the moderator's own seat among them or not)."""
    conference = _conference(c, by)
    return c.open_separee(conference, _calls(c, conference, seats), by)


def consult_seat(c: Conferences, seat: int, *, by: str) -> Change:
    """A 1:1 consultation: a séparée with the moderator and the member in `seat`."""
    conference = _conference(c, by)
    (call,) = _calls(c, conference, (seat,))
    if call == by:
        raise NoSuchSeat(seat)           # a consultation with oneself is nobody
    return c.open_separee(conference, (by, call), by)


def bring_back_separee(c: Conferences, number: int, *, by: str) -> Change:
    """Everybody in séparée `number` back to the main room; 0: every séparée of the conference."""
    conference = _conference(c, by)
    rooms = c.separees(conference)
    if number == 0:
        if not rooms:
            raise NoSuchSeparee(0)
        return c.bring_all_back(conference, by)
    if number not in rooms:
        raise NoSuchSeparee(number)
    return c.bring_back(rooms[number], by)


def mute_seat(c: Conferences, seat: int, *, by: str) -> Change:
    """Mute the member in `seat`, or unmute it when it is muted (its flow hears who did it)."""
    (call,) = _calls(c, _conference(c, by), (seat,))
    return c.toggle_muted(call, by)


def remove_seat(c: Conferences, seat: int, *, by: str) -> Change:
    """Remove the member in `seat` from the conference (its flow says why and hangs up)."""
    (call,) = _calls(c, _conference(c, by), (seat,))
    return c.remove(call, by)


def mute_participants(c: Conferences, muted: bool, *, by: str) -> Change:
    """Every participant of the moderator's conference muted (lecture mode) or unmuted."""
    return c.mute_all(_conference(c, by), muted, by)


def toggle_lock(c: Conferences, *, by: str) -> Change:
    """Lock the moderator's conference for newcomers, or unlock it."""
    conference = _conference(c, by)
    return c.lock(conference, not c.locked(conference), by)


def end_conference(c: Conferences, *, by: str) -> Change:
    """End the moderator's conference for everyone."""
    return c.end(_conference(c, by), by)


def move_seat(c: Conferences, seat: int, room: int, *, by: str) -> Change:
    """Move the member in `seat` into séparée `room` of the moderator's conference (0: back
    to the main room)."""
    conference = _conference(c, by)
    (call,) = _calls(c, conference, (seat,))
    if room == 0:
        return c.move(call, conference, by)
    rooms = c.separees(conference)
    if room not in rooms:
        raise NoSuchSeparee(room)
    return c.move(call, rooms[room], by)
