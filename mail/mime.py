"""MIME extraction (pure): raw bytes → message → readable texts and calendar parts.

Owns: reading a message without ever raising, choosing the best alternative of a
multipart/alternative, decoding any charset and transfer encoding, turning HTML into text
(quoted <blockquote>s dropped), collecting text/calendar and application/ics parts (also inside
forwarded message/rfc822 attachments), and safe header access (sender, Date, Subject).
Must not touch: the network, the clock, booking rules, or date/count wording (mail.datetext).
"""
from __future__ import annotations

import codecs
import email
import email.policy
import email.utils
import html
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from email.message import EmailMessage, Message
from html.parser import HTMLParser

CALENDAR_TYPES = frozenset({"text/calendar", "application/ics", "text/x-vcalendar",
                            "application/x-ics"})


@dataclass(frozen=True, slots=True)
class Content:
    """What a message says, in reading order. `unreadable` names charsets that could not be
    decoded (their parts are left out of `texts`)."""
    texts: tuple[str, ...]
    calendars: tuple[bytes, ...]
    unreadable: tuple[str, ...] = ()


def read_message(raw: bytes) -> EmailMessage:
    """Parse raw bytes with the modern policy. Never raises: a hopeless input becomes a message
    whose body is the bytes decoded leniently."""
    try:
        msg = email.message_from_bytes(bytes(raw), policy=email.policy.default)
        assert isinstance(msg, EmailMessage)
        return msg
    except Exception:  # the email package is lenient, but this promise is ours to keep
        fallback = EmailMessage()
        fallback.set_content(bytes(raw).decode("utf-8", "replace"))
        return fallback


def header(msg: Message, name: str) -> str:
    """A header as text, '' when absent or undecodable."""
    try:
        value = msg.get(name)
        return "" if value is None else " ".join(str(value).split())
    except Exception:
        return ""


def sender(msg: Message) -> str:
    """The From addr-spec, lower-cased; '' when there is no usable address."""
    try:
        value = msg.get("From")
        if value is None:
            return ""
        addresses = getattr(value, "addresses", None)
        if addresses:
            addr = addresses[0].addr_spec
        else:
            addr = email.utils.parseaddr(str(value))[1]
    except Exception:
        addr = email.utils.parseaddr(header(msg, "From"))[1]
    addr = addr.strip().strip("<>").lower()
    return addr if re.fullmatch(r"[^@\s<>]+@[^@\s<>]+", addr) else ""


def sent_at(msg: Message) -> datetime | None:
    """The Date header as an aware datetime (a '-0000' or zone-less date is taken as UTC)."""
    text = header(msg, "Date")
    if not text:
        return None
    try:
        value = email.utils.parsedate_to_datetime(text)
    except Exception:
        return None
    if value is None:
        return None
    return value if value.tzinfo is not None else value.replace(tzinfo=timezone.utc)


def extract(msg: Message) -> Content:
    texts: list[str] = []
    calendars: list[bytes] = []
    unreadable: list[str] = []
    _walk(msg, texts, calendars, unreadable, depth=0)
    return Content(tuple(t for t in texts if t.strip()), tuple(calendars), tuple(unreadable))


def _walk(part: Message, texts: list[str], calendars: list[bytes], unreadable: list[str],
          depth: int) -> None:
    if depth > 12:   # a pathological nesting is not a booking
        return
    ctype = _content_type(part)
    if part.is_multipart():
        children = _children(part)
        if ctype == "multipart/alternative":
            _walk_alternative(children, texts, calendars, unreadable, depth)
        else:
            for child in children:
                _walk(child, texts, calendars, unreadable, depth + 1)
        return
    filename = _filename(part)
    if ctype in CALENDAR_TYPES or filename.endswith((".ics", ".vcs")):
        payload = _payload(part)
        if payload:
            calendars.append(payload)
        return
    if _is_attachment(part) or not ctype.startswith("text/"):
        return
    text = decode_text(part, unreadable)
    if text is None:
        return
    texts.append(html_to_text(text) if ctype == "text/html" else text)


def _walk_alternative(children: list[Message], texts: list[str], calendars: list[bytes],
                      unreadable: list[str], depth: int) -> None:
    """Calendars from every alternative; text from the best one: plain, else HTML, else a
    nested multipart (Outlook's multipart/related around the HTML)."""
    best: list[str] = []
    rank_of_best = 99
    for child in children:
        ctype = _content_type(child)
        if ctype in CALENDAR_TYPES:
            payload = _payload(child)
            if payload:
                calendars.append(payload)
            continue
        found: list[str] = []
        if child.is_multipart():
            _walk(child, found, calendars, unreadable, depth + 1)
            rank = 2
        elif ctype == "text/plain":
            found = [t for t in [decode_text(child, unreadable)] if t]
            rank = 0
        elif ctype == "text/html":
            text = decode_text(child, unreadable)
            found = [html_to_text(text)] if text else []
            rank = 1
        else:
            continue
        if any(t.strip() for t in found) and rank < rank_of_best:
            best, rank_of_best = found, rank
    texts.extend(best)


def _children(part: Message) -> list[Message]:
    try:
        payload = part.get_payload()
    except Exception:
        return []
    return [p for p in payload if isinstance(p, Message)] if isinstance(payload, list) else []


def _content_type(part: Message) -> str:
    try:
        return part.get_content_type().lower()
    except Exception:
        return "text/plain"


def _filename(part: Message) -> str:
    try:
        return (part.get_filename() or "").lower()
    except Exception:
        return ""


def _is_attachment(part: Message) -> bool:
    try:
        return (part.get_content_disposition() or "") == "attachment"
    except Exception:
        return False


def _payload(part: Message) -> bytes:
    try:
        data = part.get_payload(decode=True)
    except Exception:
        return b""
    return data if isinstance(data, bytes) else b""


def decode_text(part: Message, unreadable: list[str]) -> str | None:
    """Decode a text part's payload with its declared charset. An unknown charset is tried as
    UTF-8; if that fails too the charset is recorded in `unreadable` and None returned.
    A wrong-but-known declaration (8-bit bytes labelled us-ascii) falls back to UTF-8, then cp1252."""
    data = _payload(part)
    try:
        charset = (part.get_content_charset() or "us-ascii").strip().lower()
    except Exception:
        charset = "us-ascii"
    try:
        codecs.lookup(charset)
    except (LookupError, ValueError):
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError:
            unreadable.append(charset)
            return None
    if charset in ("us-ascii", "ascii"):
        try:
            return data.decode("ascii")
        except UnicodeDecodeError:
            charset = "utf-8"
    try:
        return data.decode(charset)
    except UnicodeDecodeError:
        if charset.replace("-", "") == "utf8":
            return data.decode("cp1252", "replace")
        return data.decode(charset, "replace")
    except Exception:
        return data.decode("utf-8", "replace")


# --- HTML → text ------------------------------------------------------------------------------

_BLOCK_TAGS = frozenset({"p", "div", "br", "tr", "li", "h1", "h2", "h3", "h4", "h5", "h6",
                         "table", "ul", "ol", "hr", "section", "article", "header", "footer"})
_SKIP_TAGS = frozenset({"style", "script", "head", "title", "blockquote"})
_VOID_TAGS = frozenset({"br", "hr", "img", "meta", "link", "input", "col", "area", "base", "wbr"})


class _TextExtractor(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.out: list[str] = []
        self.skip_depth = 0
        self.stack: list[str] = []

    def handle_starttag(self, tag: str, attrs) -> None:
        tag = tag.lower()
        if tag in _BLOCK_TAGS:
            self.out.append("\n")
        if tag in _VOID_TAGS:
            return
        quote = any(k == "class" and v and "gmail_quote" in v for k, v in attrs) and tag != "div"
        if tag in _SKIP_TAGS or quote or self.skip_depth:
            self.skip_depth += 1
        self.stack.append(tag)

    def handle_endtag(self, tag: str) -> None:
        tag = tag.lower()
        if tag in _VOID_TAGS:
            return
        if tag in self.stack:
            while self.stack:
                top = self.stack.pop()
                if self.skip_depth:
                    self.skip_depth -= 1
                if top == tag:
                    break
        if tag in _BLOCK_TAGS:
            self.out.append("\n")

    def handle_data(self, data: str) -> None:
        if not self.skip_depth:
            self.out.append(data)


def html_to_text(markup: str) -> str:
    parser = _TextExtractor()
    try:
        parser.feed(markup)
        parser.close()
        text = "".join(parser.out)
    except Exception:
        text = html.unescape(re.sub(r"<[^>]*>", " ", markup))
    lines = (" ".join(line.split()) for line in text.replace("\xa0", " ").splitlines())
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()
