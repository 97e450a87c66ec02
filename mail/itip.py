"""Calendar updates and cancellations (pure policy, RFC 5546 iTIP), mixed into `mail.agent.Agent`.

Owns what a calendar mail means for a booking that came from an invitation with the same UID:
- REQUEST (or PUBLISH) with a higher SEQUENCE from the booking's organizer changes that booking:
  capacity re-checked (a refusal keeps the booking as it was and says so), the same reference
  and PINs, the organizer gets a "changed" confirmation (a REPLY under the new SEQUENCE),
  invitees still invited are told of the change, new ones invited, dropped ones told.
- the same or a lower SEQUENCE is a replay (Outlook's "send again", a forward, a re-delivery
  under a new Message-ID): nothing is booked, invitees get nothing, the organizer gets one short
  status note saying that nothing changed (a silent drop would leave them wondering whether
  the bot saw it; the same Message-ID again is the pipeline's duplicate and gets nothing at all).
- CANCEL from the booking's organizer cancels it (the same mails as a mailed "cancel"); from
  anybody else it is refused; for an unknown UID the sender is told there was nothing to cancel.
- after a crash between the ledger write and the queued replies, the replay of the same mail
  (`updated_by` / `cancelled_by` is its key) sends the change or cancellation again.
A REQUEST for an unknown UID (or a higher SEQUENCE of a cancelled event) is a new booking: the
agent's ordinary path. Must not touch sockets, files, clocks or the store's internals.
"""
from __future__ import annotations

from datetime import datetime
from email.message import EmailMessage

from bot.booking.domain import Booking
from bot.booking.ledger import Reserved
from mail import compose
from mail.compose import Problem
from mail.invite import Invitation
from mail.parse import ParseError, parse_booking

# Methods that carry the organizer's current version of an event.
UPDATING = frozenset({"REQUEST", "PUBLISH", ""})


class CalendarPolicy:
    """The agent's calendar half; uses the agent's ledger, settings, key and helpers."""

    def _calendar(self, msg: EmailMessage, sender: str, inv: Invitation,
                  now: datetime) -> "Decision | None":  # noqa: F821 (mail.agent.Decision)
        """A decision for a calendar mail about a known event, or None: book it as new."""
        if not inv.uid or (inv.method not in UPDATING and inv.method != "CANCEL"):
            return None
        known = self.ledger.find_by_invite_uid(inv.uid)
        if inv.method == "CANCEL":
            return self._calendar_cancel(msg, sender, inv, known, now)
        if known is None:
            return None
        if self._key is not None and self.ledger.booking_for_message(self._key) == known:
            return None   # this very mail booked it: the ordinary path resends its confirmation
        lang = self._language(msg, known)
        if not known.active:
            if inv.sequence > known.invite_sequence:
                return None   # a new version of a cancelled event: a new booking
            return self._refuse(Problem.ALREADY_CANCELLED, msg, sender, now,
                                f"{known.reference} already cancelled", lang,
                                reference=known.reference)
        if known.organizer.lower() != sender:
            return self._refuse(Problem.NOT_ORGANIZER, msg, sender, now,
                                f"not the organizer of {known.reference}", lang,
                                reference=known.reference)
        if inv.sequence > known.invite_sequence:
            return self._calendar_update(msg, sender, inv, known, now, lang)
        if known.updated_by is not None and known.updated_by == self._key:
            # This very mail changed it, but its replies were never queued (a crash).
            return self._updated(msg, sender, known, known, now, lang, resend=True)
        note = compose.status(known, self.settings, to=sender, original=msg, now=now,
                              lang=lang, note=("replayed_invitation",
                                               {"sequence": inv.sequence}))
        return self._decision((note,), f"replay {known.reference}: SEQUENCE {inv.sequence}"
                                       f" <= {known.invite_sequence}, nothing changed")

    def _calendar_cancel(self, msg: EmailMessage, sender: str, inv: Invitation,
                         known: Booking | None, now: datetime):
        lang = self._language(msg, known)
        if known is None:
            return self._refuse(Problem.UNKNOWN_INVITATION, msg, sender, now,
                                f"cancel of unknown invitation {inv.uid}", lang)
        if known.organizer.lower() != sender:
            return self._refuse(Problem.NOT_ORGANIZER, msg, sender, now,
                                f"not the organizer of {known.reference}", lang,
                                reference=known.reference)
        if not known.active:
            if known.cancelled_by is not None and known.cancelled_by == self._key:
                return self._cancelled(msg, sender, known, now, lang)   # replay after a crash
            return self._refuse(Problem.ALREADY_CANCELLED, msg, sender, now,
                                f"{known.reference} already cancelled", lang,
                                reference=known.reference)
        return self._cancel(msg, sender, known, now, lang)

    def _calendar_update(self, msg: EmailMessage, sender: str, inv: Invitation, known: Booking,
                         now: datetime, lang: str):
        parsed = parse_booking(msg, now=now, settings=self.settings)
        if isinstance(parsed, ParseError):
            reply = compose.refuse_missing(self.settings, to=sender, original=msg, now=now,
                                           lang=parsed.language, missing=parsed.missing,
                                           error=parsed.error, reason=parsed.reason,
                                           bilingual=parsed.bilingual, kept=known)
            why = parsed.reason or "missing " + (", ".join(parsed.missing) or "details")
            return self._decision((reply,), f"refused update of {known.reference}: {why}")
        request = parsed.request
        result = self.ledger.change(known.reference, now, self.settings.capacity,
                                    start=request.start, end=request.end,
                                    participants=request.participants, title=request.title,
                                    invitees=tuple(request.invitees),
                                    invite_sequence=inv.sequence, updated_by=self._key)
        if not isinstance(result, Reserved):
            return self._not_reserved(result, msg, sender, now, lang, request.start,
                                      request.end, request.participants, kept=known)
        return self._updated(msg, sender, known, result.booking, now, lang)

    def _updated(self, msg: EmailMessage, sender: str, before: Booking, updated: Booking,
                 now: datetime, lang: str, *, resend: bool = False):
        """The organizer's "changed" confirmation; invitees kept are told of the change, new
        ones invited, dropped ones told they are no longer invited."""
        invited, not_invited = self._invitees(updated)
        was = {a.lower() for a in self._invitees(before)[0]}
        now_invited = {a.lower() for a in invited}
        replies = [compose.confirmation(updated, self.settings, to=sender, original=msg,
                                        now=now, lang=lang, changed=True,
                                        not_invited=not_invited)]
        replies += [compose.invitee_mail(updated, invitee, self.settings, now=now,
                                         changed=invitee.lower() in was or resend)
                    for invitee in invited]
        replies += [compose.cancellation_notice(updated, invitee, self.settings, now=now,
                                                removed=True)
                    for invitee in self._invitees(before)[0] if invitee.lower() not in now_invited]
        return self._decision(tuple(replies), f"updated {updated.reference}: SEQUENCE "
                                              f"{updated.invite_sequence}")
