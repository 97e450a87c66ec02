"""Calendar updates and cancellations through the mail agent (RFC 5546 iTIP; issue 7 point 8).

Real invitation mails (icalendar-built, as Outlook/Thunderbird send them) go through the real
parser and agent over the in-memory ledger that shares the store's interface.
"""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from email import message_from_bytes, policy
from email.message import EmailMessage

import icalendar
import pytest

from bot.booking.domain import BookingStatus
from bot.config.settings import CapacitySettings, DialIn, MailSettings, Route, Settings, Tariff
from mail.agent import Agent
from mail.parse import read_message
from memledger import MemoryLedger

UTC = timezone.utc
NOW = datetime(2025, 1, 10, 8, 0, tzinfo=UTC)
BOT = "confbot@conf.example"
UID = "040000008200E00074C5B7101A82E008@example.com"
START = datetime(2025, 1, 15, 13, 0, tzinfo=UTC)
SETTINGS = Settings(
    dialin=(DialIn("+49 900 5555 100", "4990055551000", Tariff.PREMIUM, Route.PIN),),
    capacity=CapacitySettings(total_lines=20, room_max=20),
    mail=MailSettings(address=BOT, allowed_senders=("example.com",)))
_n = iter(range(1, 10_000))


def invitation(*, method: str = "REQUEST", sequence: int = 0, start: datetime = START,
               minutes: int = 60, attendees=("bob@example.com", "carol@example.com"),
               sender: str = "alice@example.com", organizer: str = "alice@example.com",
               uid: str = UID, summary: str = "Board call", message_id: str | None = None,
               participants: int | None = None) -> EmailMessage:
    cal = icalendar.Calendar()
    cal.add("prodid", "-//Test//Outlook-ish//EN")
    cal.add("version", "2.0")
    cal.add("method", method)
    event = icalendar.Event()
    event.add("uid", uid)
    event.add("sequence", sequence)
    event.add("summary", summary)
    event.add("dtstart", start)
    event.add("dtend", start + timedelta(minutes=minutes))
    event.add("dtstamp", NOW)
    event.add("organizer", f"mailto:{organizer}")
    for who in (BOT, *attendees):
        event.add("attendee", f"mailto:{who}")
    if participants:
        event.add("description", f"{participants} participants")
    if method == "CANCEL":
        event.add("status", "CANCELLED")
    cal.add_component(event)
    msg = EmailMessage()
    msg["From"], msg["To"] = sender, BOT
    msg["Subject"] = ("Canceled: " if method == "CANCEL" else "Invitation: ") + summary
    msg["Date"] = "Fri, 10 Jan 2025 08:00:00 +0000"
    msg["Message-ID"] = message_id or f"<itip-{next(_n)}@example.com>"
    msg.set_content(f"{summary}.")
    msg.add_alternative(cal.to_ical().decode(), subtype="calendar", params={"method": method})
    return read_message(msg.as_bytes())


def calendar_of(msg: EmailMessage) -> tuple[str, icalendar.Event]:
    again = message_from_bytes(msg.as_bytes(), policy=policy.default)
    (part,) = [p for p in again.iter_attachments() if p.get_content_type() == "text/calendar"]
    (event,) = icalendar.Calendar.from_ical(part.get_content()).walk("VEVENT")
    return part.get_param("method"), event


def text(msg: EmailMessage) -> str:
    again = message_from_bytes(msg.as_bytes(), policy=policy.default)
    return again.get_body(("plain",)).get_content()


@pytest.fixture
def ledger() -> MemoryLedger:
    return MemoryLedger(seed=11)


@pytest.fixture
def agent(ledger) -> Agent:
    return Agent(SETTINGS, ledger)


def booked(agent, **kw) -> str:
    decision = agent.handle(invitation(**kw), NOW)
    assert decision.outcome.startswith("booked "), decision.outcome
    return decision.outcome.split()[-1]


def test_a_higher_sequence_changes_the_booking_keeping_reference_and_pins(agent, ledger):
    reference = booked(agent)
    first = ledger.get(reference)
    later = START + timedelta(hours=2)
    decision = agent.handle(invitation(sequence=1, start=later, minutes=90), NOW)
    assert decision.outcome == f"updated {reference}: SEQUENCE 1"
    assert len(ledger.list(include_cancelled=True)) == 1          # no second conference
    updated = ledger.get(reference)
    assert (updated.start, updated.end) == (later, later + timedelta(minutes=90))
    assert (updated.participant_pin, updated.moderator_pin) == (first.participant_pin,
                                                                first.moderator_pin)
    assert updated.invite_sequence == 1
    organizer, *invitees = decision.replies
    assert organizer["To"] == "alice@example.com" and "Changed" in organizer["Subject"]
    method, event = calendar_of(organizer)
    assert method == "REPLY" and event["UID"] == UID and int(event["SEQUENCE"]) == 1
    assert event.decoded("DTSTART") == later
    assert sorted(m["To"] for m in invitees) == ["bob@example.com", "carol@example.com"]
    for mail in invitees:
        assert "has changed the telephone conference" in text(mail)
        assert first.participant_pin in text(mail) and first.moderator_pin not in text(mail)


def test_an_update_is_capacity_checked_and_a_refusal_keeps_the_booking(agent, ledger):
    reference = booked(agent)
    decision = agent.handle(invitation(sequence=1, participants=50), NOW)
    assert decision.outcome.startswith("refused"), decision.outcome
    kept = ledger.get(reference)
    assert kept.participants == 3 and kept.invite_sequence == 0 and kept.active
    assert [m["To"] for m in decision.replies] == ["alice@example.com"]
    assert f"Your booking {reference} stays as it was" in text(decision.replies[0])


def test_an_update_into_a_full_slot_proposes_slots_and_keeps_the_booking(agent, ledger):
    reference = booked(agent)
    other = START + timedelta(days=1)
    blocker = agent.handle(invitation(uid="other@example.com", start=other, participants=19), NOW)
    assert blocker.outcome.startswith("booked")
    decision = agent.handle(invitation(sequence=2, start=other), NOW)
    assert decision.outcome == "refused: full (lines)"
    assert ledger.get(reference).start == START
    assert "stays as it was" in text(decision.replies[0])


@pytest.mark.parametrize("sequence", [0, 1])
def test_an_equal_or_lower_sequence_is_a_replay_with_one_short_note(agent, ledger, sequence):
    reference = booked(agent, sequence=1)
    before = ledger.get(reference)
    decision = agent.handle(invitation(sequence=sequence, start=START + timedelta(hours=5)), NOW)
    assert decision.outcome.startswith(f"replay {reference}"), decision.outcome
    assert ledger.get(reference) == before and len(ledger.list()) == 1
    (note,) = decision.replies
    assert note["To"] == "alice@example.com"
    assert "already booked as" in text(note) and "nothing was changed" in text(note)
    assert not list(note.iter_attachments())      # no calendar part: nothing to update


def test_the_same_invitation_mail_replayed_gets_its_confirmation_again(agent, ledger):
    msg = invitation(message_id="<same@example.com>")
    first = agent.handle(msg, NOW)
    again = agent.handle(invitation(message_id="<same@example.com>"), NOW)
    assert again.outcome == first.outcome and len(ledger.list()) == 1
    assert "Confirmed" in again.replies[0]["Subject"]


def test_an_update_replayed_after_a_crash_sends_the_change_again(agent, ledger):
    reference = booked(agent)
    update = dict(sequence=1, start=START + timedelta(hours=1), message_id="<upd@example.com>")
    agent.handle(invitation(**update), NOW)          # its replies lost in a crash
    again = agent.handle(invitation(**update), NOW)
    assert again.outcome == f"updated {reference}: SEQUENCE 1"
    assert "Changed" in again.replies[0]["Subject"] and len(again.replies) == 3


def test_an_update_from_someone_else_is_refused(agent, ledger):
    reference = booked(agent)
    decision = agent.handle(invitation(sequence=3, sender="mallory@example.com",
                                       start=START + timedelta(hours=3)), NOW)
    assert decision.outcome == f"refused: not the organizer of {reference}"
    assert ledger.get(reference).start == START


def test_invitees_added_get_an_invitation_and_dropped_ones_are_told(agent, ledger):
    reference = booked(agent)
    decision = agent.handle(invitation(sequence=1, attendees=("bob@example.com", "dan@example.com")), NOW)
    assert decision.outcome.startswith("updated")
    by_to = {m["To"]: m for m in decision.replies}
    assert "has changed" in text(by_to["bob@example.com"])
    assert "invites you to a telephone conference" in text(by_to["dan@example.com"])
    assert "no longer invites you" in text(by_to["carol@example.com"])
    assert calendar_of(by_to["carol@example.com"])[0] == "CANCEL"
    assert ledger.get(reference).invitees == ("bob@example.com", "dan@example.com")


def test_a_cancel_from_the_organizer_cancels_and_tells_everyone(agent, ledger):
    reference = booked(agent)
    decision = agent.handle(invitation(method="CANCEL", sequence=1), NOW)
    assert decision.outcome == f"cancelled {reference}"
    assert ledger.get(reference).status is BookingStatus.CANCELLED
    assert [m["To"] for m in decision.replies] == ["alice@example.com", "bob@example.com",
                                                   "carol@example.com"]
    assert "is cancelled" in text(decision.replies[0])
    for notice in decision.replies[1:]:
        assert calendar_of(notice)[0] == "CANCEL"


def test_a_cancel_from_someone_else_is_refused_and_keeps_the_booking(agent, ledger):
    reference = booked(agent)
    decision = agent.handle(invitation(method="CANCEL", sender="bob@example.com"), NOW)
    assert decision.outcome == f"refused: not the organizer of {reference}"
    assert ledger.get(reference).active
    assert [m["To"] for m in decision.replies] == ["bob@example.com"]


def test_a_cancel_of_an_unknown_event_says_there_was_nothing_to_cancel(agent, ledger):
    decision = agent.handle(invitation(method="CANCEL", uid="never@example.com"), NOW)
    assert decision.outcome.startswith("refused: cancel of unknown invitation")
    assert "nothing to cancel" in text(decision.replies[0])


def test_a_second_cancel_says_already_cancelled_and_a_replayed_one_resends(agent, ledger):
    reference = booked(agent)
    cancel = dict(method="CANCEL", message_id="<cxl@example.com>")
    agent.handle(invitation(**cancel), NOW)
    assert agent.handle(invitation(**cancel), NOW).outcome == f"cancelled {reference}"
    other = agent.handle(invitation(method="CANCEL"), NOW)
    assert other.outcome == f"refused: {reference} already cancelled"


def test_a_new_version_of_a_cancelled_event_books_anew(agent, ledger):
    reference = booked(agent)
    agent.handle(invitation(method="CANCEL", sequence=1), NOW)
    # the booked version again (a late re-delivery) does not bring it back
    assert agent.handle(invitation(sequence=0), NOW).outcome == f"refused: {reference} already cancelled"
    decision = agent.handle(invitation(sequence=2), NOW)
    assert decision.outcome.startswith("booked ") and reference not in decision.outcome
