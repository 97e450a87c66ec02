"""Guessing the charset of undeclared 8-bit text (pure): a Subject header with raw 8-bit bytes,
a text part without (or with a wrong) charset declaration.

Owns the order of guesses: UTF-8 when the bytes are valid UTF-8 (nearly never true by chance),
else what charset-normalizer finds most plausible among the charsets European mail clients
actually send undeclared, else cp1252 with replacement characters (it decodes every byte).
A declared charset that decodes is never second-guessed (that is mail.mime's rule).
Must not touch: MIME structure (mail.mime), booking rules.
"""
from __future__ import annotations

from charset_normalizer import from_bytes

# Undeclared 8-bit mail comes from old or misconfigured clients: Western and Central European
# Windows/ISO code pages, Cyrillic ones, and Mac Roman. Limiting the candidates keeps a short
# Subject from being read as an East Asian multi-byte charset.
CANDIDATES = ("utf_8", "cp1252", "iso8859_15", "cp1250", "iso8859_2", "cp1251", "koi8_r",
              "mac_roman")


def guess_decode(data: bytes) -> str:
    """`data` as text, whatever its (undeclared) charset. Never raises."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    try:
        best = from_bytes(data, cp_isolation=list(CANDIDATES)).best()
        if best is not None:
            return str(best)
    except Exception:   # a guesser's bug must not lose the mail: fall back below
        pass
    return data.decode("cp1252", "replace")


def undeclared_header(raw: str) -> str | None:
    """A header value as the parser kept it (8-bit bytes as surrogate escapes), decoded by
    guessing; None when it is plain ASCII (the email package decodes those itself)."""
    if not any("\udc80" <= ch <= "\udcff" for ch in raw):
        return None
    return guess_decode(raw.encode("ascii", "surrogateescape"))
