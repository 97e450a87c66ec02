"""Which part of a mail body is the booking (pure): quotes, signatures and forward headers.

Owns: cutting a body at the reply marker ("Am … schrieb …:", "On … wrote:", Outlook's
"-----Original Message-----" / "Von: … Gesendet: …" block), dropping "> " quoted lines, keeping
a forwarded message's body without its header lines (their dates and addresses are not the
booking), and cutting signatures ("-- ", closing formulas, contact lines); and which command
(cancel, change, status) the writer's own words give a follow-up (`read_command`).
Must not touch: MIME decoding (mail.mime), date/count wording (mail.datetext).
"""
from __future__ import annotations

import enum
import re

_FORWARD_MARKER = re.compile(
    r"^\s*-{2,}\s*(?:forwarded message|weitergeleitete nachricht|original message|"
    r"ursprüngliche nachricht|original-nachricht|nachricht weitergeleitet|begin forwarded message)"
    r"\s*-*\s*$|^\s*(?:begin forwarded message|anfang der weitergeleiteten nachricht)\s*:\s*$",
    re.IGNORECASE)
_FORWARD_WORDS = re.compile(r"forward|weitergeleitet", re.IGNORECASE)
_ATTRIBUTION_START = re.compile(r"^\s*(?:am|on|le|el)\s+\S", re.IGNORECASE)
_ATTRIBUTION_END = re.compile(r"(?:schrieb|wrote|a écrit|escribió)[^:]*:\s*$", re.IGNORECASE)
_HEADER_LINE = re.compile(
    r"^\s*\*?(?:from|von|sent|gesendet|date|datum|to|an|cc|kopie|subject|betreff|"
    r"reply-to|antwort an|importance|wichtigkeit)\*?\s*:", re.IGNORECASE)
_OUTLOOK_BLOCK_FIRST = re.compile(r"^\s*\*?(?:from|von)\*?\s*:", re.IGNORECASE)
_OUTLOOK_BLOCK_NEXT = re.compile(r"^\s*\*?(?:sent|gesendet|date|datum)\*?\s*:", re.IGNORECASE)
_SIGNATURE_DELIMITER = re.compile(r"^(?:--|—|__+|-- )\s*$")
_CLOSING = re.compile(
    r"^\s*(?:mit (?:den )?(?:freundlichen|besten|herzlichen) grü(?:ß|ss)en|mfg|"
    r"(?:viele|beste|liebe|herzliche|freundliche|schöne) grü(?:ß|ss)e|gru(?:ß|ss)|grü(?:ß|ss)e|"
    r"(?:best|kind|warm|warmest)(?: regards| wishes)?|regards|cheers|sincerely|yours(?: sincerely| truly)?|"
    r"thanks(?: and| &) regards|all the best|cordialement|bien à vous)\b[ ,.!]*(?:\S+[ ,.!]*){0,3}$",
    re.IGNORECASE)
_CONTACT_LINE = re.compile(
    r"^\s*(?:tel(?:efon)?|fon|phone|fax|mobil(?:e)?|handy|cell|mob|t|f|m|www|web|http|"
    r"bürozeiten|office hours|öffnungszeiten|sprechzeiten|amtsgericht|registergericht|hrb|"
    r"ust-?id|vat|sitz der gesellschaft|geschäftsführ\w*)\b\.?\s*[:.]?\s*", re.IGNORECASE)


def booking_text(body: str, *, forwarded_subject: bool = False) -> str:
    """The part of `body` that states the booking: the writer's own text, plus the body of a
    forwarded message (without its header block), with quotes and signatures removed."""
    lines = body.replace("\r\n", "\n").replace("\r", "\n").replace("\xa0", " ").split("\n")
    own, rest, is_forward = _split_at_marker(lines, forwarded_subject)
    parts = [_clean(own)]
    if is_forward and rest:
        parts.append(_clean(_drop_header_block(rest)))
    return "\n".join(p for p in parts if p.strip())


def _split_at_marker(lines: list[str], forwarded_subject: bool) -> tuple[list[str], list[str], bool]:
    for i, line in enumerate(lines):
        if _FORWARD_MARKER.match(line):
            forward = bool(_FORWARD_WORDS.search(line)) or forwarded_subject
            return lines[:i], lines[i + 1:], forward
        if _ATTRIBUTION_START.match(line) and not line.lstrip().startswith(">"):
            window = " ".join(lines[i:i + 3])
            for j in range(i, min(i + 3, len(lines))):
                if _ATTRIBUTION_END.search(lines[j]) and len(window) < 400:
                    return lines[:i], lines[j + 1:], False
        if _OUTLOOK_BLOCK_FIRST.match(line) and any(
                _OUTLOOK_BLOCK_NEXT.match(nxt) for nxt in lines[i + 1:i + 4]):
            # Outlook's reply and forward look the same; the subject (WG:/Fwd:) tells them apart.
            return lines[:i], lines[i:], forwarded_subject
    return lines, [], False


def _drop_header_block(lines: list[str]) -> list[str]:
    i = 0
    while i < len(lines) and (not lines[i].strip() or _HEADER_LINE.match(lines[i])
                              or (i and lines[i][:1] in " \t" and lines[i - 1].strip())):
        i += 1
    rest = lines[i:]
    # A forward of a forward: keep only the innermost message's body.
    own, inner, forward = _split_at_marker(rest, True)
    return own + (_drop_header_block(inner) if forward and inner else [])


def _clean(lines: list[str]) -> str:
    kept: list[str] = []
    for line in lines:
        stripped = line.strip()
        if _SIGNATURE_DELIMITER.match(line) or _CLOSING.match(stripped):
            break
        if stripped.startswith(">") or stripped.startswith("|"):
            continue
        if _CONTACT_LINE.match(stripped) and _looks_like_contact(stripped):
            continue
        kept.append(line.rstrip())
    return "\n".join(kept).strip()


def _looks_like_contact(line: str) -> bool:
    """Contact lines carry a long digit run, a URL or a register number."""
    return bool(re.search(r"\d[\d\s()/+-]{5,}\d|https?:|www\.|hrb", line, re.IGNORECASE))


# --- what a follow-up asks for ----------------------------------------------------------------

class Command(enum.Enum):
    CANCEL = "cancel"
    CHANGE = "change"
    STATUS = "status"


COMMAND_WORDS: dict[str, Command] = {
    **dict.fromkeys(("storno", "stornieren", "stornierung", "absagen", "absage",
                     "cancel", "cancellation"), Command.CANCEL),
    **dict.fromkeys(("ändern", "aendern", "änderung", "aenderung", "ändere", "verschieben",
                     "verlegen", "change", "reschedule", "move", "postpone"), Command.CHANGE),
}
# A clause with one of these is not an order: "bitte NICHT absagen", "no need to cancel",
# "don't move it", "whether to cancel", "falls wir absagen müssen".
_NOT_AN_ORDER = frozenset(("nicht", "kein", "keine", "keinen", "keinem", "keiner", "nie",
                           "niemals", "not", "no", "never", "dont", "nothing", "ob", "falls",
                           "wenn", "whether", "if"))
_GREETING = re.compile(r"^\s*(?:hallo|hello|hi|hey|moin|servus|guten\s+(?:tag|morgen|abend)|"
                       r"good\s+(?:morning|afternoon|evening)|dear|liebe[rs]?|"
                       r"sehr\s+geehrte[rs]?|grüß\s+gott)\b", re.IGNORECASE)
_CLAUSE = re.compile(r"[^,;:.!?]+[,;:.!?]?")
_TOKEN = re.compile(r"[\w'’]+")


def first_clause(text: str) -> str:
    """The first clause (up to , ; : . ! ?) of the first line that says more than a greeting."""
    for line in text.splitlines():
        for match in _CLAUSE.finditer(line):
            clause = match.group()
            if clause.strip(" \t,;:.!?") and not _GREETING.match(clause):
                return clause.strip()
    return ""


def clause_command(clause: str) -> Command:
    """The command a clause gives, STATUS when none: a negated, hedged or questioning clause
    gives none."""
    if clause.rstrip().endswith("?"):
        return Command.STATUS
    words = _TOKEN.findall(clause.casefold())
    if any(w in _NOT_AN_ORDER or w.endswith(("n't", "n’t")) for w in words):
        return Command.STATUS
    return next((COMMAND_WORDS[w] for w in words if w in COMMAND_WORDS), Command.STATUS)


def read_command(subject: str, text: str) -> Command:
    """A command counts only where the writer puts an order: at the start of the subject
    (the caller strips Re:/AW:, the reference and the title) or in the first clause of the
    writer's own text (quotes already cut). Anything else is a status request: a status
    reply is harmless, a wrong cancellation is not."""
    for source in (subject, text):
        command = clause_command(first_clause(source))
        if command is not Command.STATUS:
            return command
    return Command.STATUS
