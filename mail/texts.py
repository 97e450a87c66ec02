"""The words of the bot's mails, German and English (data only, used by `mail.compose`).

Owns wording, nothing else: no logic, no imports. Placeholders are `str.format` fields.
Command words (cancel/change) appear here only inside `followup_hint`, which reaches the agent
again only as quoted text; subjects use none of them.
"""

DAYS = {
    "en": ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"),
    "de": ("Montag", "Dienstag", "Mittwoch", "Donnerstag", "Freitag", "Samstag", "Sonntag"),
}
MONTHS = {
    "en": ("January", "February", "March", "April", "May", "June", "July", "August",
           "September", "October", "November", "December"),
    "de": ("Januar", "Februar", "März", "April", "Mai", "Juni", "Juli", "August",
           "September", "Oktober", "November", "Dezember"),
}

TEXTS = {
    "en": {
        "greeting": "Hello,",
        "signature": "Kind regards\n{name} (automatic reply)",
        "default_subject": "Re: your conference booking",
        "reference": "Reference",
        "title": "Title",
        "when": "When",
        "as_written": "As written in your mail",
        "participants": "Participants",
        "invitees": "Invitees",
        "not_invited": ("Not invited by mail (more addresses than participants, or more than "
                        "{limit}); please pass the dial-in number and participant PIN on "
                        "yourself"),
        "status": "Status",
        "state_active": "confirmed",
        "state_cancelled": "cancelled",
        "phone": "Phone",
        "pin": "PIN",
        "participant_pin": "Participant PIN",
        "moderator_pin": "Moderator PIN",
        "moderator_note": "(for you only: do not pass it on)",
        "dial_in": "Dial-in number",
        "dial_in_everyone": "Dial-in number (for everyone)",
        "dial_in_organizer": "You (the organizer) dial",
        "dial_in_participants": "All other participants dial (toll-free, the cost is charged to you)",
        "no_number": "(no dial-in number configured, please contact the operator)",
        "confirm_subject": "Confirmed",
        "changed_subject": "Changed",
        "invite_subject": "Invitation",
        "cancel_subject": "Cancelled",
        "status_subject": "Status",
        "confirm_intro": "your telephone conference is booked.",
        "changed_intro": "your telephone conference has been changed. The new details:",
        "invite_intro": "{organizer} invites you to a telephone conference.",
        "invite_changed_intro": "{organizer} has changed the telephone conference. The new details:",
        "cancel_intro": "your telephone conference {reference} \"{title}\" ({when}) is cancelled. "
                        "The PINs no longer work.",
        "cancel_invitee_intro": "{organizer} has cancelled the telephone conference \"{title}\" ({when}).",
        "uninvited_intro": "{organizer} has updated the telephone conference \"{title}\" ({when}) "
                           "and no longer invites you to it.",
        "replayed_invitation": "this invitation (SEQUENCE {sequence}) is already booked as "
                               "{reference}; nothing was changed and nobody was mailed again. "
                               "To change the conference, send the updated invitation from your "
                               "calendar or reply to the confirmation.",
        "kept": "Your booking {reference} stays as it was: {when}, {participants} participants.",
        "unknown_invitation": "this calendar cancellation names an event that was never booked "
                              "here (or was booked from another address), so there was nothing "
                              "to cancel.",
        "followup_hint": "Reply to this mail to manage the booking: write \"cancel\" to cancel it, "
                         "\"change\" with a new time or number of participants to change it, or "
                         "anything else to get its status.",
        "not_allowed": "we are sorry: conferences can only be booked by mail from registered "
                       "addresses, and {sender} is not one of them. Please ask your administrator "
                       "to register your address or domain.",
        "nobody_allowed": "we are sorry: this service does not accept bookings by mail at the "
                          "moment (no sender address is enabled). Please contact your administrator.",
        "unknown_reference": "we have no booking with the reference {reference}. Please check the "
                             "reference in the subject.",
        "not_organizer": "only the organizer of booking {reference} can change, cancel or query it "
                         "by mail, and your address {sender} is not the organizer's.",
        "already_cancelled": "booking {reference} is already cancelled; nothing was changed.",
        "nothing_to_change": "to change booking {reference}, please write what should change, "
                             "for example \"change to 15:00\", \"change to 90 minutes\" or "
                             "\"change to 12 participants\". Nothing was changed.",
        "rate_limited": "you have sent more than {limit} mails within an hour. Further mails from "
                        "you are not processed until that hour is over.",
        "error": "we could not process your mail because of an internal error. Your mail has "
                 "been kept and will be looked at; you do not need to send it again.",
        "missing_intro": "we could not book your conference because something is missing or "
                         "unclear:",
        "example": "For example:\n  Date: {date} 10:00\n  Duration: 60 minutes\n"
                   "  Participants: 8\n  Title: Project meeting\n"
                   "  Invitees: anna@example.com, ben@example.com",
        "full_lines": "the requested time ({when}) is fully booked: only {free} lines are free, "
                      "and you asked for {participants}.",
        "full_room_size": "a conference can have at most {room_max} participants, and you asked "
                          "for {participants} ({when}).",
        "proposals": "The nearest free times of the same length:",
        "no_proposals": "We found no free time of the same length nearby; please try another day.",
        "rule_intro": "we could not book your conference:",
    },
    "de": {
        "greeting": "Guten Tag,",
        "signature": "Mit freundlichen Grüßen\n{name} (automatische Antwort)",
        "default_subject": "AW: Ihre Konferenzbuchung",
        "reference": "Buchungsnummer",
        "title": "Titel",
        "when": "Termin",
        "as_written": "Wie in Ihrer Mail angegeben",
        "participants": "Teilnehmende",
        "invitees": "Eingeladen",
        "not_invited": ("Nicht per Mail eingeladen (mehr Adressen als Teilnehmende oder mehr "
                        "als {limit}); bitte geben Sie Einwahlnummer und Teilnehmer-PIN selbst "
                        "weiter"),
        "status": "Status",
        "state_active": "bestätigt",
        "state_cancelled": "storniert",
        "phone": "Tel.",
        "pin": "PIN",
        "participant_pin": "Teilnehmer-PIN",
        "moderator_pin": "Moderator-PIN",
        "moderator_note": "(nur für Sie: bitte nicht weitergeben)",
        "dial_in": "Einwahlnummer",
        "dial_in_everyone": "Einwahlnummer (für alle)",
        "dial_in_organizer": "Sie (Organisator) wählen",
        "dial_in_participants": "Alle anderen Teilnehmenden wählen (gebührenfrei, die Kosten "
                                "tragen Sie)",
        "no_number": "(keine Einwahlnummer eingerichtet, bitte wenden Sie sich an die Vermittlung)",
        "confirm_subject": "Bestätigt",
        "changed_subject": "Geändert",
        "invite_subject": "Einladung",
        "cancel_subject": "Storniert",
        "status_subject": "Status",
        "confirm_intro": "Ihre Telefonkonferenz ist gebucht.",
        "changed_intro": "Ihre Telefonkonferenz wurde geändert. Die neuen Daten:",
        "invite_intro": "{organizer} lädt Sie zu einer Telefonkonferenz ein.",
        "invite_changed_intro": "{organizer} hat die Telefonkonferenz geändert. Die neuen Daten:",
        "cancel_intro": "Ihre Telefonkonferenz {reference} „{title}“ ({when}) ist storniert. "
                        "Die PINs gelten nicht mehr.",
        "cancel_invitee_intro": "{organizer} hat die Telefonkonferenz „{title}“ ({when}) abgesagt.",
        "uninvited_intro": "{organizer} hat die Telefonkonferenz „{title}“ ({when}) geändert "
                           "und lädt Sie nicht mehr dazu ein.",
        "replayed_invitation": "diese Einladung (SEQUENCE {sequence}) ist bereits als {reference} "
                               "gebucht; es wurde nichts geändert und niemand erneut angeschrieben. "
                               "Um die Konferenz zu ändern, senden Sie die geänderte Einladung "
                               "aus Ihrem Kalender oder antworten Sie auf die Bestätigung.",
        "kept": "Ihre Buchung {reference} bleibt unverändert: {when}, {participants} Teilnehmende.",
        "unknown_invitation": "diese Kalender-Absage betrifft einen Termin, der hier nie gebucht "
                              "wurde (oder von einer anderen Adresse), es gab also nichts zu "
                              "stornieren.",
        "followup_hint": "Antworten Sie auf diese Mail, um die Buchung zu verwalten: „stornieren“ "
                         "storniert sie, „ändern“ mit neuer Uhrzeit oder Teilnehmerzahl ändert sie, "
                         "jede andere Antwort liefert den Status.",
        "not_allowed": "leider können Konferenzen per Mail nur von freigeschalteten Adressen "
                       "gebucht werden, und {sender} gehört nicht dazu. Bitte lassen Sie Ihre "
                       "Adresse oder Domain von Ihrer Administration freischalten.",
        "nobody_allowed": "leider nimmt dieser Dienst derzeit keine Buchungen per Mail an (keine "
                          "Absenderadresse ist freigeschaltet). Bitte wenden Sie sich an Ihre "
                          "Administration.",
        "unknown_reference": "zur Buchungsnummer {reference} gibt es keine Buchung. Bitte prüfen "
                             "Sie die Nummer im Betreff.",
        "not_organizer": "nur der Organisator der Buchung {reference} kann sie per Mail ändern, "
                         "stornieren oder abfragen, und Ihre Adresse {sender} ist nicht die des "
                         "Organisators.",
        "already_cancelled": "die Buchung {reference} ist bereits storniert; es wurde nichts geändert.",
        "nothing_to_change": "um die Buchung {reference} zu ändern, schreiben Sie bitte, was sich "
                             "ändern soll, zum Beispiel „ändern auf 15:00“, „ändern auf 90 Minuten“ "
                             "oder „ändern auf 12 Teilnehmer“. Es wurde nichts geändert.",
        "rate_limited": "Sie haben innerhalb einer Stunde mehr als {limit} Mails geschickt. Weitere "
                        "Mails von Ihnen werden erst nach Ablauf dieser Stunde bearbeitet.",
        "error": "Ihre Mail konnte wegen eines internen Fehlers nicht bearbeitet werden. Sie ist "
                 "gespeichert und wird geprüft; Sie müssen sie nicht erneut senden.",
        "missing_intro": "Ihre Konferenz konnte nicht gebucht werden, weil etwas fehlt oder "
                         "unklar ist:",
        "example": "Zum Beispiel:\n  Datum: {date} 10:00\n  Dauer: 60 Minuten\n"
                   "  Teilnehmer: 8\n  Titel: Projektbesprechung\n"
                   "  Einladen: anna@example.com, ben@example.com",
        "full_lines": "der gewünschte Termin ({when}) ist ausgebucht: nur {free} Leitungen sind "
                      "frei, Sie haben {participants} angefragt.",
        "full_room_size": "eine Konferenz kann höchstens {room_max} Teilnehmende haben, Sie haben "
                          "{participants} angefragt ({when}).",
        "proposals": "Die nächsten freien Termine gleicher Länge:",
        "no_proposals": "In der Nähe ist kein Termin gleicher Länge frei; bitte versuchen Sie "
                        "einen anderen Tag.",
        "rule_intro": "Ihre Konferenz konnte nicht gebucht werden:",
    },
}

# Names the parser may put in ParseError.missing; unknown names are shown as they are.
MISSING_LABELS = {
    "en": {"start": "the date and start time", "date": "the date", "time": "the start time",
           "end": "the end time or duration", "duration": "the duration",
           "participants": "the number of participants", "title": "a title"},
    "de": {"start": "Datum und Beginn", "date": "das Datum", "time": "die Uhrzeit des Beginns",
           "end": "Ende oder Dauer", "duration": "die Dauer",
           "participants": "die Zahl der Teilnehmenden", "title": "ein Titel"},
}

# bot.booking.ledger.Refused reasons; an unknown reason falls back to the ledger's own detail sentence.
RULE_TEXTS = {
    "en": {
        "past": "the requested time ({when}) is in the past.",
        "too_long": "a conference may last at most {max_minutes} minutes; you asked for {minutes}.",
        "too_short": "the end must come after the start ({when}).",
        "too_far_ahead": "conferences can be booked at most {days} days ahead ({when}).",
        "too_many_participants": "a conference can have at most {room_max} participants; you "
                                 "asked for {participants}.",
        "no_participants": "please give a number of participants of at least 1.",
    },
    "de": {
        "past": "der gewünschte Termin ({when}) liegt in der Vergangenheit.",
        "too_long": "eine Konferenz darf höchstens {max_minutes} Minuten dauern; Sie haben "
                    "{minutes} angefragt.",
        "too_short": "das Ende muss nach dem Beginn liegen ({when}).",
        "too_far_ahead": "Konferenzen können höchstens {days} Tage im Voraus gebucht werden ({when}).",
        "too_many_participants": "eine Konferenz kann höchstens {room_max} Teilnehmende haben; "
                                 "Sie haben {participants} angefragt.",
        "no_participants": "bitte geben Sie mindestens einen Teilnehmenden an.",
    },
}

# mail.parse.ParseError reasons (its `error` sentence is English only); limits from settings.
PARSE_REASONS = {
    "en": {
        "past": "the requested time is in the past.",
        "too_long": "a conference may last at most {max_minutes} minutes.",
        "too_far_ahead": "conferences can be booked at most {days} days ahead.",
        "too_many_participants": "a conference can have at most {room_max} participants.",
        "unreadable": "we could not read your mail (unknown character set or format).",
        "not_a_booking": "we found no booking request in your mail.",
        "foreign_language": "your mail does not seem to be written in German or English, the "
                            "languages this service reads. Please write again in English or German.",
    },
    "de": {
        "past": "der gewünschte Termin liegt in der Vergangenheit.",
        "too_long": "eine Konferenz darf höchstens {max_minutes} Minuten dauern.",
        "too_far_ahead": "Konferenzen können höchstens {days} Tage im Voraus gebucht werden.",
        "too_many_participants": "eine Konferenz kann höchstens {room_max} Teilnehmende haben.",
        "unreadable": "Ihre Mail konnte nicht gelesen werden (unbekannter Zeichensatz oder Format).",
        "not_a_booking": "in Ihrer Mail haben wir keine Buchungsanfrage gefunden.",
        "foreign_language": "Ihre Mail scheint weder auf Deutsch noch auf Englisch geschrieben zu "
                            "sein, den Sprachen dieses Dienstes. Bitte schreiben Sie uns auf "
                            "Deutsch oder Englisch.",
    },
}
