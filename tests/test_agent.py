"""The mail agent policy (mail.agent): real mails in, reply mails and a journal note out.

Mails are written as raw RFC 5322 text and read by the real parser; bookings live in the
in-memory ledger that shares the store's interface and capacity planner (tests/memledger.py).
"""
from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta, timezone
from email import message_from_bytes, policy
from email.message import EmailMessage

import icalendar
import pytest
from hypothesis import HealthCheck, given, settings as hsettings, strategies as st

from bot.booking.domain import BookingStatus
from bot.config.settings import CapacitySettings, DialIn, MailSettings, Route, Settings, Tariff
from mail import compose
from mail.agent import Agent, Decision, find_reference, sender_allowed
from mail.mime import sender as sender_of
from mail.parse import read_message
from memledger import MemoryLedger

UTC = timezone.utc
NOW = datetime(2025, 1, 10, 8, 0, tzinfo=UTC)
PREMIUM = "+49 900 5555 100"
TOLLFREE = "+49 800 5555 200"
BOT = "confbot@conf.example"
SETTINGS = Settings(
    dialin=(DialIn(PREMIUM, "4990055551000", Tariff.PREMIUM, Route.PIN),
            DialIn(TOLLFREE, "4980055552000", Tariff.TOLLFREE, Route.PIN)),
    capacity=CapacitySettings(total_lines=20, room_max=20),
    mail=MailSettings(address=BOT, allowed_senders=("example.com", "boss@partner.example"),
                      rate_limit_per_hour=30))

BOOKING_EN = ("Please book a telephone conference on 14.01.2025 at 10:00 for 60 minutes "
              "with 8 participants.\nPlease invite bob@example.com and carol@example.com.\n")
BOOKING_DE = ("Bitte buchen Sie eine Telefonkonferenz am 14.01.2025 um 10:00 Uhr für 60 Minuten "
              "mit 8 Teilnehmern.\nBitte laden Sie bob@example.com ein.\n")

_counter = iter(range(1, 10_000))


def mail(body: str = BOOKING_EN, *, subject: str = "Quarterly review",
         sender: str = "Alice <alice@example.com>", headers: dict[str, str] | None = None,
         date: datetime = NOW, message_id: str | None = None) -> EmailMessage:
    """A real mail, as raw bytes through the parser's reader."""
    lines = [f"From: {sender}", f"To: {BOT}", f"Subject: {subject}",
             f"Date: {date.strftime('%a, %d %b %Y %H:%M:%S +0000')}",
             f"Message-ID: {message_id or f'<m{next(_counter)}@example.com>'}"]
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    lines += ["MIME-Version: 1.0", "Content-Type: text/plain; charset=utf-8",
              "Content-Transfer-Encoding: 8bit", "", body]
    return read_message("\r\n".join(lines).encode("utf-8"))


def text(msg: EmailMessage) -> str:
    again = message_from_bytes(msg.as_bytes(), policy=policy.default)
    return again.get_body(("plain",)).get_content()


def calendar_of(msg: EmailMessage) -> tuple[str, icalendar.Event]:
    again = message_from_bytes(msg.as_bytes(), policy=policy.default)
    (part,) = [p for p in again.iter_attachments() if p.get_content_type() == "text/calendar"]
    (event,) = icalendar.Calendar.from_ical(part.get_content()).walk("VEVENT")
    return part.get_param("method"), event


def to(decision: Decision) -> list[str]:
    return [r["To"] for r in decision.replies]


@pytest.fixture
def ledger() -> MemoryLedger:
    return MemoryLedger(seed=7)


@pytest.fixture
def agent(ledger) -> Agent:
    return Agent(SETTINGS, ledger)


def book(agent: Agent, body: str = BOOKING_EN, **kw) -> tuple[Decision, str]:
    decision = agent.handle(mail(body, **kw), NOW)
    assert decision.outcome.startswith("booked CB-"), decision.outcome
    return decision, decision.outcome.split()[-1]


# --- new bookings -----------------------------------------------------------------------------

def test_booking_mail_is_reserved_and_confirmed_to_the_organizer(agent, ledger):
    request = mail(message_id="<req-1@example.com>", headers={"References": "<earlier@example.com>"})
    decision = agent.handle(request, NOW)
    reference = decision.outcome.removeprefix("booked ")
    booking = ledger.get(reference)
    assert booking is not None and booking.active and booking.participants == 8
    assert booking.start == datetime(2025, 1, 14, 9, 0, tzinfo=UTC)   # 10:00 Berlin
    confirmation = decision.replies[0]
    assert confirmation["To"] == "alice@example.com"
    assert confirmation["From"].addresses[0].addr_spec == BOT
    assert reference in confirmation["Subject"]
    assert confirmation["In-Reply-To"] == "<req-1@example.com>"
    assert confirmation["References"].split() == ["<earlier@example.com>", "<req-1@example.com>"]
    assert confirmation["Auto-Submitted"] == "auto-replied"
    body = text(confirmation)
    assert "Tuesday, 14 January 2025, 10:00–11:00 (CET)" in body
    assert f"Dial-in number (for everyone): {PREMIUM}" in body
    assert f"Participant PIN: {booking.participant_pin}" in body
    assert f"Moderator PIN: {booking.moderator_pin}" in body
    method, event = calendar_of(confirmation)
    assert method == "PUBLISH"
    assert event.decoded("DTSTART") == booking.start


def test_each_invitee_gets_a_mail_without_the_moderator_pin(agent, ledger):
    decision, reference = book(agent)
    assert to(decision) == ["alice@example.com", "bob@example.com", "carol@example.com"]
    booking = ledger.get(reference)
    for invitee_mail in decision.replies[1:]:
        raw = invitee_mail.as_string()
        assert booking.moderator_pin not in raw
        assert f"PIN: {booking.participant_pin}" in text(invitee_mail)
        assert reference in invitee_mail["Subject"]


def test_german_mail_gets_a_german_reply(agent):
    decision, _ = book(agent, BOOKING_DE, subject="Projektbesprechung")
    body = text(decision.replies[0])
    assert decision.replies[0]["Subject"].startswith("Bestätigt:")
    assert "Dienstag, 14. Januar 2025" in body and "Moderator-PIN" in body
    assert decision.replies[0]["Content-Language"] == "de"


def test_initiator_pays_organizer_dials_premium_and_invitees_toll_free(agent):
    body = BOOKING_EN + "The participants should dial in toll-free, I will pay.\n"
    decision, _ = book(agent, body)
    organizer_text = text(decision.replies[0])
    assert f"You (the organizer) dial: {PREMIUM}" in organizer_text
    assert TOLLFREE in organizer_text
    invitee_text = text(decision.replies[1])
    assert f"Dial-in number: {TOLLFREE}" in invitee_text and PREMIUM not in invitee_text


def test_the_same_mail_twice_books_once(agent, ledger):
    first = agent.handle(mail(message_id="<same@example.com>"), NOW)
    again = agent.handle(mail(message_id="<same@example.com>"), NOW + timedelta(minutes=1))
    assert first.outcome == again.outcome
    assert len(ledger.list()) == 1


def test_reply_goes_to_from_never_to_reply_to(agent):
    decision = agent.handle(mail(headers={"Reply-To": "mallory@evil.example"}), NOW)
    assert decision.replies[0]["To"] == "alice@example.com"


def test_calendar_invitation_is_answered_with_reply_under_its_uid(agent, ledger):
    cal = icalendar.Calendar()
    cal.add("prodid", "-//Test//Outlook-ish//EN")
    cal.add("version", "2.0")
    cal.add("method", "REQUEST")
    event = icalendar.Event()
    event.add("uid", "040000008200E00074C5B7101A82E008@example.com")
    event.add("summary", "Board call")
    event.add("dtstart", datetime(2025, 1, 15, 13, 0, tzinfo=UTC))
    event.add("dtend", datetime(2025, 1, 15, 14, 0, tzinfo=UTC))
    event.add("dtstamp", NOW)
    event.add("organizer", "mailto:alice@example.com")
    for who in (BOT, "dave@example.com"):
        event.add("attendee", f"mailto:{who}")
    event.add("description", "6 participants")
    cal.add_component(event)
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = "alice@example.com", BOT, "Invitation: Board call"
    msg["Date"], msg["Message-ID"] = "Fri, 10 Jan 2025 08:00:00 +0000", "<inv-1@example.com>"
    msg.set_content("Board call, 6 participants.")
    msg.add_alternative(cal.to_ical().decode(), subtype="calendar", params={"method": "REQUEST"})
    decision = agent.handle(read_message(msg.as_bytes()), NOW)
    assert decision.outcome.startswith("booked "), decision.outcome
    method, reply_event = calendar_of(decision.replies[0])
    assert method == "REPLY"
    assert reply_event["UID"] == "040000008200E00074C5B7101A82E008@example.com"
    assert reply_event["ATTENDEE"].params["PARTSTAT"] == "ACCEPTED"
    assert reply_event.decoded("DTSTART") == datetime(2025, 1, 15, 13, 0, tzinfo=UTC)


# --- refusals for new bookings -----------------------------------------------------------------

def test_missing_start_time_is_named(agent, ledger):
    decision = agent.handle(mail("Please book a conference for 8 participants, 60 minutes.\n"), NOW)
    assert decision.outcome == "refused: missing start"
    assert to(decision) == ["alice@example.com"]
    assert "when the conference starts" in text(decision.replies[0])
    assert ledger.list() == []


def test_missing_information_in_german_is_named_in_german(agent):
    decision = agent.handle(mail("Bitte buchen Sie eine Telefonkonferenz für 8 Teilnehmer, "
                                 "Dauer 60 Minuten.\n", subject="Telko"), NOW)
    assert decision.outcome.startswith("refused: missing")
    assert "Datum und Beginn" in text(decision.replies[0])


def test_start_in_the_past_is_refused(agent, ledger):
    decision = agent.handle(mail("Please book a conference on 02.01.2025 at 10:00 for 60 "
                                 "minutes with 8 participants.\n"), NOW)
    assert decision.outcome == "refused: past"
    assert ledger.list() == []


def test_full_slot_lists_three_proposals_and_books_nothing(agent, ledger):
    book(agent, BOOKING_EN.replace("8 participants", "15 participants"))
    decision = agent.handle(mail(BOOKING_EN, sender="bob@example.com", subject="Other call"), NOW)
    assert decision.outcome == "refused: full (lines)"
    assert to(decision) == ["bob@example.com"]
    body = text(decision.replies[0])
    assert "only 5 lines are free, and you asked for 8" in body
    proposals = [line for line in body.splitlines() if line.startswith("  - ")]
    assert len(proposals) == 3
    # the nearest free slots: right after the blocking hour, or earlier the same morning
    assert "  - Tuesday, 14 January 2025, 11:00–12:00 (CET)" in proposals
    assert "  - Tuesday, 14 January 2025, 09:00–10:00 (CET)" in proposals
    assert len(ledger.list()) == 1


# --- no mail loops --------------------------------------------------------------------------------

@pytest.mark.parametrize("headers, outcome", [
    ({"Auto-Submitted": "auto-replied"}, "ignored: auto-submitted"),
    ({"Auto-Submitted": "auto-generated; owner-email=x@example.com"}, "ignored: auto-submitted"),
    ({"Precedence": "bulk"}, "ignored: precedence bulk"),
    ({"Precedence": "list"}, "ignored: precedence list"),
    ({"Precedence": "junk"}, "ignored: precedence junk"),
    ({"List-Id": "<team.lists.example.com>"}, "ignored: mailing list"),
    ({"Return-Path": "<>"}, "ignored: empty return-path"),
])
def test_robot_mail_is_never_answered(agent, ledger, headers, outcome):
    decision = agent.handle(mail(headers=headers), NOW)
    assert decision == Decision((), outcome)
    assert ledger.list() == []


def test_auto_submitted_no_is_a_human_mail(agent):
    assert agent.handle(mail(headers={"Auto-Submitted": "no"}), NOW).outcome.startswith("booked")


@pytest.mark.parametrize("sender, outcome", [
    (f"Confbot <{BOT}>", "ignored: own address"),
    ("MAILER-DAEMON@example.com", "ignored: mailer-daemon"),
    ("postmaster@example.com", "ignored: mailer-daemon"),
    ("undisclosed-recipients:;", "ignored: no sender address"),
])
def test_mail_from_ourselves_or_daemons_is_never_answered(agent, sender, outcome):
    assert agent.handle(mail(sender=sender), NOW) == Decision((), outcome)


def test_delivery_report_is_never_answered(agent):
    raw = (f"From: alice@example.com\r\nTo: {BOT}\r\nSubject: Undelivered\r\n"
           "Content-Type: multipart/report; report-type=delivery-status; boundary=b\r\n\r\n"
           "--b\r\nContent-Type: text/plain\r\n\r\nDelivery failed.\r\n--b--\r\n").encode()
    assert agent.handle(read_message(raw), NOW) == Decision((), "ignored: delivery report")


def test_a_reply_is_never_sent_to_an_auto_submitted_mail_even_when_handling_fails():
    class Broken(MemoryLedger):
        def reserve(self, *args, **kwargs):
            raise RuntimeError("disk on fire")
    robot = Agent(SETTINGS, Broken()).handle(mail(headers={"Auto-Submitted": "auto-replied"}), NOW)
    assert robot.replies == ()


# --- senders and rate limit ----------------------------------------------------------------------

def test_sender_not_allowed_gets_a_polite_refusal_and_nothing_is_booked(agent, ledger):
    decision = agent.handle(mail(sender="eve@elsewhere.example"), NOW)
    assert decision.outcome == "refused: sender not allowed"
    assert to(decision) == ["eve@elsewhere.example"]
    assert "eve@elsewhere.example is not one of them" in text(decision.replies[0])
    assert ledger.list() == []


def test_empty_allow_list_refuses_everyone_and_says_so(ledger):
    closed = replace(SETTINGS, mail=replace(SETTINGS.mail, allowed_senders=()))
    decision = Agent(closed, ledger).handle(mail(), NOW)
    assert decision.outcome == "refused: sender not allowed"
    assert "does not accept bookings by mail" in text(decision.replies[0])


@pytest.mark.parametrize("sender, allowed, expected", [
    ("alice@example.com", ("example.com",), True),
    ("alice@example.com", ("@example.com",), True),
    ("alice@example.com", ("Alice@Example.com",), True),
    ("alice@example.com", ("bob@example.com",), False),
    ("alice@sub.example.com", ("example.com",), False),
    ("alice@badexample.com", ("example.com",), False),
    ("alice@example.com", (), False),
])
def test_allowed_senders_are_addresses_or_domains(sender, allowed, expected):
    assert sender_allowed(sender, allowed) is expected


def test_rate_limit_one_notice_then_silence_for_the_hour(ledger):
    tight = replace(SETTINGS, mail=replace(SETTINGS.mail, rate_limit_per_hour=2))
    agent = Agent(tight, ledger)
    status = "What is the status of my conference?\n"
    outcomes = [agent.handle(mail(status, subject="Hello"), NOW + timedelta(minutes=i))
                for i in range(4)]
    assert [len(d.replies) for d in outcomes] == [1, 1, 1, 0]
    assert outcomes[2].outcome == "refused: rate limited"
    assert "more than 2 mails within an hour" in text(outcomes[2].replies[0])
    assert outcomes[3].outcome == "ignored: rate limited"
    # another sender is not affected
    assert agent.handle(mail(status, sender="bob@example.com"), NOW).outcome != "ignored: rate limited"
    # an hour after the first mails, alice is answered again
    later = agent.handle(mail(status), NOW + timedelta(minutes=61))
    assert later.outcome.startswith("refused: missing") and len(later.replies) == 1


def test_rate_limit_reads_the_injected_clock(ledger):
    tight = replace(SETTINGS, mail=replace(SETTINGS.mail, rate_limit_per_hour=1))
    clock = [NOW]
    agent = Agent(tight, ledger, rate_limit_clock=lambda: clock[0])
    agent.handle(mail("hi\n"), NOW)
    assert agent.handle(mail("hi\n"), NOW + timedelta(hours=5)).outcome == "refused: rate limited"
    clock[0] = NOW + timedelta(hours=2)
    assert agent.handle(mail("hi\n"), NOW).outcome != "refused: rate limited"


# --- follow-ups ---------------------------------------------------------------------------------------

def follow_up(reference: str, body: str, *, sender: str = "alice@example.com",
              subject: str | None = None) -> EmailMessage:
    return mail(body, sender=sender, subject=subject or f"Re: Confirmed: Quarterly review [{reference}]",
                date=NOW + timedelta(hours=1))


def test_organizer_cancels_and_everyone_gets_a_cancel_ics(agent, ledger):
    _, reference = book(agent)
    decision = agent.handle(follow_up(reference, "Please cancel it.\n"), NOW + timedelta(hours=1))
    assert decision.outcome == f"cancelled {reference}"
    assert ledger.get(reference).status is BookingStatus.CANCELLED
    assert to(decision) == ["alice@example.com", "bob@example.com", "carol@example.com"]
    for reply in decision.replies:
        method, event = calendar_of(reply)
        assert method == "CANCEL" and str(event["STATUS"]) == "CANCELLED"
        assert reference in reply["Subject"]
    assert decision.replies[0]["In-Reply-To"] is not None


@pytest.mark.parametrize("word", ["storno", "Stornieren", "absagen", "CANCEL"])
def test_every_cancel_word_cancels(agent, ledger, word):
    _, reference = book(agent)
    agent.handle(follow_up(reference, f"{word}\n"), NOW)
    assert ledger.get(reference).status is BookingStatus.CANCELLED


def test_cancel_word_in_the_subject_cancels(agent, ledger):
    _, reference = book(agent)
    agent.handle(follow_up(reference, "", subject=f"Storno {reference}"), NOW)
    assert not ledger.get(reference).active


def test_non_organizer_cannot_cancel(agent, ledger):
    _, reference = book(agent)
    decision = agent.handle(follow_up(reference, "cancel\n", sender="bob@example.com"), NOW)
    assert decision.outcome == f"refused: not the organizer of {reference}"
    assert to(decision) == ["bob@example.com"]
    assert "only the organizer" in text(decision.replies[0])
    assert ledger.get(reference).active
    assert ledger.get(reference).moderator_pin not in decision.replies[0].as_string()


def test_status_is_the_default_and_quoted_command_words_do_not_count(agent, ledger):
    decision, reference = book(agent)
    quoted = "\n".join(f"> {line}" for line in text(decision.replies[0]).splitlines())
    reply = agent.handle(follow_up(reference, f"Thanks, all fine!\n\n{quoted}\n"), NOW)
    assert reply.outcome == f"status {reference}"
    assert ledger.get(reference).active
    assert "Status: confirmed" in text(reply.replies[0])


def test_a_command_word_inside_the_title_is_not_a_command(agent, ledger):
    _, reference = book(agent, subject="Change management sync")
    subject = f"Re: Confirmed: Change management sync [{reference}]"
    decision = agent.handle(follow_up(reference, "How does it look?\n", subject=subject), NOW)
    assert decision.outcome == f"status {reference}"


def test_change_of_time_is_rechecked_and_confirmed_to_everyone(agent, ledger):
    _, reference = book(agent)
    decision = agent.handle(follow_up(reference, "Please change it to 14.01.2025 15:00.\n"), NOW)
    assert decision.outcome == f"changed {reference}"
    changed = ledger.get(reference)
    assert changed.start == datetime(2025, 1, 14, 14, 0, tzinfo=UTC)
    assert changed.end - changed.start == timedelta(hours=1)
    assert to(decision) == ["alice@example.com", "bob@example.com", "carol@example.com"]
    assert "15:00–16:00" in text(decision.replies[0])
    _, event = calendar_of(decision.replies[0])
    assert int(event["SEQUENCE"]) == 1


def test_change_beyond_the_room_limit_is_refused_and_keeps_the_booking(agent, ledger):
    _, reference = book(agent)
    before = ledger.get(reference)
    decision = agent.handle(follow_up(reference, "Please change to 25 participants.\n"), NOW)
    assert decision.outcome == "refused: too_many_participants"
    assert "at most 20 participants" in text(decision.replies[0])
    assert ledger.get(reference) == before


def test_change_into_a_full_slot_lists_proposals_and_keeps_the_booking(agent, ledger):
    _, reference = book(agent)
    book(agent, BOOKING_EN.replace("10:00", "15:00").replace("8 participants", "15 participants"),
         sender="bob@example.com", subject="Afternoon call")
    before = ledger.get(reference)
    decision = agent.handle(follow_up(reference, "Please change it to 14.01.2025 15:00-16:00.\n"), NOW)
    assert decision.outcome == "refused: full (lines)"
    body = text(decision.replies[0])
    assert "(Tuesday, 14 January 2025, 15:00–16:00 (CET)) is fully booked" in body
    assert len([line for line in body.splitlines() if line.startswith("  - ")]) == 3
    assert ledger.get(reference) == before


def test_change_without_new_values_says_what_to_write(agent, ledger):
    _, reference = book(agent)
    decision = agent.handle(follow_up(reference, "Please change it.\n"), NOW)
    assert decision.outcome == f"refused: change of {reference} without new values"
    assert "change to 15:00" in text(decision.replies[0])


def test_unknown_reference_is_refused(agent):
    decision = agent.handle(follow_up("CB-ZZZZZ", "cancel\n"), NOW)
    assert decision.outcome == "refused: unknown reference CB-ZZZZZ"
    assert "CB-ZZZZZ" in text(decision.replies[0])


def test_cancelling_twice_says_already_cancelled(agent, ledger):
    _, reference = book(agent)
    agent.handle(follow_up(reference, "cancel\n"), NOW)
    again = agent.handle(follow_up(reference, "cancel\n"), NOW)
    assert again.outcome == f"refused: {reference} already cancelled"
    assert len(again.replies) == 1


def test_german_follow_up_gets_a_german_answer(agent):
    _, reference = book(agent)
    decision = agent.handle(follow_up(reference, "Bitte stornieren Sie die Konferenz.\n"), NOW)
    assert decision.replies[0]["Subject"].startswith("Storniert:")


@pytest.mark.parametrize("subject, expected", [
    ("Re: Confirmed: x [CB-7K2Q9]", "CB-7K2Q9"),
    ("storno cb 7k2q9", "CB-7K2Q9"),
    ("AW: CB7K2Q9", "CB-7K2Q9"),
    ("CB-7K2Q0 is not a reference", None),     # 0 is not in the alphabet
    ("Quarterly review", None),
])
def test_reference_in_the_subject(subject, expected):
    assert find_reference(subject) == expected


# --- the exception barrier -------------------------------------------------------------------------

def test_an_internal_error_becomes_an_apology_and_an_error_outcome():
    class Broken(MemoryLedger):
        def reserve(self, *args, **kwargs):
            raise RuntimeError("disk on fire")
    decision = Agent(SETTINGS, Broken()).handle(mail(), NOW)
    assert decision.outcome == "error: RuntimeError: disk on fire"
    assert to(decision) == ["alice@example.com"]
    assert "has been kept" in text(decision.replies[0])
    assert decision.replies[0]["Auto-Submitted"] == "auto-replied"


# --- robustness -------------------------------------------------------------------------------------


@hsettings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.binary(max_size=600), st.booleans())
def test_handle_never_raises_and_never_answers_a_robot(junk, robot):
    head = b"From: alice@example.com\r\nSubject: x\r\n"
    if robot:
        head += b"Auto-Submitted: auto-generated\r\n"
    decision = Agent(SETTINGS, MemoryLedger()).handle(read_message(head + junk), NOW)
    assert isinstance(decision, Decision) and decision.outcome
    if robot:
        assert decision.replies == ()
    for reply in decision.replies:
        assert reply["Auto-Submitted"] in ("auto-replied", "auto-generated")
        reply.as_bytes()   # every reply can be sent


# --- bad input: arbitrary mails through the whole agent -------------------------------------------

_CHARSETS = st.sampled_from(["utf-8", "iso-8859-1", "windows-1252", "x-unknown-42", "utf-16",
                             "koi8-r", "", "us-ascii", "utf-7", "bogus\"; x"])
_CTES = st.sampled_from(["7bit", "8bit", "base64", "quoted-printable", "x-uuencode", "bogus", ""])
_TYPES = st.sampled_from(["text/plain", "text/html", "text/calendar", "application/ics",
                          "application/octet-stream", "message/rfc822", "text/x-unknown"])
_HEADER_TEXT = st.text(st.characters(blacklist_categories=("Cs", "Cc")), max_size=60)


@st.composite
def arbitrary_mails(draw) -> tuple[bytes, str]:
    """An allowed sender's mail (so it reaches the parser and the ledger) whose subject,
    MIME structure, charsets, transfer encodings and bodies are arbitrary."""
    message_id = f"<fuzz{draw(st.integers(0, 10**6))}@example.com>"
    subject = draw(st.one_of(_HEADER_TEXT, st.just("Re: Booked: call [CB-7K2Q9] storno"),
                             _HEADER_TEXT.map(lambda s: f"[CB-{s[:5]}] {s}")))
    head = [b"From: Alice <alice@example.com>", b"To: " + BOT.encode(),
            b"Subject: " + subject.encode("utf-8", "surrogateescape"),
            b"Date: " + draw(st.sampled_from([b"Fri, 10 Jan 2025 08:00:00 +0000", b"garbage",
                                              b"Mon, 99 Foo 2025 25:61:00 +9999", b""])),
            b"Message-ID: " + message_id.encode(), b"MIME-Version: 1.0"]
    body_parts = draw(st.lists(st.tuples(_TYPES, _CHARSETS, _CTES,
                                         st.one_of(st.binary(max_size=300),
                                                   st.text(max_size=300).map(str.encode))),
                               min_size=1, max_size=3))
    if len(body_parts) == 1 and draw(st.booleans()):
        ctype, charset, cte, payload = body_parts[0]
        head += [f"Content-Type: {ctype}; charset=\"{charset}\"".encode(),
                 f"Content-Transfer-Encoding: {cte}".encode()]
        return b"\r\n".join(head) + b"\r\n\r\n" + payload, message_id
    boundary = draw(st.sampled_from(["b1", "", "=_x\"y", "b1b1"]))
    head.append(f"Content-Type: multipart/{draw(st.sampled_from(['mixed', 'alternative']))};"
                f" boundary=\"{boundary}\"".encode())
    parts = [f"--b1\r\nContent-Type: {t}; charset={c}\r\nContent-Transfer-Encoding: {e}\r\n\r\n"
             .encode() + p for t, c, e, p in body_parts]
    closing = draw(st.sampled_from([b"\r\n--b1--\r\n", b"", b"\r\n--b1"]))
    return b"\r\n".join(head) + b"\r\n\r\n" + b"\r\n".join(parts) + closing, message_id


@hsettings(max_examples=150, deadline=None)
@given(arbitrary_mails())
def test_any_mail_from_an_allowed_sender_is_answered_as_a_threaded_auto_reply(case):
    """Malformed MIME, unknown charsets and encodings, garbage dates and subjects: handle()
    never raises, and the sender always gets a reply (or the mail is explicitly ignored);
    every reply to the sender is threaded to the mail and marked automatic."""
    raw, message_id = case
    ledger = MemoryLedger(seed=1)
    decision = Agent(SETTINGS, ledger).handle(read_message(raw), NOW)
    assert decision.replies or decision.outcome.startswith("ignored: "), decision.outcome
    if decision.outcome.startswith("error:"):
        assert ledger.list() == [], "an error must leave nothing reserved"
    to_sender = [r for r in decision.replies if r["To"] == "alice@example.com"]
    assert to_sender or decision.outcome.startswith("ignored: "), decision.outcome
    for reply in to_sender:
        assert reply["Auto-Submitted"] == "auto-replied"
        assert reply["In-Reply-To"] == message_id
        assert reply["References"].split()[-1] == message_id
    for reply in decision.replies:
        reply.as_bytes()   # every reply can be serialised for sending


def test_a_mail_in_another_language_gets_one_reply_in_german_and_english(agent, ledger):
    decision = agent.handle(mail(
        "Bonjour, je voudrais réserver une conférence téléphonique pour demain à 10 heures "
        "avec huit personnes. Merci beaucoup et à bientôt.", subject="Réservation"), NOW)
    assert decision.outcome == "refused: foreign_language"
    assert ledger.list() == []
    (reply,) = decision.replies
    body = text(reply)
    assert "weder auf Deutsch noch auf Englisch" in body
    assert "not written in German or English" in body
    assert body.index("Guten Tag,") < body.index("Hello,")      # both greetings, German first
    assert reply["Content-Language"] == "de, en"
    assert reply["To"] == "alice@example.com" and reply["Auto-Submitted"] == "auto-replied"


def test_a_mail_in_a_charset_nobody_knows_gets_a_bilingual_reply_naming_the_charset(agent):
    raw = (b"From: alice@example.com\r\nTo: " + BOT.encode() + b"\r\nSubject: =?x-martian?q?Zzz?=\r\n"
           b"Message-ID: <cs1@example.com>\r\nMIME-Version: 1.0\r\n"
           b"Content-Type: text/plain; charset=x-martian\r\n\r\n\xfe\xed\xfa\xce tomorrow 10\r\n")
    decision = agent.handle(read_message(raw), NOW)
    assert decision.outcome == "refused: unreadable"
    body = text(decision.replies[0])
    assert "x-martian" in body and "unbekannter Zeichensatz" in body
    assert decision.replies[0]["In-Reply-To"] == "<cs1@example.com>"


def test_every_reply_to_the_organizer_is_threaded_and_automatic(agent):
    """Confirmation, status, change, full, refusal, cancellation: all carry Auto-Submitted,
    In-Reply-To and References; invitee mails are auto-generated notices, not replies."""
    first, reference = book(agent, message_id="<root@example.com>")
    follow = [
        mail(BOOKING_EN.replace("8 participants", "15 participants"), subject="Other call",
             message_id="<full@example.com>", sender="bob@example.com"),
        mail("status please", subject=f"Re: [{reference}]", message_id="<st@example.com>"),
        mail("change to 11:00", subject=f"Re: [{reference}]", message_id="<ch@example.com>"),
        mail("storno", subject=f"Re: [{reference}]", message_id="<cx@example.com>"),
        mail("hello?", subject="", message_id="<vague@example.com>"),
    ]
    decisions = [first] + [agent.handle(m, NOW) for m in follow]
    parents = ["<root@example.com>"] + [m["Message-ID"] for m in follow]
    senders = ["alice@example.com"] + [sender_of(m) for m in follow]
    outcomes = [d.outcome.split(" ")[0] for d in decisions]
    assert outcomes == ["booked", "refused:", "status", "changed", "cancelled", "refused:"]
    for decision, parent, sender in zip(decisions, parents, senders):
        assert decision.replies[0]["To"] == sender
        for reply in decision.replies:
            if reply["To"] == sender:
                assert (reply["Auto-Submitted"], reply["In-Reply-To"]) == ("auto-replied", parent)
                assert reply["References"].split()[-1] == parent
            else:
                assert reply["Auto-Submitted"] == "auto-generated"
                assert reply["In-Reply-To"] is None


# --- nothing half-booked: a reply that cannot be composed withdraws the booking ------------------

def test_a_confirmation_that_cannot_be_composed_gives_the_lines_back(ledger, monkeypatch):
    def broken(*args, **kwargs):
        raise ValueError("Header values may not contain linefeed or carriage return characters")
    monkeypatch.setattr(compose, "invitee_mail", broken)
    agent = Agent(SETTINGS, ledger)
    request = mail(message_id="<torn@example.com>")
    decision = agent.handle(request, NOW)
    assert decision.outcome.startswith("error: ValueError")
    assert to(decision) == ["alice@example.com"] and "has been kept" in text(decision.replies[0])
    assert ledger.list() == []                                  # no lines held
    assert all(b.participant_pin not in decision.replies[0].as_string()
               for b in ledger.list(include_cancelled=True))
    again = agent.handle(request, NOW + timedelta(minutes=1))   # the journal replay
    assert again.outcome.startswith("error: ") and to(again) == ["alice@example.com"]
    assert ledger.list() == []


def test_an_invitation_whose_summary_has_a_line_break_is_booked_with_a_one_line_subject(agent, ledger):
    raw = ("From: Alice <alice@example.com>\r\nTo: " + BOT + "\r\nSubject: Einladung\r\n"
           "Date: Fri, 10 Jan 2025 08:00:00 +0000\r\nMessage-ID: <inv-nl@example.com>\r\n"
           "MIME-Version: 1.0\r\nContent-Type: text/calendar; method=REQUEST; charset=utf-8\r\n\r\n"
           "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nMETHOD:REQUEST\r\nPRODID:-//x//y//EN\r\n"
           "BEGIN:VEVENT\r\nUID:nl@example.com\r\nDTSTART:20250114T090000Z\r\n"
           "DTEND:20250114T100000Z\r\nSUMMARY:Quarterly review\\nsecond line\r\n"
           "ORGANIZER:mailto:alice@example.com\r\nATTENDEE:mailto:bob@example.com\r\n"
           "END:VEVENT\r\nEND:VCALENDAR\r\n")
    decision = agent.handle(read_message(raw.encode()), NOW)
    assert decision.outcome.startswith("booked CB-"), decision.outcome
    assert ledger.list()[0].title == "Quarterly review second line"
    assert to(decision) == ["alice@example.com", "bob@example.com"]
    assert "\n" not in decision.replies[0]["Subject"]


# --- fan-out: invitee mails are capped ------------------------------------------------------------

def test_invitee_mails_never_exceed_the_participants_minus_the_organizer(agent, ledger):
    victims = "\n".join(f"victim{i}@mail{i}.example" for i in range(1, 101))
    body = f"Please book a conference on 14.01.2025 at 10:00 for 60 minutes with 2 participants.\n{victims}\n"
    decision, reference = book(agent, body)
    assert to(decision) == ["alice@example.com", "victim1@mail1.example"]
    confirmation = text(decision.replies[0])
    assert "Not invited by mail" in confirmation
    assert "  - victim2@mail2.example" in confirmation and "  - victim100@mail100.example" in confirmation
    assert "  - victim1@mail1.example" not in confirmation


def test_invitee_mails_are_capped_by_max_invitees(ledger):
    settings = replace(SETTINGS, mail=replace(SETTINGS.mail, max_invitees=3))
    invitees = " ".join(f"p{i}@example.com" for i in range(10))
    decision, _ = book(Agent(settings, ledger), BOOKING_EN.replace("8 participants", "15 participants")
                       + invitees + "\n")
    assert to(decision) == ["alice@example.com", "bob@example.com", "carol@example.com",
                            "p0@example.com"]
    listed = [line for line in text(decision.replies[0]).splitlines() if line.startswith("  - ")]
    assert listed == [f"  - p{i}@example.com" for i in range(1, 10)]


def test_cancel_notices_go_only_to_those_who_were_invited(ledger):
    agent = Agent(replace(SETTINGS, mail=replace(SETTINGS.mail, max_invitees=1)), ledger)
    _, reference = book(agent)
    decision = agent.handle(follow_up(reference, "cancel\n"), NOW)
    assert to(decision) == ["alice@example.com", "bob@example.com"]


# --- forged senders: Authentication-Results from our own MTA ------------------------------------------

AUTHSERV = "mx.conf.example"
AUTH_SETTINGS = replace(SETTINGS, mail=replace(SETTINGS.mail, authserv_id=AUTHSERV))


def auth_mail(*results: str, sender: str = "Alice <alice@example.com>") -> EmailMessage:
    raw = "".join(f"Authentication-Results: {r}\r\n" for r in results)
    msg = mail(sender=sender)
    return read_message(raw.encode() + msg.as_bytes())


@pytest.mark.parametrize("results", [
    (f"{AUTHSERV}; dkim=pass (2048-bit key) header.d=example.com header.s=s1",),
    (f"{AUTHSERV}; dkim=pass header.i=@example.com",),
    (f"{AUTHSERV.upper()}; spf=pass smtp.mailfrom=alice@example.com",),
    (f"{AUTHSERV} 1; spf=fail smtp.mailfrom=x@evil.example; dmarc=pass (p=reject) header.from=example.com",),
    (f"{AUTHSERV}; spf=softfail smtp.mailfrom=example.com", f"{AUTHSERV}; dkim=pass header.d=example.com"),
])
def test_a_mail_our_mta_authenticated_for_its_from_domain_is_handled(ledger, results):
    decision = Agent(AUTH_SETTINGS, ledger).handle(auth_mail(*results), NOW)
    assert decision.outcome.startswith("booked CB-"), decision.outcome


@pytest.mark.parametrize("results", [
    (),                                                                      # no verdict at all
    (f"{AUTHSERV}; dkim=fail header.d=example.com; spf=fail smtp.mailfrom=alice@example.com",),
    (f"{AUTHSERV}; dkim=pass header.d=evil.example",),                      # someone else's key
    (f"{AUTHSERV}; spf=pass smtp.mailfrom=bounce@evil.example",),           # someone else's envelope
    (f"{AUTHSERV}; dmarc=pass header.from=evil.example",),
    (f"{AUTHSERV}; none",),
    ("mx.evil.example; dkim=pass header.d=example.com",),                   # another server's word
    # the forger's header below another server's: only the topmost run of ours counts
    ("relay.other.example; spf=none", f"{AUTHSERV}; dkim=pass header.d=example.com"),
    (f"{AUTHSERV}; dkim=pass (header.d=example.com) header.d=evil.example",),  # a comment is no value
])
def test_an_unauthenticated_mail_is_ignored_without_any_reply(ledger, results):
    decision = Agent(AUTH_SETTINGS, ledger).handle(auth_mail(*results), NOW)
    assert decision == Decision((), "ignored: unauthenticated")
    assert ledger.list(include_cancelled=True) == []


def test_an_unauthenticated_follow_up_cannot_cancel(ledger):
    _, reference = book(Agent(SETTINGS, ledger))
    forged = follow_up(reference, "cancel\n")
    decision = Agent(AUTH_SETTINGS, ledger).handle(forged, NOW)
    assert decision.outcome == "ignored: unauthenticated" and decision.replies == ()
    assert ledger.get(reference).active


def test_an_unauthenticated_stranger_gets_no_refusal_either(ledger):
    decision = Agent(AUTH_SETTINGS, ledger).handle(mail(sender="mallory@evil.example"), NOW)
    assert decision == Decision((), "ignored: unauthenticated")


def test_a_mail_with_two_from_addresses_is_never_authenticated(ledger):
    msg = auth_mail(f"{AUTHSERV}; dkim=pass header.d=example.com",
                    sender="alice@example.com, mallory@evil.example")
    assert Agent(AUTH_SETTINGS, ledger).handle(msg, NOW).outcome == "ignored: unauthenticated"


# --- commands: only an order counts, never a negated or buried word -------------------------------

@pytest.mark.parametrize("body", [
    "Bitte NICHT absagen, ich wollte nur den Status wissen.\n",
    "Bitte nicht stornieren!\n",
    "Keine Änderung nötig, nur eine Frage zum Status.\n",
    "Please don't cancel, I just wanted the status.\n",
    "Do not cancel it. What is the status?\n",
    "No need to change anything.\n",
    "Thanks, all fine.\n\nWe may have to cancel next week, I will write again.\n",
    "Alles gut so.\nStornieren müssen wir erst, wenn der Kunde absagt.\n",
    "Should we cancel?\n",
    "Müssen wir verschieben?\n",
])
def test_negated_questioning_or_buried_command_words_are_a_status_request(agent, ledger, body):
    _, reference = book(agent)
    decision = agent.handle(follow_up(reference, body), NOW)
    assert decision.outcome == f"status {reference}"
    assert ledger.get(reference).active and ledger.get(reference).sequence == 0


@pytest.mark.parametrize("body", [
    "Hallo,\n\nbitte absagen.\n",
    "Hi, please cancel it.\n",
    "Guten Tag Frau Müller,\nwir müssen die Konferenz leider absagen.\n",
    "Cancel. Thanks!\n",
])
def test_a_command_at_the_start_of_the_text_after_a_greeting_counts(agent, ledger, body):
    _, reference = book(agent)
    decision = agent.handle(follow_up(reference, body), NOW)
    assert decision.outcome == f"cancelled {reference}"


@pytest.mark.parametrize("subject, outcome", [
    ("Re: Confirmed: Quarterly review [{ref}] nicht stornieren", "status"),
    ("AW: [{ref}] Storno", "cancelled"),
    ("Re: Storno: Quarterly review [{ref}]", "cancelled"),
    ("Re: Confirmed: Quarterly review [{ref}] - bitte keine Absage", "status"),
])
def test_a_command_in_the_subject_counts_only_at_its_start(agent, ledger, subject, outcome):
    _, reference = book(agent)
    decision = agent.handle(follow_up(reference, "\n", subject=subject.format(ref=reference)), NOW)
    assert decision.outcome == f"{outcome} {reference}"


# --- crash and replay -----------------------------------------------------------------------------

def test_a_cancellation_replayed_after_a_crash_is_sent_again_not_refused(agent, ledger):
    _, reference = book(agent)
    cancel = follow_up(reference, "Please cancel it.\n")
    agent.handle(cancel, NOW)                   # the ledger commits; the replies are lost
    replay = agent.handle(cancel, NOW + timedelta(minutes=1))
    assert replay.outcome == f"cancelled {reference}"
    assert to(replay) == ["alice@example.com", "bob@example.com", "carol@example.com"]
    assert all(calendar_of(r)[0] == "CANCEL" for r in replay.replies)
    other = agent.handle(follow_up(reference, "Please cancel it.\n"), NOW)
    assert other.outcome == f"refused: {reference} already cancelled"


def raw_without_message_id(body: str = BOOKING_EN) -> bytes:
    return ("From: Alice <alice@example.com>\r\nTo: " + BOT + "\r\nSubject: No id\r\n"
            "Date: Fri, 10 Jan 2025 08:00:00 +0000\r\n\r\n" + body).encode()


def test_a_mail_without_message_id_seen_twice_books_once(agent, ledger):
    raw = raw_without_message_id()
    first = agent.handle(read_message(raw), NOW)
    again = agent.handle(read_message(raw), NOW + timedelta(minutes=5))
    assert first.outcome.startswith("booked CB-") and again.outcome == first.outcome
    assert len(ledger.list()) == 1
    other = agent.handle(read_message(raw_without_message_id(BOOKING_EN + "\nThanks!\n")), NOW)
    assert other.outcome != first.outcome and len(ledger.list()) == 2
