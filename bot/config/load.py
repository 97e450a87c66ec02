"""config.toml → `bot.config.settings.Settings` (the tomlkit adapter and the validator).

Owns reading, validating and writing back the config file. Every problem is reported as
`file:line: reason`; unknown keys are errors. Loading never half-applies: either a complete,
valid `Settings` comes back or `ConfigError` with every problem found. Writes go through tomlkit
(comments kept), are validated, then land with a temp file + `os.replace`.
Must not be imported by pure cores (they receive `Settings` values).
"""
from __future__ import annotations

import os
import re
import tempfile
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Callable
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import tomlkit
from tomlkit.exceptions import ParseError

from bot.config import settings as S
from bot.booking.domain import PIN_UNIQUE_MARGIN_MINUTES


class ConfigError(Exception):
    """One or more problems, each already formatted as `file:line: reason`."""

    def __init__(self, problems: list[str]):
        super().__init__("\n".join(problems))
        self.problems = problems


@dataclass(frozen=True, slots=True)
class Problem:
    path: tuple
    reason: str


# ---- locating keys in the text (tomlkit keeps no line numbers) ------------------------------

_HEADER = re.compile(r"^\s*(\[\[?)\s*([^\]]+?)\s*\]\]?\s*(#.*)?$")
_KEY = re.compile(r"""^\s*("[^"]*"|'[^']*'|[A-Za-z0-9_.-]+)\s*=""")


def _key_lines(text: str) -> dict[tuple, int]:
    """Map key paths (tables, array-of-table entries and keys) to 1-based line numbers."""
    lines: dict[tuple, int] = {}
    counters: dict[tuple, int] = {}
    table: tuple = ()
    for no, line in enumerate(text.splitlines(), 1):
        m = _HEADER.match(line)
        if m:
            names = tuple(part.strip().strip('"\'') for part in m.group(2).split("."))
            if m.group(1) == "[[":
                idx = counters.get(names, -1) + 1
                counters[names] = idx
                table = names[:-1] + (names[-1], idx) if len(names) == 1 else names + (idx,)
                # nested [[a.b]] inside the latest [[a]] is not used by confbot
            else:
                table = _resolve_parent(names, counters)
            lines.setdefault(table, no)
            lines.setdefault(table[:-1] if table and isinstance(table[-1], int) else table, no)
            continue
        k = _KEY.match(line)
        if k:
            key = tuple(p.strip('"\'') for p in k.group(1).split("."))
            lines.setdefault(table + key, no)
    return lines


def _resolve_parent(names: tuple, counters: dict) -> tuple:
    """`[mail.smtp]` stays as is; a sub-table of an array entry gets the entry's index."""
    for cut in range(len(names), 0, -1):
        if names[:cut] in counters:
            return names[:cut] + (counters[names[:cut]],) + names[cut:]
    return names


def _line_of(path: tuple, lines: dict[tuple, int]) -> int:
    for cut in range(len(path), 0, -1):
        if path[:cut] in lines:
            return lines[path[:cut]]
    return 1


# ---- field converters -------------------------------------------------------------------------

class _Bad(Exception):
    pass


def _int(lo: int | None = None, hi: int | None = None) -> Callable[[Any], int]:
    def conv(v):
        if isinstance(v, bool) or not isinstance(v, int):
            raise _Bad(f"must be a whole number, not {v!r}")
        if lo is not None and v < lo:
            raise _Bad(f"must be at least {lo}, not {v}")
        if hi is not None and v > hi:
            raise _Bad(f"must be at most {hi}, not {v}")
        return int(v)
    return conv


def _str(nonempty: bool = False) -> Callable[[Any], str]:
    def conv(v):
        if not isinstance(v, str):
            raise _Bad(f"must be a string in quotes, not {v!r}")
        if nonempty and not v.strip():
            raise _Bad("must not be empty")
        return str(v)
    return conv


def _bool(v):
    if not isinstance(v, bool):
        raise _Bad(f"must be true or false, not {v!r}")
    return bool(v)


def _enum(enum_cls) -> Callable[[Any], Any]:
    def conv(v):
        try:
            return enum_cls(v)
        except ValueError:
            allowed = ", ".join(f'"{e.value}"' for e in enum_cls)
            raise _Bad(f"must be one of {allowed}, not {v!r}") from None
    return conv


def _list(item: Callable[[Any], Any], nonempty: bool = False, unique: bool = True):
    def conv(v):
        if not isinstance(v, list):
            raise _Bad(f"must be a list like [\"a\", \"b\"], not {v!r}")
        out = tuple(item(x) for x in v)
        if nonempty and not out:
            raise _Bad("must not be empty")
        if unique and len(set(out)) != len(out):
            raise _Bad("has duplicate entries")
        return out
    return conv


def _zone(v):
    name = _str(True)(v)
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise _Bad(f"unknown time zone {name!r} (use an IANA name like \"Europe/Berlin\")") from None


def _lang(v):
    """A language code: prompts/<code>.toml must exist for it (checked when prompts load);
    mail replies are written in de or en."""
    lang = _str(True)(v)
    if not re.match(r"^[a-z]{2,3}$", lang):
        raise _Bad(f"{lang!r} is not a language code (like \"de\", \"en\", \"fr\")")
    return lang


_SENDER = re.compile(r"^(@?[A-Za-z0-9.-]+\.?[A-Za-z0-9-]*|[^@\s]+@[A-Za-z0-9.-]+)$")


def _sender(v):
    s = _str(True)(v).strip().lower()
    if not _SENDER.match(s):
        raise _Bad(f"{s!r} is neither an address nor a domain")
    return s


def _address(v):
    s = _str(True)(v).strip().lower()
    if not re.match(r"^[^@\s]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*$", s):
        raise _Bad(f"{s!r} is not a mail address (like \"konferenz@example.com\")")
    return s


def _transport(v):
    t = _str(True)(v)
    if t not in ("udp", "tcp"):
        raise _Bad(f"unknown transport {t!r} (\"udp\" or \"tcp\"; TLS is enabled by tls_port)")
    return t


def _codec(v):
    c = _str(True)(v).upper()
    if c not in ("PCMA", "PCMU", "G722"):
        raise _Bad(f"unknown codec {c!r} (available: \"PCMA\", \"PCMU\", \"G722\")")
    return c


def _auth_users(v):
    if not isinstance(v, list) or not all(
            isinstance(p, list) and len(p) == 2 and all(isinstance(x, str) and x for x in p) for p in v):
        raise _Bad('must be a list of ["user", "password"] pairs')
    return tuple((u, p) for u, p in v)


def _srtp(v):
    s = _str(True)(v)
    if s not in ("disabled", "optional", "mandatory"):
        raise _Bad(f"must be \"disabled\", \"optional\" or \"mandatory\", not {s!r}")
    return s


def _sip_uri(v):
    uri = _str(True)(v)
    if not re.match(r"^sips?:[^\s]+$", uri):
        raise _Bad(f"{uri!r} is not a SIP URI (like \"sip:operator@127.0.0.1:5070\")")
    return uri


def _dialout_uri(v):
    uri = _sip_uri(v)
    if "{number}" not in uri:
        raise _Bad(f"{uri!r} needs a {{number}} placeholder (like \"sip:{{number}}@gateway:5060\")")
    return uri


# table name → (dataclass, {key: converter}); keys absent from the file keep the defaults.
_PORT = _int(1, 65535)
_TABLES: dict[str, tuple[type, dict[str, Callable]]] = {
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
        "extend_max_minutes": _int(0, 24 * 60)}),
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
_ARRAYS: dict[str, tuple[type, dict[str, Callable], tuple[str, ...]]] = {
    "dialin": (S.DialIn, {
        "number": _str(True), "user": _str(True), "tariff": _enum(S.Tariff),
        "route": _enum(S.Route), "room": _str(True), "language": _lang},
        ("number", "user", "tariff", "route")),
    "rooms": (S.RoomSettings, {
        "name": _str(True), "max_participants": _int(2, 10_000), "announce": _enum(S.Announce)},
        ("name", "max_participants")),
}


def _keypad(table, problems: list[Problem]):
    from ivr.keypad import DEFAULT_KEYPAD, KeypadError, compile_keypad
    if table is None:
        return compile_keypad(DEFAULT_KEYPAD)
    if not isinstance(table, dict):
        problems.append(Problem(("keypad",), "[keypad] must be a table of \"keys\" = \"action\""))
        return None
    try:
        return compile_keypad(table, path=("keypad",))
    except KeypadError as e:
        problems.append(Problem(e.path, f"[keypad] {e.reason}"))
        return None


def _bad_unless(value, allowed, msg):
    if value not in allowed:
        raise _Bad(msg)
    return value


# ---- compiling ----------------------------------------------------------------------------------

def _build(cls, spec: dict, data: Any, path: tuple, problems: list[Problem],
           sub: dict[str, Any] | None = None, required: tuple[str, ...] = ()):
    if not isinstance(data, dict):
        problems.append(Problem(path, f"[{'.'.join(map(str, path))}] must be a table"))
        return None
    values: dict[str, Any] = dict(sub or {})
    for key, raw in data.items():
        if sub and key in sub:
            continue
        conv = spec.get(key)
        if conv is None:
            known = ", ".join(sorted(set(spec) | set(sub or {})))
            problems.append(Problem(path + (key,), f"unknown key '{key}' in [{_name(path)}] (known: {known})"))
            continue
        try:
            values[key] = conv(raw)
        except _Bad as e:
            problems.append(Problem(path + (key,), f"{_name(path)}.{key} {e}"))
    for key in required:
        if key not in data:
            problems.append(Problem(path, f"[{_name(path)}] needs '{key}'"))
    if any(p.path[:len(path)] == path for p in problems):
        return None
    names = {f.name for f in fields(cls)}
    return cls(**{k: v for k, v in values.items() if k in names})


def _name(path: tuple) -> str:
    out = []
    for p in path:
        if isinstance(p, int):
            out[-1] = f"{out[-1]}[{p + 1}]"
        else:
            out.append(str(p))
    return ".".join(out)


def compile_settings(data: dict) -> tuple[S.Settings | None, list[Problem]]:
    """Turn the plain TOML dict into `Settings`, collecting every problem."""
    problems: list[Problem] = []
    known_top = {"service", "capacity", "pins", "conference", "mail", "sip", "dialin", "rooms", "ivr",
                 "keypad"}
    for key in data:
        if key not in known_top:
            problems.append(Problem((key,), f"unknown section or key '{key}' (known: {', '.join(sorted(known_top))})"))
    built: dict[str, Any] = {}
    for table in ("service", "capacity", "pins", "conference", "sip", "ivr"):
        cls, spec = _TABLES[table]
        built[table] = _build(cls, spec, data.get(table, {}), (table,), problems)
    mail = data.get("mail", {})
    subs = {}
    for part in ("smtp", "imap", "relay"):
        cls, spec = _TABLES[f"mail.{part}"]
        subs[part] = _build(cls, spec, mail.get(part, {}) if isinstance(mail, dict) else {},
                            ("mail", part), problems)
    cls, spec = _TABLES["mail"]
    built["mail"] = _build(cls, spec, mail, ("mail",), problems, sub=subs)
    for name, (cls, spec, required) in _ARRAYS.items():
        entries = data.get(name, [])
        if not isinstance(entries, list):
            problems.append(Problem((name,), f"'{name}' must be written as [[{name}]] tables"))
            entries = []
        built[name] = tuple(_build(cls, spec, e, (name, i), problems, required=required)
                            for i, e in enumerate(entries))
    built["keypad"] = _keypad(data.get("keypad"), problems)
    _cross_checks(data, built, problems)
    if problems:
        return None, problems
    return S.Settings(**built), []


def _cross_checks(data: dict, b: dict, problems: list[Problem]) -> None:
    svc, cap, mail, sip = b.get("service"), b.get("capacity"), b.get("mail"), b.get("sip")
    if svc is not None:
        b["service"] = S.ServiceSettings(name=svc.name, timezone=svc.timezone, languages=svc.languages,
                                         default_language=svc.languages[0], data_dir=svc.data_dir,
                                         log=svc.log, log_file=svc.log_file)
        if svc.log_file.endswith(("/", os.sep)):
            problems.append(Problem(("service", "log_file"),
                                    f"service.log_file {svc.log_file!r} names a folder, not a file"))
    if cap is not None:
        if cap.default_minutes > cap.max_minutes:
            problems.append(Problem(("capacity", "default_minutes"),
                                    "capacity.default_minutes is longer than capacity.max_minutes"))
        if cap.room_max > cap.total_lines:
            problems.append(Problem(("capacity", "room_max"),
                                    "capacity.room_max is larger than capacity.total_lines"))
    rooms = [r for r in b.get("rooms", ()) if r is not None]
    raw_rooms = data.get("rooms") if isinstance(data.get("rooms"), list) else []
    # names from the raw tables too, so one bad key in a room does not also fail its dial-ins
    names = [r.get("name") for r in raw_rooms if isinstance(r, dict)]
    for i, r in enumerate(rooms):
        if names.count(r.name) > 1:
            problems.append(Problem(("rooms", i, "name"), f"room '{r.name}' is defined twice"))
    users: set[str] = set()
    for i, d in enumerate(b.get("dialin", ())):
        if d is None:
            continue
        if d.user in users:
            problems.append(Problem(("dialin", i, "user"), f"dial-in user '{d.user}' is used twice"))
        users.add(d.user)
        if d.route is S.Route.DIRECT and not d.room:
            problems.append(Problem(("dialin", i, "route"), "a \"direct\" route needs room = \"<name>\""))
        if d.room and d.room not in names:
            problems.append(Problem(("dialin", i, "room"),
                                    f"room '{d.room}' is not defined in a [[rooms]] table"))
    if mail is not None:
        if S.Inbound.IMAP in mail.inbound and not (mail.imap.user and mail.imap.password):
            problems.append(Problem(("mail", "imap"), "inbound includes \"imap\" but [mail.imap] has no user/password"))
        if bool(mail.smtp.tls_cert) != bool(mail.smtp.tls_key):
            problems.append(Problem(("mail", "smtp"), "[mail.smtp] needs both tls_cert and tls_key for STARTTLS"))
        if "@" not in mail.address:
            problems.append(Problem(("mail", "address"), f"mail.address {mail.address!r} is not an address"))
    if cap is not None and sip is not None and cap.total_lines > sip.max_calls:
        problems.append(Problem(("capacity", "total_lines"),
                                f"capacity.total_lines ({cap.total_lines}) is more than sip.max_calls "
                                f"({sip.max_calls}): booked callers would get busy"))
    if sip is not None and sip.rtp_port + sip.rtp_port_range > 65536:
        problems.append(Problem(("sip", "rtp_port_range"),
                                "sip.rtp_port + sip.rtp_port_range goes beyond port 65535"))
    pins = b.get("pins")
    if pins is not None and pins.early_join_minutes > PIN_UNIQUE_MARGIN_MINUTES:
        problems.append(Problem(("pins", "early_join_minutes"),
                                f"pins.early_join_minutes may be at most {PIN_UNIQUE_MARGIN_MINUTES} "
                                "(PINs are unique within that margin around each booking)"))
    ivr = b.get("ivr")
    if ivr is not None and sip is not None and ivr.speech_model and sip.clock_rate < 16000:
        problems.append(Problem(("ivr", "speech_model"),
                                "ivr.speech_model needs sip.clock_rate = 16000 (at 8000 Hz recognition is unreliable)"))
    if sip is not None and sip.tls_port is not None and not (sip.tls_cert and sip.tls_key):
        problems.append(Problem(("sip", "tls_port"), "sip.tls_port needs tls_cert and tls_key"))


def parse_text(text: str, filename: str = "config.toml") -> S.Settings:
    """Compile TOML text; raise ConfigError with `file:line: reason` lines."""
    try:
        doc = tomlkit.parse(text)
    except ParseError as e:
        raise ConfigError([f"{filename}:{e.line}: {_parse_reason(e)}"]) from None
    settings, problems = compile_settings(doc.unwrap())
    if problems:
        lines = _key_lines(text)
        raise ConfigError([f"{filename}:{_line_of(p.path, lines)}: {p.reason}"
                           for p in sorted(problems, key=lambda p: _line_of(p.path, lines))])
    assert settings is not None
    return settings


def _parse_reason(e: ParseError) -> str:
    msg = str(e)
    return re.sub(r"\s+at line \d+ col \d+$", "", msg) + f" (column {e.col})"


def load(path: str | os.PathLike) -> S.Settings:
    """Read and compile a config file. Relative data paths are made relative to its folder."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as e:
        raise ConfigError([f"{p.absolute()}:0: cannot read: {e.strerror}"]) from None
    except UnicodeDecodeError as e:
        raise ConfigError([f"{p}:0: not UTF-8 text ({e.reason})"]) from None
    return _anchor(parse_text(text, str(p)), p.resolve().parent)


def _anchor(settings: S.Settings, base: Path) -> S.Settings:
    from dataclasses import replace

    def rel(v: str | None) -> str | None:
        return v if v is None or os.path.isabs(v) else str(base / v)

    m, sip = settings.mail, settings.sip
    return replace(
        settings,
        service=replace(settings.service, data_dir=rel(settings.service.data_dir),
                        log_file=rel(settings.service.log_file)),
        mail=replace(m, outbox_dir=rel(m.outbox_dir),
                     smtp=replace(m.smtp, tls_cert=rel(m.smtp.tls_cert), tls_key=rel(m.smtp.tls_key)),
                     imap=replace(m.imap, ca_file=rel(m.imap.ca_file)),
                     relay=replace(m.relay, ca_file=rel(m.relay.ca_file))),
        sip=replace(sip, tls_cert=rel(sip.tls_cert), tls_key=rel(sip.tls_key)),
        ivr=replace(settings.ivr, speech_model=rel(settings.ivr.speech_model)))


def update(path: str | os.PathLike, edit: Callable[[tomlkit.TOMLDocument], None]) -> S.Settings:
    """Apply `edit` to the document (comments kept), validate, then replace the file atomically.
    On a validation error the file is untouched and ConfigError is raised."""
    p = Path(path).resolve()   # a symlinked config is edited where it really lives
    doc = tomlkit.parse(p.read_text(encoding="utf-8"))
    edit(doc)
    text = tomlkit.dumps(doc)
    settings = _anchor(parse_text(text, str(path)), p.parent)
    st = p.stat()
    fd, tmp = tempfile.mkstemp(dir=p.parent, prefix=f".{p.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fchmod(f.fileno(), st.st_mode & 0o7777)   # mkstemp made it 0600
            try:
                os.fchown(f.fileno(), st.st_uid, st.st_gid)
            except PermissionError:
                pass
            os.fsync(f.fileno())
        os.replace(tmp, p)
        dirfd = os.open(p.parent, os.O_RDONLY)
        try:
            os.fsync(dirfd)
        finally:
            os.close(dirfd)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return settings
