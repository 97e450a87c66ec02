"""The `confbot` command line: run the service, check the config, inspect and manage bookings.

Owns argument parsing and printing only; the work is done by the cores and adapters it calls.
Exit codes: 0 success, 1 the input was refused (bad config, mail that cannot be a booking,
unknown reference), 2 usage errors (argparse).
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from datetime import datetime, timezone
from pathlib import Path

DEFAULT_CONFIG = "config.toml"
CONFIG_ENV = "CONFBOT_CONFIG"      # the config file when no --config / PATH is given
CONFIG_HELP = (f"the config file (default: ${CONFIG_ENV} if set, else {DEFAULT_CONFIG} in the "
               "current directory)")


def _settings(path: str):
    from bot.config import load as config
    try:
        return config.load(path)
    except config.ConfigError as e:
        print(str(e), file=sys.stderr)
        raise SystemExit(1) from None


def _store(settings):
    from bot.store.sqlite import SqliteStore
    return SqliteStore(Path(settings.service.data_dir) / "confbot.sqlite3")


def _now(text: str | None, tz=timezone.utc) -> datetime:
    """--now as an aware time; one without an offset is read in the service time zone."""
    if not text:
        return datetime.now(timezone.utc)
    try:
        now = datetime.fromisoformat(text)
    except ValueError:
        raise SystemExit(f"confbot: --now {text!r} is not an ISO 8601 time (e.g. 2026-12-01T09:00:00+01:00)")
    return now if now.tzinfo else now.replace(tzinfo=tz)


def cmd_check_config(args) -> int:
    from bot.config import load as config
    try:
        s = config.load(args.path)
    except config.ConfigError as e:
        print(str(e), file=sys.stderr)
        return 1
    def n(count: int, what: str) -> str:
        return f"{count} {what}" + ("" if count == 1 else "s")
    print(f"{args.path}: OK — {n(len(s.dialin), 'dial-in number')}, {n(len(s.rooms), 'room')}, "
          f"{n(s.capacity.total_lines, 'line')}, mail in via {', '.join(i.value for i in s.mail.inbound)}, "
          f"replies via {s.mail.outbound.value}")
    return 0


def cmd_run(args) -> int:
    from bot.app import run
    return run(args.config, voice=not args.no_voice, mail=not args.no_mail)


def cmd_booking_parse(args) -> int:
    from mail.parse import Parsed, parse_booking
    if args.config == DEFAULT_CONFIG and not Path(DEFAULT_CONFIG).exists():
        from bot.config.settings import Settings
        print(f"confbot: no {DEFAULT_CONFIG} here; parsing with the built-in defaults "
              "(Europe/Berlin; use --config PATH)", file=sys.stderr)
        settings = Settings()
    else:
        settings = _settings(args.config)
    try:
        raw = Path(args.file).read_bytes()
    except OSError as e:
        print(json.dumps({"error": f"Cannot read {args.file}: {e.strerror}.", "reason": "unreadable"}))
        return 1
    result = parse_booking(raw, now=_now(args.now, settings.service.timezone), settings=settings)
    print(json.dumps(result.to_json(), ensure_ascii=False))
    return 0 if isinstance(result, Parsed) else 1


def _booking_dict(b, tz) -> dict:
    return {
        "reference": b.reference, "status": b.status.value, "title": b.title,
        "organizer": b.organizer, "start": b.start.astimezone(tz).isoformat(),
        "end": b.end.astimezone(tz).isoformat(), "participants": b.participants,
        "dial_in_mode": b.dial_in_mode.value, "participant_pin": b.participant_pin,
        "moderator_pin": b.moderator_pin, "invitees": list(b.invitees), "language": b.language,
    }


def cmd_booking_list(args) -> int:
    settings = _settings(args.config)
    tz = settings.service.timezone
    since = None if args.all else datetime.now(timezone.utc)
    rows = _store(settings).list(since=since, include_cancelled=args.all)
    if args.json:
        print(json.dumps([_booking_dict(b, tz) for b in rows], ensure_ascii=False, indent=1))
        return 0
    if not rows:
        print("no bookings" + ("" if args.all else " from now on (use --all for past and cancelled)"))
    for b in rows:
        print(f"{b.reference}  {b.start.astimezone(tz):%Y-%m-%d %H:%M}–{b.end.astimezone(tz):%H:%M}  "
              f"{b.participants:>4} lines  {b.status.value:<9}  {b.organizer}  {b.title}")
    return 0


def _lookup(settings, ref_text: str):
    from bot.booking.domain import normalize_reference
    ref = normalize_reference(ref_text)
    if ref is None:
        print(f"confbot: {ref_text!r} is not a booking reference (they look like CB-7K2Q9)", file=sys.stderr)
        return None, None
    store = _store(settings)
    b = store.get(ref)
    if b is None:
        print(f"confbot: no booking {ref}", file=sys.stderr)
    return store, b


def cmd_booking_show(args) -> int:
    settings = _settings(args.config)
    _, b = _lookup(settings, args.reference)
    if b is None:
        return 1
    print(json.dumps(_booking_dict(b, settings.service.timezone), ensure_ascii=False, indent=1))
    return 0


def cmd_booking_cancel(args) -> int:
    settings = _settings(args.config)
    store, b = _lookup(settings, args.reference)
    if b is None:
        return 1
    if not b.active:
        print(f"{b.reference} was already cancelled")
        return 0
    # The organizer (and every invitee who was mailed) gets the same mails as after a mailed
    # cancel. They are queued in the store's outgoing queue in the transaction that cancels,
    # so neither happens without the other; the running service's sender sends them within
    # a second through its outbound (relay or Maildir), or the next `confbot run` does.
    from mail.agent import cancellation_mails
    from mail.transport.pipeline import to_drafts
    now = datetime.now(timezone.utc)
    queued: list[str] = []

    def notify(cancelled):
        drafts = to_drafts(cancellation_mails(cancelled, settings, to=cancelled.organizer,
                                              original=None, now=now), "booking cancel")
        queued.extend(address for d in drafts for address in d.rcpt_to)
        return drafts
    store.cancel(b.reference, "confbot booking cancel", notify=notify)
    print(f"{b.reference} cancelled; its {b.participants} lines are free again; the cancellation"
          f" mail to {', '.join(queued)} is queued (sent by the running service, or by the next"
          " `confbot run`)")
    return 0


def cmd_prompts_render(args) -> int:
    from ivr import catalog
    from ivr.speech import render
    from ivr.speech import tts
    settings = _settings(args.config)
    prompts_dir = Path(args.config).resolve().parent / "prompts"
    try:
        cat = catalog.load(prompts_dir, settings.service.languages, settings.service.default_language)
        speaker = tts.Speaker()
    except catalog.CatalogError as e:
        print(str(e), file=sys.stderr)
        return 1
    except tts.TtsUnavailable as e:
        print(f"confbot: {e}", file=sys.stderr)
        return 1
    cache = render.PromptCache(speaker, Path(settings.service.data_dir) / "prompts", settings.sip.clock_rate)
    tty = sys.stdout.isatty()

    def progress(done: int, total: int, label: str) -> None:
        line = render.progress_line(done, total, label)
        if tty:
            print("\r" + line, end="", flush=True)
        elif done == total or done % 10 == 0:
            print(line, flush=True)
    from ivr.conference import help_prompts
    from ivr.keypad import DEFAULT_KEYPAD, compile_keypad
    keypad = settings.keypad if settings.keypad is not None else compile_keypad(DEFAULT_KEYPAD)
    report = render.render_all(cache, cat, progress=progress, extra=help_prompts(keypad))
    if tty:
        print()
    print(f"{report.prompts} prompts ready in {cache.dir} ({report.synthesized} newly rendered)")
    return 0


def _locked_rows(settings):
    store = _store(settings)
    return store, store.active_lockouts(datetime.now(timezone.utc))


def _who(row) -> str:
    return row.caller if row.caller is not None else "(all unknown callers)"


def cmd_lockout_list(args) -> int:
    settings = _settings(args.config)
    tz = settings.service.timezone
    _, rows = _locked_rows(settings)
    if args.json:
        print(json.dumps([{"caller": r.caller, "scope": r.scope, "failures": r.failures,
                           "since": r.since.astimezone(tz).isoformat(),
                           "until": r.until.astimezone(tz).isoformat()} for r in rows], indent=1))
        return 0
    if not rows:
        print("no PIN lockouts")
    for r in rows:
        print(f"{_who(r)}  locked {r.since.astimezone(tz):%Y-%m-%d %H:%M:%S}–"
              f"{r.until.astimezone(tz):%H:%M:%S} after {r.failures} wrong PINs")
    return 0


def _matches(row, caller: str) -> bool:
    """A lock row is the caller's when the text is its key as listed, or the same number (the
    user part of the caller's SIP URI: `4915112345` for `<sip:+4915112345@carrier>`)."""
    from ivr.guard import caller_key
    from ivr.routing import user_part
    if row.caller is None:
        return False
    if caller_key(caller) == row.caller:
        return True
    uri = row.caller.rsplit("<", 1)[-1].split(">", 1)[0]
    return bool(user_part(caller)) and user_part(caller) == user_part(uri)


def cmd_lockout_clear(args) -> int:
    settings = _settings(args.config)
    store, rows = _locked_rows(settings)
    chosen = rows if args.all else [r for r in rows if _matches(r, args.caller)]
    if not chosen:
        locked = ", ".join(_who(r) for r in rows) or "nobody"
        what = "nobody is" if args.all else f"{args.caller!r} is not"
        print(f"confbot: {what} locked out (locked now: {locked})", file=sys.stderr)
        return 1
    cleared = store.clear_lockouts([r.id for r in chosen], datetime.now(timezone.utc),
                                   by=f"confbot lockout clear (uid {os.getuid()})")
    for r in cleared:
        print(f"lifted the PIN lockout of {_who(r)}")
    if cleared:
        print("a running service lets them in again within a few seconds")
    return 0 if cleared else 1


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="confbot", description="Telephone conferences booked by email.",
        epilog=f"Every command reads the config file given by --config PATH (check-config: PATH), "
               f"else ${CONFIG_ENV}, else {DEFAULT_CONFIG} in the current directory. "
               "`confbot COMMAND --help` shows a command's options.")
    p.add_argument("-v", "--verbose", action="count", default=0, help="more log output (-vv: debug)")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    r = sub.add_parser("run", help="start the service (mail agent and SIP side) from the config")
    r.add_argument("--config", help=CONFIG_HELP)
    r.add_argument("--no-voice", action="store_true", help="mail side only")
    r.add_argument("--no-mail", action="store_true", help="SIP side only")
    r.set_defaults(func=cmd_run)

    c = sub.add_parser("check-config", help="validate a config file (PATH); errors as file:line: reason")
    c.add_argument("path", nargs="?", metavar="PATH", help=CONFIG_HELP)
    c.set_defaults(func=cmd_check_config)

    pr = sub.add_parser("prompts", help="render the spoken prompts into the cache")
    prsub = pr.add_subparsers(dest="prompts_command", required=True, metavar="ACTION")
    prr = prsub.add_parser("render", help="render every prompt of every language (cached; a progress bar)")
    prr.add_argument("--config", help=CONFIG_HELP)
    prr.set_defaults(func=cmd_prompts_render)

    b = sub.add_parser("booking", help="parse booking mails, list, show and cancel bookings")
    bsub = b.add_subparsers(dest="booking_command", required=True, metavar="ACTION")
    bp = bsub.add_parser("parse", help="parse a booking mail (.eml) and print the result as JSON")
    bp.add_argument("file", help="the mail, as an RFC 5322 .eml file")
    bp.add_argument("--now", help="reference time for 'in the past' (ISO 8601; default: now)")
    bp.add_argument("--config", help=CONFIG_HELP)
    bp.set_defaults(func=cmd_booking_parse)
    bl = bsub.add_parser("list", help="list bookings from now on")
    bl.add_argument("--all", action="store_true", help="include past and cancelled bookings")
    bl.add_argument("--json", action="store_true", help="print JSON")
    bl.add_argument("--config", help=CONFIG_HELP)
    bl.set_defaults(func=cmd_booking_list)
    bs = bsub.add_parser("show", help="show one booking with its PINs")
    bs.add_argument("reference")
    bs.add_argument("--config", help=CONFIG_HELP)
    bs.set_defaults(func=cmd_booking_show)
    bc = bsub.add_parser("cancel", help="cancel a booking and free its lines")
    bc.add_argument("reference")
    bc.add_argument("--config", help=CONFIG_HELP)
    bc.set_defaults(func=cmd_booking_cancel)

    lk = sub.add_parser("lockout", help="list and lift callers' PIN lockouts (brute-force guard)")
    lksub = lk.add_subparsers(dest="lockout_command", required=True, metavar="ACTION")
    ll = lksub.add_parser("list", help="callers locked out of PIN entry now, and until when")
    ll.add_argument("--json", action="store_true", help="print JSON")
    ll.add_argument("--config", help=CONFIG_HELP)
    ll.set_defaults(func=cmd_lockout_list)
    lc = lksub.add_parser("clear", help="lift a caller's lockout (a running service obeys within 2 s)")
    who = lc.add_mutually_exclusive_group(required=True)
    who.add_argument("caller", nargs="?", metavar="CALLER",
                     help="the caller as `lockout list` shows it, or its number")
    who.add_argument("--all", action="store_true", help="lift every lockout")
    lc.add_argument("--config", help=CONFIG_HELP)
    lc.set_defaults(func=cmd_lockout_clear)
    return p


def _resolve_config(args) -> int | None:
    """Fill in the config path (--config / PATH, else $CONFBOT_CONFIG, else config.toml here);
    a file that is not there is an error that says which file was looked for and how to name
    another. `booking parse` may run without one (built-in defaults)."""
    attr = "path" if args.command == "check-config" else "config"
    if not hasattr(args, attr):
        return None
    given, source = getattr(args, attr), "--config" if attr == "config" else "PATH"
    if given is None and os.environ.get(CONFIG_ENV):
        given, source = os.environ[CONFIG_ENV], f"${CONFIG_ENV}"
    if given is None:
        given, source = DEFAULT_CONFIG, None
    setattr(args, attr, given)
    if Path(given).exists() or (source is None and args.command == "booking"
                                and args.booking_command == "parse"):
        return None
    looked = Path(given).absolute()
    how = ("confbot check-config PATH" if attr == "path" else "--config PATH")
    if source is None:
        print(f"confbot: no config file: looked for {looked} (the default, {DEFAULT_CONFIG} in the "
              f"current directory); name one with {how} or set {CONFIG_ENV}=PATH", file=sys.stderr)
    else:
        print(f"confbot: the config file {looked} (from {source}) does not exist", file=sys.stderr)
    return 1


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    missing = _resolve_config(args)
    if missing is not None:
        return missing
    logging.basicConfig(level=[logging.WARNING, logging.INFO, logging.DEBUG][min(args.verbose, 2)]
                        if args.command != "run" else [logging.INFO, logging.DEBUG][min(args.verbose, 1)],
                        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s")
    if args.verbose < 2:
        # aiosmtpd logs every SMTP command at INFO as "mail.log"; our own lines say what matters
        logging.getLogger("mail.log").setLevel(logging.WARNING)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
