"""Undeclared 8-bit mail (issue 7 point 15): raw 8-bit bytes in the Subject, or a text part
without a charset, are decoded by guessing (mail.charset), not shown as mojibake or U+FFFD.
Pure: raw bytes in memory."""
from __future__ import annotations

from datetime import datetime, timezone

import pytest

from bot.config.settings import MailSettings, Settings
from mail.charset import guess_decode
from mail.mime import header, read_message
from mail.parse import Parsed, parse_booking

NOW = datetime(2025, 12, 1, 8, 0, tzinfo=timezone.utc)
SETTINGS = Settings(mail=MailSettings(address="konferenz@confbot.example"))


def raw_mail(subject: str, body: str, encoding: str, content_type: str = "text/plain") -> bytes:
    return (f"From: max@example.de\r\nTo: konferenz@confbot.example\r\nSubject: {subject}\r\n"
            f"Date: Mon, 1 Dec 2025 09:00:00 +0100\r\nMIME-Version: 1.0\r\n"
            f"Content-Type: {content_type}\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
            f"{body}\r\n").encode(encoding)


def title_of(raw: bytes) -> str:
    result = parse_booking(raw, now=NOW, settings=SETTINGS)
    assert isinstance(result, Parsed), result
    return result.request.title


@pytest.mark.parametrize("encoding", ["latin-1", "cp1252", "utf-8"])
def test_an_undeclared_8bit_subject_becomes_a_readable_title(encoding):
    raw = raw_mail("Übergabe der Größenprüfung für Jürgen", "morgen um 10 Uhr, 5 Teilnehmer",
                   encoding)
    assert title_of(raw) == "Übergabe der Größenprüfung für Jürgen"


@pytest.mark.parametrize("encoding", ["cp1251", "koi8-r"])
def test_an_undeclared_cyrillic_body_is_read_in_its_charset_not_as_cp1252(encoding):
    raw = raw_mail("Telko", "Thema: Совещание по проекту\nmorgen um 10 Uhr, 5 Teilnehmer",
                   encoding)
    assert title_of(raw) == "Совещание по проекту"


def test_8bit_bytes_labelled_us_ascii_are_guessed_too():
    raw = raw_mail("Telko", "Thema: Besprechung – Größe „Jürgen“\nmorgen um 10 Uhr, 5 Teilnehmer",
                   "cp1252", "text/plain; charset=us-ascii")
    assert title_of(raw) == "Besprechung – Größe „Jürgen“"


def test_a_declared_charset_is_not_second_guessed():
    raw = raw_mail("=?iso-8859-1?q?=DCbergabe?=", "Thema: Größe\nmorgen um 10 Uhr, 5 Teilnehmer",
                   "iso-8859-1", "text/plain; charset=iso-8859-1")
    assert title_of(raw) == "Größe"
    assert header(read_message(raw), "Subject") == "Übergabe"


def test_the_guess_never_raises_and_keeps_every_byte_as_some_character():
    data = bytes(range(128, 256))
    assert len(guess_decode(data)) >= 64
    assert guess_decode("plain".encode()) == "plain"
