"""config.toml → `bot.config.settings.Settings` (the tomlkit adapter and the validator).

Owns reading, validating and writing back the config file. Every problem is reported as
`file:line: reason`; unknown keys are errors. Loading never half-applies: either a complete,
valid `Settings` comes back or `ConfigError` with every problem found. Writes go through tomlkit
(comments kept), are validated, then land with a temp file + `os.replace`. What each table
and key may hold (the converters and table specs) is `bot.config.schema`.
Must not be imported by pure cores (they receive `Settings` values).
"""
from __future__ import annotations

import os
import re
import tempfile
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Callable

import tomlkit
from tomlkit.exceptions import ParseError

from bot.config import settings as S
from bot.config.schema import ARRAYS, TABLES, Bad
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


# ---- the [keypad] table (the rest of the schema is bot.config.schema) ----------------------

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
        except Bad as e:
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
                 "keypad", "moderators"}
    for key in data:
        if key not in known_top:
            problems.append(Problem((key,), f"unknown section or key '{key}' (known: {', '.join(sorted(known_top))})"))
    built: dict[str, Any] = {}
    for table in ("service", "capacity", "pins", "conference", "sip", "ivr"):
        cls, spec = TABLES[table]
        built[table] = _build(cls, spec, data.get(table, {}), (table,), problems)
    mail = data.get("mail", {})
    subs = {}
    for part in ("smtp", "imap", "relay"):
        cls, spec = TABLES[f"mail.{part}"]
        subs[part] = _build(cls, spec, mail.get(part, {}) if isinstance(mail, dict) else {},
                            ("mail", part), problems)
    cls, spec = TABLES["mail"]
    built["mail"] = _build(cls, spec, mail, ("mail",), problems, sub=subs)
    for name, (cls, spec, required) in ARRAYS.items():
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
    pins_seen: set[str] = set()
    superusers = 0
    for i, m in enumerate(b.get("moderators", ())):
        if m is None:
            continue
        if m.pin in pins_seen:
            problems.append(Problem(("moderators", i, "pin"), "this PIN is another moderator's"))
        pins_seen.add(m.pin)
        superusers += m.superuser
        if not m.superuser and not m.rooms:
            problems.append(Problem(("moderators", i), f"moderator '{m.name}' needs rooms = "
                                    "[\"<room>\", ...] (or [\"*\"]: every conference)"))
        if m.superuser and superusers > 1:
            problems.append(Problem(("moderators", i, "superuser"), "there is one superuser"))
        for room in m.rooms:
            if room != "*" and room not in names:
                problems.append(Problem(("moderators", i, "rooms"), f"room '{room}' is not defined "
                                        "in a [[rooms]] table (\"*\": every conference)"))
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
