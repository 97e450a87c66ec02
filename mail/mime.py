"""MIME extraction (pure): raw bytes → message → readable texts and calendar parts.

Owns: reading a message without ever raising, choosing the best alternative of a
multipart/alternative, decoding any charset and transfer encoding, turning HTML into text
(quoted <blockquote>s dropped), collecting text/calendar and application/ics parts (also inside
forwarded message/rfc822 attachments), safe header access (sender, Date, Subject), a mail's
de-duplication key (`message_key`) and reading the receiving MTA's verdict from
Authentication-Results headers (RFC 8601, `authenticated`).
Must not touch: the network, the clock, booking rules, or date/count wording (mail.datetext).
"""
from __future__ import annotations

import codecs
import email
import hashlib
import email.policy
import email.utils
import html
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from email.message import EmailMessage, Message
from html.parser import HTMLParser

from mail.charset import guess_decode, undeclared_header

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
    """A header as text, '' when absent or undecodable. Raw 8-bit bytes in it (no RFC 2047
    encoding, no declared charset) are decoded by guessing (mail.charset), not as U+FFFD."""
    try:
        raw = next((v for k, v in msg.raw_items() if k.lower() == name.lower()), None)
        guessed = undeclared_header(raw) if isinstance(raw, str) else None
        if guessed is not None:
            return " ".join(guessed.split())
    except Exception:
        pass
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
    Undeclared 8-bit text, or 8-bit bytes labelled us-ascii or invalid as the UTF-8 they claim to
    be, are decoded by guessing (`mail.charset.guess_decode`: UTF-8, charset-normalizer, cp1252)."""
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
            return guess_decode(data)
    try:
        return data.decode(charset)
    except UnicodeDecodeError:
        if charset.replace("-", "").replace("_", "") == "utf8":
            return guess_decode(data)
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


# --- identity: the de-duplication key and sender authentication ------------------------------

def message_key(raw: bytes, message_id: str | None) -> str:
    """What identifies one mail across SMTP retries, IMAP re-fetches and journal replays: its
    Message-ID, or, for a mail without one, a digest of its exact bytes."""
    if message_id and message_id.strip():
        return message_id.strip()
    return f"<{hashlib.sha256(bytes(raw)).hexdigest()}@confbot>"


_COMMENT_OR_QUOTED = re.compile(r'"(?:[^"\\]|\\.)*"|\(')
_PROPERTY = re.compile(r'([\w.-]+)\s*=\s*("(?:[^"\\]|\\.)*"|[^\s;]+)')


def _strip_comments(value: str) -> str:
    """RFC 5322 comments "( … )" (nested) removed; quoted strings kept as they are."""
    out, depth, i = [], 0, 0
    while i < len(value):
        ch = value[i]
        if depth == 0 and ch == '"':
            match = _COMMENT_OR_QUOTED.match(value, i)
            end = match.end() if match and match.group().startswith('"') else len(value)
            out.append(value[i:end])
            i = end
            continue
        if ch == "(":
            depth += 1
        elif ch == ")" and depth:
            depth -= 1
        elif ch == "\\" and depth:
            i += 1
        elif depth == 0:
            out.append(ch)
        i += 1
    return "".join(out)


def auth_results(value: str) -> tuple[str, list[dict[str, str]]]:
    """One Authentication-Results value → (authserv-id, [{"method": "dkim", "result": "pass",
    "header.d": "example.com", …}, …]); names lower-cased, quotes removed."""
    segments = [seg.strip() for seg in _strip_comments(value).split(";")]
    head = segments[0].split()
    authserv = head[0].strip('"').lower() if head else ""
    results = []
    for segment in segments[1:]:
        pairs = [(k.lower(), v.strip('"')) for k, v in _PROPERTY.findall(segment)]
        if not pairs:
            continue  # "none", or garbage
        method, result = pairs[0]
        results.append({**{k: v for k, v in pairs[1:]}, "method": method.split("/")[0],
                        "result": result.lower()})
    return authserv, results


def authenticated(msg: Message, authserv_id: str) -> bool:
    """True when the receiving MTA named `authserv_id` vouches for the From domain: dmarc=pass
    (for that header.from), dkim=pass with header.d (or header.i's domain) equal to it, or
    spf=pass with smtp.mailfrom in it. Only the TOPMOST Authentication-Results headers count,
    as long as they carry our authserv-id: anything below may have come with the mail and be
    forged (RFC 8601 section 5). A mail with more than one From address is never trusted."""
    try:
        froms = msg.get_all("From") or []
        if len(froms) != 1 or len(getattr(froms[0], "addresses", ()) or ()) > 1:
            return False
        domain = sender(msg).rpartition("@")[2].rstrip(".")
        if not domain:
            return False
        wanted = authserv_id.strip().lower()
        for value in msg.get_all("Authentication-Results") or []:
            authserv, results = auth_results(" ".join(str(value).split()))
            if authserv != wanted:
                return False   # the run of our own headers at the top has ended
            if any(_vouches(r, domain) for r in results):
                return True
        return False
    except Exception:
        return False


def _domain_of(value: str) -> str:
    return value.rpartition("@")[2].strip().strip("<>").rstrip(".").lower()


def _vouches(result: dict[str, str], domain: str) -> bool:
    if result["result"] != "pass":
        return False
    match result["method"]:
        case "dmarc":
            return _domain_of(result.get("header.from", domain)) == domain
        case "dkim":
            return domain in (_domain_of(result.get("header.d", "")),
                              _domain_of(result.get("header.i", "")))
        case "spf":
            return _domain_of(result.get("smtp.mailfrom", "")) == domain
    return False
