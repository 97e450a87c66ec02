"""The schema of config.toml: what each table and key may hold (used by `bot.config.load`).

Owns the field converters (a raw TOML value → the typed value, or `Bad` with the reason: whole
numbers in a range, strings, enums, lists, time zones, language codes, addresses, SIP URIs, …)
and the table specs: `TABLES` (table name → settings dataclass and its keys' converters) and
`ARRAYS` (the `[[dialin]]` and `[[rooms]]` entries, with their required keys). Keys absent from
the file keep the dataclass defaults. Knows nothing of files or line numbers: `bot.config.load`
compiles with these and reports `file:line: reason`.
"""
from __future__ import annotations

import re
from typing import Any, Callable
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from bot.config import settings as S


class Bad(Exception):
    """A value a converter refuses; the message says why (the caller adds where)."""


def _int(lo: int | None = None, hi: int | None = None) -> Callable[[Any], int]:
    def conv(v):
        if isinstance(v, bool) or not isinstance(v, int):
            raise Bad(f"must be a whole number, not {v!r}")
        if lo is not None and v < lo:
            raise Bad(f"must be at least {lo}, not {v}")
        if hi is not None and v > hi:
            raise Bad(f"must be at most {hi}, not {v}")
        return int(v)
    return conv


def _str(nonempty: bool = False) -> Callable[[Any], str]:
    def conv(v):
        if not isinstance(v, str):
            raise Bad(f"must be a string in quotes, not {v!r}")
        if nonempty and not v.strip():
            raise Bad("must not be empty")
        return str(v)
    return conv


def _bool(v):
    if not isinstance(v, bool):
        raise Bad(f"must be true or false, not {v!r}")
    return bool(v)


def _enum(enum_cls) -> Callable[[Any], Any]:
    def conv(v):
        try:
            return enum_cls(v)
        except ValueError:
            allowed = ", ".join(f'"{e.value}"' for e in enum_cls)
            raise Bad(f"must be one of {allowed}, not {v!r}") from None
    return conv


def _list(item: Callable[[Any], Any], nonempty: bool = False, unique: bool = True):
    def conv(v):
        if not isinstance(v, list):
            raise Bad(f"must be a list like [\"a\", \"b\"], not {v!r}")
        out = tuple(item(x) for x in v)
        if nonempty and not out:
            raise Bad("must not be empty")
        if unique and len(set(out)) != len(out):
            raise Bad("has duplicate entries")
        return out
    return conv


def _personal_pin(v):
    pin = _str(True)(v)
    if not pin.isdigit() or not 6 <= len(pin) <= 12:
        raise Bad("must be 6 to 12 digits in quotes")
    return pin


def _zone(v):
    name = _str(True)(v)
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise Bad(f"unknown time zone {name!r} (use an IANA name like \"Europe/Berlin\")") from None


def _lang(v):
    """A language code: prompts/<code>.toml must exist for it (checked when prompts load);
    mail replies are written in de or en."""
    lang = _str(True)(v)
    if not re.match(r"^[a-z]{2,3}$", lang):
        raise Bad(f"{lang!r} is not a language code (like \"de\", \"en\", \"fr\")")
    return lang


_SENDER = re.compile(r"^(@?[A-Za-z0-9.-]+\.?[A-Za-z0-9-]*|[^@\s]+@[A-Za-z0-9.-]+)$")


def _sender(v):
    s = _str(True)(v).strip().lower()
    if not _SENDER.match(s):
        raise Bad(f"{s!r} is neither an address nor a domain")
    return s


def _address(v):
    s = _str(True)(v).strip().lower()
    if not re.match(r"^[^@\s]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*$", s):
        raise Bad(f"{s!r} is not a mail address (like \"konferenz@example.com\")")
    return s


def _transport(v):
    t = _str(True)(v)
    if t not in ("udp", "tcp"):
        raise Bad(f"unknown transport {t!r} (\"udp\" or \"tcp\"; TLS is enabled by tls_port)")
    return t


def _codec(v):
    c = _str(True)(v).upper()
    if c not in ("PCMA", "PCMU", "G722"):
        raise Bad(f"unknown codec {c!r} (available: \"PCMA\", \"PCMU\", \"G722\")")
    return c


def _auth_users(v):
    if not isinstance(v, list) or not all(
            isinstance(p, list) and len(p) == 2 and all(isinstance(x, str) and x for x in p) for p in v):
        raise Bad('must be a list of ["user", "password"] pairs')
    return tuple((u, p) for u, p in v)


def _srtp(v):
    s = _str(True)(v)
    if s not in ("disabled", "optional", "mandatory"):
        raise Bad(f"must be \"disabled\", \"optional\" or \"mandatory\", not {s!r}")
    return s


def _sip_uri(v):
    uri = _str(True)(v)
    if not re.match(r"^sips?:[^\s]+$", uri):
        raise Bad(f"{uri!r} is not a SIP URI (like \"sip:operator@127.0.0.1:5070\")")
    return uri


def _dialout_uri(v):
    uri = _sip_uri(v)
    if "{number}" not in uri:
        raise Bad(f"{uri!r} needs a {{number}} placeholder (like \"sip:{{number}}@gateway:5060\")")
    return uri


# table name → (dataclass, {key: converter}); keys absent from the file keep the defaults.
_PORT = _int(1, 65535)
TABLES: dict[str, tuple[type, dict[str, Callable]]] = {
    "service": (S.ServiceSettings, {
        "name": _str(True), "timezone": _zone, "languages": _list(_lang, nonempty=True),
        "data_dir": _str(True), "log": _enum(S.LogTarget), "log_file": _str(True)}),
    "capacity": (S.CapacitySettings, {
        "total_lines": _int(1), "room_max": _int(2), "default_minutes": _int(5, 24 * 60),
        "max_minutes": _int(5, 7 * 24 * 60), "max_days_ahead": _int(1, 3650),
        "slot_step_minutes": _int(1, 24 * 60)}),
    "pins": (S.PinSettings, {"length": _int(6, 12), "early_join_minutes": _int(0, 120)}),
    "conference": (S.ConferenceSettings, {
        "warn_minutes": _int(0, 60), "extend_minutes": _int(1, 240),
        "extend_max_minutes": _int(0, 24 * 60), "self_unmute": _bool}),
    "mail.smtp": (S.SmtpListen, {
        "host": _str(True), "port": _PORT, "max_size": _int(1024), "tls_cert": _str(True),
        "tls_key": _str(True), "auth_users": _auth_users}),
    "mail.imap": (S.ImapSettings, {
        "host": _str(True), "port": _PORT, "user": _str(), "password": _str(),
        "folder": _str(True), "tls": _bool, "idle_minutes": _int(1, 29), "ca_file": _str(True)}),
    "mail.relay": (S.RelaySettings, {
        "host": _str(True), "port": _PORT, "starttls": _bool, "tls": _bool, "user": _str(),
        "password": _str(), "ca_file": _str(True)}),
    "mail": (S.MailSettings, {
        "address": _str(True), "inbound": _list(_enum(S.Inbound), nonempty=True),
        "outbound": _enum(S.Outbound), "outbox_dir": _str(True),
        "allowed_senders": _list(_sender), "rate_limit_per_hour": _int(1),
        "retry_seconds": _list(_int(1), nonempty=True, unique=False), "authserv_id": _str(True),
        "max_invitees": _int(0, 500), "give_up_hours": _int(1, 24 * 30),
        "aliases": _list(_address)}),
    "sip": (S.SipSettings, {
        "host": _str(True), "port": _PORT, "transports": _list(_transport, nonempty=True),
        "clock_rate": lambda v: _bad_unless(_int()(v), (8000, 16000), "clock_rate must be 8000 or 16000"),
        "codecs": _list(_codec, nonempty=True), "rtp_port": _int(1024, 65000),
        "rtp_port_range": _int(10, 40000), "max_calls": _int(1, 512), "tls_port": _PORT,
        "tls_cert": _str(True), "tls_key": _str(True), "srtp": _srtp, "log_level": _int(0, 6),
        "unknown_number": _enum(S.UnknownNumber)}),
    "ivr": (S.IvrSettings, {
        "operator_uri": _sip_uri, "dialout_uri": _dialout_uri, "pin_tries": _int(1, 10),
        "input_timeout_ms": _int(1000, 60000), "dialout_ring_seconds": _int(5, 300), "naming": _bool, "name_max_ms": _int(1000, 10000),
        "tts_rate": _int(80, 400), "pin_caller_failures": _int(1), "pin_caller_window_minutes": _int(1),
        "pin_caller_lock_minutes": _int(1), "pin_global_failures_per_minute": _int(1),
        "pin_global_lock_minutes": _int(1), "dialout_per_call": _int(0, 100),
        "dialout_per_booking": _int(0, 1000), "dialout_per_caller_per_hour": _int(0, 1000),
        "dialout_blocked_prefixes": _list(_str(True)), "speech_model": _str(True)}),
}
ARRAYS: dict[str, tuple[type, dict[str, Callable], tuple[str, ...]]] = {
    "dialin": (S.DialIn, {
        "number": _str(True), "user": _str(True), "tariff": _enum(S.Tariff),
        "route": _enum(S.Route), "room": _str(True), "language": _lang},
        ("number", "user", "tariff", "route")),
    "rooms": (S.RoomSettings, {
        "name": _str(True), "max_participants": _int(2, 10_000), "announce": _enum(S.Announce)},
        ("name", "max_participants")),
    "moderators": (S.ModeratorSettings, {
        "name": _str(True), "pin": _personal_pin, "rooms": _list(_str(True), nonempty=True),
        "superuser": _bool},
        ("name", "pin")),
}


def _bad_unless(value, allowed, msg):
    if value not in allowed:
        raise Bad(msg)
    return value
