"""Typed, frozen configuration tables (pure). `bot.config.load` compiles config.toml into these.

Every part of confbot receives the slice it needs from the composition root; nothing re-reads
the file while handling calls or mail. A reload builds a new `Settings`; running calls keep the
snapshot they started with.
"""
from __future__ import annotations

import secrets

import enum
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo


class Tariff(enum.Enum):
    PREMIUM = "premium"      # 090x-style, the caller pays
    TOLLFREE = "tollfree"    # 080x-style, the booking's initiator pays
    STANDARD = "standard"    # a plain number (internal extensions, demo rooms)


class Route(enum.Enum):
    PIN = "pin"              # ask for a participant/moderator PIN
    DIRECT = "direct"        # straight into a fixed room
    MENU = "menu"            # a DTMF menu first
    OPERATOR = "operator"    # the operator (superuser) desk
    THREEWAY = "threeway"    # 3PTY: an ad-hoc three-way call (I7)


class Inbound(enum.Enum):
    SMTP = "smtp"
    IMAP = "imap"


class LogTarget(enum.Enum):
    STDERR = "stderr"        # the terminal, or the journal under systemd
    FILE = "file"            # service.log_file, reopened when logrotate moves it away
    SYSLOG = "syslog"        # the local syslog socket /dev/log (journald reads it too)


class Outbound(enum.Enum):
    OUTBOX = "outbox"        # Maildir under var/outbox/: no mail server needed
    RELAY = "relay"          # an SMTP relay through aiosmtplib


@dataclass(frozen=True, slots=True)
class ServiceSettings:
    name: str = "confbot"
    timezone: ZoneInfo = ZoneInfo("Europe/Berlin")
    languages: tuple[str, ...] = ("de", "en")
    default_language: str = "de"
    data_dir: str = "var"
    log: LogTarget = LogTarget.STDERR
    log_file: str = "var/confbot.log"     # for log = "file"


@dataclass(frozen=True, slots=True)
class DialIn:
    number: str              # as printed in mails, e.g. "+49 900 5555 100"
    user: str                # SIP request-URI user part that selects this entry, e.g. "4990055551000"
    tariff: Tariff
    route: Route
    room: str | None = None  # for Route.DIRECT
    language: str | None = None


@dataclass(frozen=True, slots=True)
class CapacitySettings:
    total_lines: int = 200
    room_max: int = 50
    default_minutes: int = 60
    max_minutes: int = 480
    max_days_ahead: int = 365
    slot_step_minutes: int = 15  # granularity of proposed free slots


@dataclass(frozen=True, slots=True)
class PinSettings:
    length: int = 6
    early_join_minutes: int = 10


@dataclass(frozen=True, slots=True)
class SmtpListen:
    host: str = "127.0.0.1"
    port: int = 2525
    max_size: int = 10 * 1024 * 1024
    tls_cert: str | None = None   # STARTTLS offered when cert and key are set
    tls_key: str | None = None
    auth_users: tuple[tuple[str, str], ...] = ()  # (user, password); AUTH required when set


@dataclass(frozen=True, slots=True)
class ImapSettings:
    host: str = "127.0.0.1"
    port: int = 993
    user: str = ""
    password: str = ""
    folder: str = "INBOX"
    tls: bool = True
    idle_minutes: int = 25        # re-IDLE before the server's 29-minute limit
    ca_file: str | None = None    # PEM CA bundle for a server with a private certificate


@dataclass(frozen=True, slots=True)
class RelaySettings:
    host: str = "127.0.0.1"
    port: int = 25
    starttls: bool = False
    tls: bool = False
    user: str = ""
    password: str = ""
    ca_file: str | None = None


@dataclass(frozen=True, slots=True)
class MailSettings:
    address: str = "confbot@localhost"   # the bot's own address (From of replies)
    inbound: tuple[Inbound, ...] = (Inbound.SMTP,)
    outbound: Outbound = Outbound.OUTBOX
    outbox_dir: str = "var/outbox"
    smtp: SmtpListen = field(default_factory=SmtpListen)
    imap: ImapSettings = field(default_factory=ImapSettings)
    relay: RelaySettings = field(default_factory=RelaySettings)
    allowed_senders: tuple[str, ...] = ()  # "alice@example.com" or "example.com" / "@example.com"
    rate_limit_per_hour: int = 30
    retry_seconds: tuple[int, ...] = (5, 30, 120, 600, 1800)
    # When set, only mails whose Authentication-Results header from this authserv-id (the
    # receiving MTA's name) shows dmarc/dkim/spf=pass for the From domain may book or act on a
    # booking; unauthenticated mails are journalled and not answered (no backscatter).
    authserv_id: str | None = None
    max_invitees: int = 50        # invitee mails per booking (never more than participants - 1)
    give_up_hours: int = 72       # a reply the relay keeps refusing is dead-lettered after this
    # Other addresses the bot is reached under ("konferenz@example.com"): never a participant,
    # never answered as a sender (like `address`).
    aliases: tuple[str, ...] = ()

    def own_addresses(self) -> frozenset[str]:
        """`address` and every alias, lower-cased."""
        return frozenset(a.strip().lower() for a in (self.address, *self.aliases) if a.strip())


class UnknownNumber(enum.Enum):
    """What a call to a request-URI that no [[dialin]] entry matches gets."""
    REJECT = "reject"        # 404 Not Found before any answer: no connect is billed
    ANSWER = "answer"        # answered; the caller hears the "unknown number" prompt


@dataclass(frozen=True, slots=True)
class SipSettings:
    host: str = "127.0.0.1"
    port: int = 5060
    transports: tuple[str, ...] = ("udp", "tcp")
    clock_rate: int = 8000
    codecs: tuple[str, ...] = ("PCMA", "PCMU", "G722")
    rtp_port: int = 20000
    rtp_port_range: int = 10000
    max_calls: int = 500
    tls_port: int | None = None
    tls_cert: str | None = None
    tls_key: str | None = None
    srtp: str = "disabled"        # disabled | optional | mandatory
    log_level: int = 1
    unknown_number: UnknownNumber = UnknownNumber.REJECT


class Announce(enum.Enum):
    OFF = "off"
    NAME = "name"            # the caller's recorded name ("… has joined")
    TONE = "tone"


@dataclass(frozen=True, slots=True)
class RoomSettings:
    name: str
    max_participants: int
    announce: Announce = Announce.NAME


@dataclass(frozen=True, slots=True)
class ConferenceSettings:
    """The end of a booked conference (bot.conference.endwatch), and the moderation rules."""
    warn_minutes: int = 5          # callers hear "ends in N minutes" this long before (0: never)
    extend_minutes: int = 15       # at that moment, extend by this much if the lines are free ...
    extend_max_minutes: int = 0    # ... up to this much in all (0: never extend, end on time)
    self_unmute: bool = True       # a participant a moderator muted may unmute itself


@dataclass(frozen=True, slots=True)
class IvrSettings:
    operator_uri: str | None = None        # where "operator" calls go (a SIP URI)
    dialout_uri: str | None = None         # template for invitations, e.g. "sip:{number}@gw:5060"
    pin_tries: int = 3
    input_timeout_ms: int = 8000
    naming: bool = True                    # ask callers to say their name
    name_max_ms: int = 3000
    tts_rate: int = 160
    # brute force: this many wrong PINs from one caller ID within the window lock it out
    pin_caller_failures: int = 5
    pin_caller_window_minutes: int = 15
    pin_caller_lock_minutes: int = 15
    pin_global_failures_per_minute: int = 50
    pin_global_lock_minutes: int = 5
    # toll fraud: invitations by dial-out
    dialout_ring_seconds: int = 30        # an unanswered dial-out gives up after this
    dialout_per_call: int = 3
    dialout_per_booking: int = 10
    dialout_per_caller_per_hour: int = 6
    dialout_blocked_prefixes: tuple[str, ...] = ("00", "0900", "0137", "0138", "0180", "0190",
                                                 "118", "0700", "0701")
    speech_model: str | None = None        # a vosk model directory: spoken menu choices (I5)


@dataclass(frozen=True, slots=True)
class ModeratorSettings:
    """A person who moderates by phone with a personal PIN (`[[moderators]]`): in a conference
    they press the login key and their PIN."""
    name: str
    pin: str
    rooms: tuple[str, ...] = ()       # the [[rooms]] they moderate; "*": every conference
    superuser: bool = False           # every conference, and moves between conferences

    def may_moderate(self, conference: str) -> bool:
        return self.superuser or "*" in self.rooms or conference in self.rooms


@dataclass(frozen=True, slots=True)
class Settings:
    service: ServiceSettings = field(default_factory=ServiceSettings)
    dialin: tuple[DialIn, ...] = ()
    capacity: CapacitySettings = field(default_factory=CapacitySettings)
    pins: PinSettings = field(default_factory=PinSettings)
    conference: ConferenceSettings = field(default_factory=ConferenceSettings)
    mail: MailSettings = field(default_factory=MailSettings)
    sip: SipSettings = field(default_factory=SipSettings)
    rooms: tuple[RoomSettings, ...] = ()
    moderators: tuple[ModeratorSettings, ...] = ()
    ivr: IvrSettings = field(default_factory=IvrSettings)
    keypad: object = None                 # ivr.keypad.Keypad, compiled from [keypad] at load

    def dialin_for(self, tariff: Tariff) -> DialIn | None:
        return next((d for d in self.dialin if d.tariff is tariff), None)

    def dialin_by_user(self, user: str) -> DialIn | None:
        return next((d for d in self.dialin if d.user == user), None)

    def moderator_by_pin(self, pin: str) -> ModeratorSettings | None:
        return next((m for m in self.moderators if secrets.compare_digest(m.pin, pin)), None)

    def room(self, name: str) -> RoomSettings | None:
        return next((r for r in self.rooms if r.name == name), None)
