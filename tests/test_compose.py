"""Reply mails and .ics files: what the organizer and the invitees read (mail.compose, mail.ics)."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from email import message_from_bytes, policy
from email.message import EmailMessage

import icalendar
import pytest

from bot.booking.domain import Booking, BookingStatus, DialInMode
from bot.booking.ledger import Slot
from bot.config.settings import DialIn, MailSettings, Route, Settings, Tariff
from mail import compose, ics
from mail.compose import Problem

UTC = timezone.utc
PREMIUM = "+49 900 5555 100"
TOLLFREE = "+49 800 5555 200"
NOW = datetime(2025, 1, 10, 8, 0, tzinfo=UTC)
SETTINGS = Settings(
    dialin=(DialIn(PREMIUM, "4990055551000", Tariff.PREMIUM, Route.PIN),
            DialIn(TOLLFREE, "4980055552000", Tariff.TOLLFREE, Route.PIN)),
    mail=MailSettings(address="confbot@conf.example"))


def booking(**overrides) -> Booking:
    values = dict(reference="CB-7K2Q9", organizer="alice@example.com", title="Quarterly review",
                  start=datetime(2025, 1, 14, 9, 0, tzinfo=UTC),
                  end=datetime(2025, 1, 14, 10, 0, tzinfo=UTC), participants=8,
                  participant_pin="482913", moderator_pin="771654",
                  invitees=("bob@example.com",), language="en")
    values.update(overrides)
    return Booking(**values)


def original(subject="Conference please", message_id="<req-1@example.com>",
             references="<older@example.com>") -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = "Alice <alice@example.com>"
    msg["Subject"] = subject
    if message_id:
        msg["Message-ID"] = message_id
    if references:
        msg["References"] = references
    msg.set_content("book it")
    return msg


def roundtrip(msg: EmailMessage) -> EmailMessage:
    """What the recipient's client sees: serialised and parsed again."""
    return message_from_bytes(msg.as_bytes(), policy=policy.default)


def body(msg: EmailMessage) -> str:
    return roundtrip(msg).get_body(("plain",)).get_content()


def calendar(msg: EmailMessage) -> tuple[str, icalendar.Event, icalendar.Calendar]:
    parts = [p for p in roundtrip(msg).iter_attachments() if p.get_content_type() == "text/calendar"]
    assert len(parts) == 1
    cal = icalendar.Calendar.from_ical(parts[0].get_content())
    events = list(cal.walk("VEVENT"))
    assert len(events) == 1
    return parts[0].get_param("method"), events[0], cal


def confirm(b: Booking, lang: str | None = None) -> EmailMessage:
    return compose.confirmation(b, SETTINGS, to=b.organizer, original=original(), now=NOW, lang=lang)


# --- headers ---------------------------------------------------------------------------------

def test_reply_headers_thread_to_the_request_and_mark_it_automatic():
    msg = roundtrip(confirm(booking()))
    assert msg["From"].addresses[0].addr_spec == "confbot@conf.example"
    assert msg["To"] == "alice@example.com"
    assert msg["In-Reply-To"] == "<req-1@example.com>"
    assert msg["References"].split() == ["<older@example.com>", "<req-1@example.com>"]
    assert msg["Auto-Submitted"] == "auto-replied"
    assert msg["Message-ID"].endswith("@conf.example>")
    assert msg["Date"].datetime == NOW
    assert msg["Content-Language"] == "en"


def test_reply_to_a_mail_without_message_id_has_no_in_reply_to():
    msg = compose.refusal(Problem.ERROR, SETTINGS, to="x@example.com",
                          original=original(message_id=None, references=None), now=NOW, lang="en")
    assert msg["In-Reply-To"] is None and msg["References"] is None


def test_each_mail_gets_its_own_message_id():
    assert confirm(booking())["Message-ID"] != confirm(booking())["Message-ID"]


def test_refusal_subject_is_re_of_the_original_without_doubling():
    first = compose.refusal(Problem.ERROR, SETTINGS, to="a@example.com",
                            original=original("Meeting"), now=NOW, lang="en")
    again = compose.refusal(Problem.ERROR, SETTINGS, to="a@example.com",
                            original=original("Re: Meeting"), now=NOW, lang="en")
    assert first["Subject"] == "Re: Meeting"
    assert again["Subject"] == "Re: Meeting"


# --- the confirmation ------------------------------------------------------------------------

def test_english_confirmation_has_reference_title_written_date_number_and_both_pins():
    msg = confirm(booking())
    assert "CB-7K2Q9" in msg["Subject"] and "Quarterly review" in msg["Subject"]
    text = body(msg)
    assert "Reference: CB-7K2Q9" in text
    assert "Title: Quarterly review" in text
    # 09:00 UTC is 10:00 in Berlin in January (CET)
    assert "Tuesday, 14 January 2025, 10:00–11:00 (CET)" in text
    assert f"Dial-in number (for everyone): {PREMIUM}" in text
    assert TOLLFREE not in text
    assert "Participant PIN: 482913" in text
    assert "Moderator PIN: 771654" in text


def test_german_confirmation_is_german():
    msg = confirm(booking(language="de"))
    text = body(msg)
    assert msg["Subject"].startswith("Bestätigt:")
    assert "Dienstag, 14. Januar 2025, 10:00–11:00 Uhr (CET)" in text
    assert "Teilnehmer-PIN: 482913" in text and "Moderator-PIN: 771654" in text
    assert "Guten Tag" in text and "Hello" not in text
    assert roundtrip(msg)["Content-Language"] == "de"


def test_the_mails_language_wins_over_the_bookings():
    assert "Dienstag" in body(confirm(booking(language="en"), lang="de"))


def test_summer_time_is_named_and_applied():
    b = booking(start=datetime(2025, 7, 1, 8, 0, tzinfo=UTC), end=datetime(2025, 7, 1, 9, 30, tzinfo=UTC))
    assert "Tuesday, 1 July 2025, 10:00–11:30 (CEST)" in body(confirm(b))


def test_a_window_across_midnight_names_both_days():
    text = compose.span_text(datetime(2025, 1, 14, 22, 30, tzinfo=UTC),
                             datetime(2025, 1, 15, 0, 30, tzinfo=UTC),
                             SETTINGS.service.timezone, "en")
    assert text == "Tuesday, 14 January 2025, 23:30 (CET) – Wednesday, 15 January 2025, 01:30 (CET)"


def test_initiator_pays_tells_the_organizer_who_dials_which_number():
    text = body(confirm(booking(dial_in_mode=DialInMode.INITIATOR_PAYS)))
    assert f"You (the organizer) dial: {PREMIUM}" in text
    assert f"All other participants dial (toll-free, the cost is charged to you): {TOLLFREE}" in text


def test_missing_dial_in_number_is_said_not_left_blank():
    bare = Settings(mail=SETTINGS.mail)
    msg = compose.confirmation(booking(), bare, to="alice@example.com", original=None, now=NOW)
    assert "no dial-in number configured" in body(msg)


# --- the .ics ----------------------------------------------------------------------------------

def test_plain_booking_publishes_an_event_in_utc_with_participant_pin_only():
    method, event, cal = calendar(confirm(booking(sequence=2)))
    assert method == "PUBLISH" and cal["METHOD"] == "PUBLISH"
    assert event.decoded("DTSTART") == datetime(2025, 1, 14, 9, 0, tzinfo=UTC)
    assert event.decoded("DTSTART").utcoffset() == timedelta(0)
    assert event.decoded("DTEND") == datetime(2025, 1, 14, 10, 0, tzinfo=UTC)
    assert event["UID"] == ics.own_uid(booking(), "confbot@conf.example")
    assert int(event["SEQUENCE"]) == 2
    assert str(event["SUMMARY"]) == "Quarterly review"
    assert PREMIUM in str(event["LOCATION"]) and "482913" in str(event["LOCATION"])
    assert "482913" in str(event["DESCRIPTION"])
    assert "771654" not in cal.to_ical().decode()


def test_invitation_is_answered_with_reply_under_its_uid_and_accepted():
    method, event, _ = calendar(confirm(booking(invite_uid="outlook-uid-123@example.com")))
    assert method == "REPLY"
    assert event["UID"] == "outlook-uid-123@example.com"
    assert str(event["ORGANIZER"]) == "mailto:alice@example.com"
    attendee = event["ATTENDEE"]
    assert str(attendee) == "mailto:confbot@conf.example"
    assert attendee.params["PARTSTAT"] == "ACCEPTED"


def test_changed_booking_keeps_the_uid_and_raises_the_sequence():
    before = booking()
    after = before.with_changes(start=before.start + timedelta(hours=2), end=before.end + timedelta(hours=2))
    _, old, _ = calendar(confirm(before))
    _, new, _ = calendar(compose.confirmation(after, SETTINGS, to="alice@example.com",
                                              original=None, now=NOW, changed=True))
    assert old["UID"] == new["UID"]
    assert int(new["SEQUENCE"]) == int(old["SEQUENCE"]) + 1


def test_reply_without_invite_uid_is_an_error_not_a_broken_file():
    with pytest.raises(ValueError):
        ics.build(booking(), ics.Method.REPLY, bot_address="b@x", now=NOW, location="", description="")


# --- invitees ------------------------------------------------------------------------------------

def test_invitee_mail_has_participant_pin_and_never_the_moderator_pin():
    b = booking(dial_in_mode=DialInMode.INITIATOR_PAYS)
    msg = compose.invitee_mail(b, "bob@example.com", SETTINGS, now=NOW)
    assert msg["To"] == "bob@example.com"
    assert "CB-7K2Q9" in msg["Subject"]
    assert msg["Auto-Submitted"] == "auto-generated"
    text = body(msg)
    assert "alice@example.com invites you" in text
    assert f"Dial-in number: {TOLLFREE}" in text      # the organizer pays
    assert PREMIUM not in text
    assert "PIN: 482913" in text
    assert "771654" not in msg.as_string()
    method, event, _ = calendar(msg)
    assert method == "PUBLISH" and TOLLFREE in str(event["LOCATION"])


def test_invitee_dials_premium_when_everyone_pays():
    text = body(compose.invitee_mail(booking(), "bob@example.com", SETTINGS, now=NOW))
    assert f"Dial-in number: {PREMIUM}" in text and TOLLFREE not in text


# --- cancellation and status ----------------------------------------------------------------------

def test_cancellation_sends_method_cancel_for_the_published_event():
    cancelled = booking().with_changes(status=BookingStatus.CANCELLED)
    msg = compose.cancellation(cancelled, SETTINGS, to="alice@example.com", original=original(), now=NOW)
    assert "cancelled" in body(msg) and "CB-7K2Q9" in msg["Subject"]
    method, event, _ = calendar(msg)
    assert method == "CANCEL"
    assert event["UID"] == ics.own_uid(booking(), "confbot@conf.example")
    assert str(event["STATUS"]) == "CANCELLED"
    assert int(event["SEQUENCE"]) == 1
    notice = compose.cancellation_notice(cancelled, "bob@example.com", SETTINGS, now=NOW)
    method, event, _ = calendar(notice)
    assert method == "CANCEL" and notice["To"] == "bob@example.com"


def test_cancelling_an_invitation_declines_the_organizers_event():
    cancelled = booking(invite_uid="uid-9@example.com").with_changes(status=BookingStatus.CANCELLED)
    msg = compose.cancellation(cancelled, SETTINGS, to="alice@example.com", original=None, now=NOW)
    method, event, _ = calendar(msg)
    assert method == "REPLY" and event["UID"] == "uid-9@example.com"
    assert event["ATTENDEE"].params["PARTSTAT"] == "DECLINED"


def test_status_says_cancelled_for_a_cancelled_booking():
    cancelled = booking().with_changes(status=BookingStatus.CANCELLED)
    text = body(compose.status(cancelled, SETTINGS, to="alice@example.com", original=None, now=NOW))
    assert "Status: cancelled" in text
    assert "Status: confirmed" in body(compose.status(booking(), SETTINGS, to="a@example.com",
                                                      original=None, now=NOW))


# --- refusals ---------------------------------------------------------------------------------------

def test_full_lists_the_proposed_slots_with_written_dates():
    start = datetime(2025, 1, 14, 9, 0, tzinfo=UTC)
    slots = tuple(Slot(start + timedelta(hours=h), start + timedelta(hours=h + 1)) for h in (1, 2, 3))
    msg = compose.refuse_full(SETTINGS, to="a@example.com", original=original(), now=NOW, lang="en",
                              start=start, end=start + timedelta(hours=1), participants=40,
                              reason="lines", free_lines=12, proposals=slots)
    text = body(msg)
    assert "only 12 lines are free, and you asked for 40" in text
    for hour in ("11:00–12:00", "12:00–13:00", "13:00–14:00"):
        assert f"  - Tuesday, 14 January 2025, {hour} (CET)" in text


def test_full_without_proposals_says_so_in_german():
    start = datetime(2025, 1, 14, 9, 0, tzinfo=UTC)
    text = body(compose.refuse_full(SETTINGS, to="a@example.com", original=None, now=NOW, lang="de",
                                    start=start, end=start + timedelta(hours=1), participants=40,
                                    reason="lines", free_lines=0, proposals=()))
    assert "ausgebucht" in text and "kein Termin gleicher Länge frei" in text


def test_missing_fields_are_named_in_german_without_the_parsers_english():
    text = body(compose.refuse_missing(SETTINGS, to="a@example.com", original=None, now=NOW,
                                       lang="de", missing=("start", "participants"),
                                       error="The mail does not say when the conference starts."))
    assert "  - Datum und Beginn" in text
    assert "  - die Zahl der Teilnehmenden" in text
    assert "does not say" not in text


def test_english_refusal_quotes_the_parsers_exact_sentence():
    text = body(compose.refuse_missing(SETTINGS, to="a@example.com", original=None, now=NOW,
                                       lang="en", missing=("start",),
                                       error="The mail gives a date but no start time for the conference."))
    assert "  - The mail gives a date but no start time for the conference." in text


def test_german_rule_refusal_from_the_parser_names_the_limit():
    text = body(compose.refuse_missing(SETTINGS, to="a@example.com", original=None, now=NOW,
                                       lang="de", missing=(), reason="too_long",
                                       error="The conference would last 600 minutes; ..."))
    assert "höchstens 480 Minuten" in text


def test_rule_refusal_names_the_limit():
    start = datetime(2025, 1, 14, 9, 0, tzinfo=UTC)
    text = body(compose.refuse_rule(SETTINGS, to="a@example.com", original=None, now=NOW, lang="en",
                                    reason="too_long", detail="x", start=start,
                                    end=start + timedelta(hours=10), participants=5))
    assert "at most 480 minutes; you asked for 600" in text


def test_unknown_rule_reason_falls_back_to_the_ledgers_sentence():
    start = datetime(2025, 1, 14, 9, 0, tzinfo=UTC)
    text = body(compose.refuse_rule(SETTINGS, to="a@example.com", original=None, now=NOW, lang="en",
                                    reason="cancelled", detail="Booking CB-7K2Q9 is cancelled.",
                                    start=start, end=start + timedelta(hours=1), participants=5))
    assert "Booking CB-7K2Q9 is cancelled." in text


@pytest.mark.parametrize("problem", list(Problem))
@pytest.mark.parametrize("lang", ["de", "en"])
def test_every_refusal_text_renders_in_both_languages(problem, lang):
    msg = compose.refusal(problem, SETTINGS, to="a@example.com", original=original(), now=NOW,
                          lang=lang, sender="a@example.com", reference="CB-7K2Q9")
    text = body(msg)
    assert "{" not in text
    assert ("Guten Tag" in text) == (lang == "de")


# --- issue 7 point 15: who dials what in the .ics, the example date ------------------------------

def test_the_organizers_ics_location_is_the_premium_number_the_organizer_dials():
    b = booking(dial_in_mode=DialInMode.INITIATOR_PAYS)
    _, event, _ = calendar(confirm(b))
    assert PREMIUM in str(event["LOCATION"]) and TOLLFREE not in str(event["LOCATION"])
    assert PREMIUM in str(event["DESCRIPTION"])
    _, cancelled, _ = calendar(compose.cancellation(b, SETTINGS, to="alice@example.com",
                                                    original=None, now=NOW))
    assert PREMIUM in str(cancelled["LOCATION"])
    # the invitees' entries keep the toll-free number they dial
    _, theirs, _ = calendar(compose.invitee_mail(b, "bob@example.com", SETTINGS, now=NOW))
    assert TOLLFREE in str(theirs["LOCATION"]) and PREMIUM not in str(theirs["LOCATION"])


def test_a_reply_to_an_invitation_carries_the_invitations_sequence():
    b = booking(invite_uid="outlook-uid-123@example.com", invite_sequence=4, sequence=1)
    _, event, _ = calendar(confirm(b))
    assert int(event["SEQUENCE"]) == 4


@pytest.mark.parametrize("lang, label", [("en", "Date: "), ("de", "Datum: ")])
def test_the_example_date_of_a_no_date_refusal_is_a_week_after_the_mail(lang, label):
    mail = original()
    mail["Date"] = "Mon, 01 Dec 2025 09:00:00 +0100"
    text = body(compose.refuse_missing(SETTINGS, to="alice@example.com", original=mail,
                                       now=datetime(2025, 12, 1, 8, 5, tzinfo=UTC), lang=lang,
                                       missing=("start",)))
    assert f"{label}08.12.2025 10:00" in text
    # an old mail answered late: the example is still in the future
    late = body(compose.refuse_missing(SETTINGS, to="alice@example.com", original=mail,
                                       now=datetime(2026, 3, 2, 8, 0, tzinfo=UTC), lang=lang,
                                       missing=("start",)))
    assert f"{label}09.03.2026 10:00" in late
