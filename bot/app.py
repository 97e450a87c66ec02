"""The composition root: builds every part from config.toml, owns the asyncio loop, wires
events to cores and actions to adapters. Nothing imports this module but the CLI.

Lifecycle: load the config (a broken file stops the start with file:line reasons), open the
store, start the mail side (pipeline, sender, SMTP listener and/or IMAP agent) and the voice side
(SIP), then watch config.toml: a valid edit is applied live, a broken one is logged with its
file:line reasons and the running configuration stays. SIGINT/SIGTERM stop everything in order.
"""
from __future__ import annotations

import asyncio
import logging
import signal
from pathlib import Path

from bot.config import load as config
from bot.config.settings import Inbound, Settings

log = logging.getLogger("confbot")

RELOAD_POLL_SECONDS = 2.0
# keys read once at the start: an edit of one is noted, and takes effect after a restart
RESTART_ONLY = ("mail.smtp", "mail.imap", "sip.host", "sip.port", "sip.transports",
                "sip.clock_rate", "service.data_dir", "service.log", "service.log_file",
                "ivr.speech_model")


class App:
    def __init__(self, config_path: str | Path, *, voice: bool = True, mail: bool = True):
        self.config_path = Path(config_path)
        self.settings: Settings = config.load(self.config_path)
        self.running: Settings = self.settings    # what the restart-only keys started with
        self.want_voice, self.want_mail = voice, mail
        self.stopping = asyncio.Event()
        self.tasks: list[asyncio.Task] = []
        self.store = None
        self.pipeline = None
        self.listeners: list = []
        self.voice = None

    # ---- mail side ------------------------------------------------------------------------------
    async def start_mail(self) -> None:
        from bot.store.sqlite import SqliteStore
        from mail.agent import Agent
        from mail.transport.outbound import make_outbound
        from mail.transport.pipeline import MailPipeline

        s = self.settings
        Path(s.service.data_dir).mkdir(parents=True, exist_ok=True)
        self.store = SqliteStore(Path(s.service.data_dir) / "confbot.sqlite3")
        self.store.reserved_pins = _personal_pins(s)
        relay_tls = _tls_context(s.mail.relay.ca_file)
        self.pipeline = MailPipeline(s, self.store, Agent(s, self.store),
                                     make_outbound(s.mail, tls_context=relay_tls))
        await self.pipeline.start()
        if Inbound.SMTP in s.mail.inbound:
            from mail.transport.smtp_in import SmtpListener
            smtp = SmtpListener(s.mail.smtp, self.pipeline.accept)
            await smtp.start()
            self.listeners.append(smtp)
        if Inbound.IMAP in s.mail.inbound:
            from mail.transport.imap_in import ImapAgent
            imap = ImapAgent(s.mail.imap, self.pipeline, ssl_context=_tls_context(s.mail.imap.ca_file))
            await imap.start()
            self.listeners.append(imap)
            log.info("IMAP agent on %s:%d, folder %s", s.mail.imap.host, s.mail.imap.port, s.mail.imap.folder)
        log.info("replies go to %s", s.mail.outbox_dir if s.mail.outbound.value == "outbox"
                 else f"relay {s.mail.relay.host}:{s.mail.relay.port}")

    # ---- voice side -----------------------------------------------------------------------------
    async def start_voice(self) -> None:
        from bot.service.voice import VoiceService
        ivr = self._ivr_context()
        if ivr is not None and self.settings.ivr.speech_model:
            ivr.speech = await asyncio.to_thread(load_speech_model, self.settings)  # 2-4 s
        self.voice = VoiceService(self.settings, asyncio.get_running_loop(), ivr=ivr)
        await self.voice.start()
        if ivr is not None:       # booked conferences: their end, extensions, cancellations
            from bot.service.bookingwatch import BookingWatch
            self.tasks.append(asyncio.create_task(BookingWatch(self.voice, self.store).run(),
                                                  name="booking-watch"))
        log.info("SIP on %s:%d (%s)%s%s", self.settings.sip.host, self.settings.sip.port,
                 ", ".join(self.settings.sip.transports),
                 "" if ivr is not None else " WITHOUT the IVR: direct-access numbers only",
                 ", spoken menu choices on" if ivr is not None and ivr.speech is not None else "")

    def _ivr_context(self):
        """The IVR's shared parts: the booking store (PINs, call records), the prompt catalog
        and the render cache. Without them only direct-access rooms work (logged loudly)."""
        from bot.service.context import IvrContext
        from bot.service.prompts import Prompts
        from bot.store.sqlite import SqliteStore
        from ivr import catalog
        from ivr.speech import render
        from ivr.speech import tts
        s = self.settings
        data = Path(s.service.data_dir)
        if self.store is None:
            data.mkdir(parents=True, exist_ok=True)
            self.store = SqliteStore(data / "confbot.sqlite3")
            self.store.reserved_pins = _personal_pins(s)
        try:
            cat = catalog.load(self.config_path.resolve().parent / "prompts", s.service.languages,
                               s.service.default_language)
            speaker = tts.Speaker(rate=s.ivr.tts_rate)
        except (catalog.CatalogError, tts.TtsUnavailable) as e:
            log.error("the IVR cannot start: %s", e)
            return None
        cache = render.PromptCache(speaker, data / "prompts", s.sip.clock_rate)
        return IvrContext(Prompts(cat, cache), store=self.store, names_dir=data / "names",
                          default_language=s.service.default_language,
                          languages=tuple(s.service.languages))

    # ---- live reload ----------------------------------------------------------------------------
    async def watch_config(self) -> None:
        last = self._stamp()
        while not self.stopping.is_set():
            try:
                await asyncio.wait_for(self.stopping.wait(), RELOAD_POLL_SECONDS)
            except asyncio.TimeoutError:
                pass
            stamp = self._stamp()
            if stamp == last:
                continue
            last = stamp
            try:
                new = config.load(self.config_path)
            except config.ConfigError as e:
                log.error("config edit rejected, the running configuration stays:\n%s", e)
                continue
            self.apply(new)

    def _stamp(self):
        try:
            st = self.config_path.stat()
            return st.st_mtime_ns, st.st_size
        except OSError:
            return None

    def apply(self, new: Settings) -> None:
        old, self.settings = self.settings, new
        for part in RESTART_ONLY:
            # compared with what is running, not with the previous edit: a revert is no news
            running, before, now = (_part(s, part) for s in (self.running, old, new))
            if now == before:
                continue
            if now == running:
                log.info("config: %s is back to the running value; nothing to restart", part)
            else:
                log.warning("config: %s changed; it takes effect after a restart", part)
        if self.store is not None:
            self.store.reserved_pins = _personal_pins(new)
        if self.pipeline is not None:
            self.pipeline.reconfigure(new)
        if self.voice is not None and hasattr(self.voice, "reconfigure"):
            self.voice.reconfigure(new)
        log.info("config reloaded from %s", self.config_path)

    # ---- run ------------------------------------------------------------------------------------
    async def main(self) -> int:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, self.stopping.set)
        try:
            if self.want_mail:
                await self.start_mail()
            if self.want_voice:
                await self.start_voice()
            self.tasks.append(asyncio.create_task(self.watch_config(), name="config-watch"))
            log.info("confbot running (config %s); Ctrl-C stops", self.config_path)
            await self.stopping.wait()
        finally:
            await self.shutdown()
        return 0

    async def shutdown(self) -> None:
        log.info("stopping")
        self.stopping.set()
        for listener in reversed(self.listeners):
            await _quietly(listener.stop(), "mail listener")
        if self.voice is not None:
            await _quietly(self.voice.stop(), "voice service")
        if self.pipeline is not None:
            await _quietly(self.pipeline.stop(), "mail pipeline")
        for t in self.tasks:
            t.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        log.info("stopped")


def load_speech_model(settings: Settings, grammars=None):
    """The vosk model of [ivr] speech_model, checked against every menu's words in every
    configured language; None (logged as an error) when it cannot be used. The service then runs
    with keys only: a caller can always press a key, so speech never keeps the phones down."""
    from ivr.speech import asr as speech
    path = settings.ivr.speech_model
    try:
        model = speech.SpeechModel(path)
    except speech.SpeechUnavailable as e:
        log.error("ivr.speech_model: %s; spoken menu choices are OFF (keys only)", e)
        return None
    problems = speech.grammar_problems(model, settings.service.languages,
                                       grammars or speech.grammar_for)
    if problems:
        log.error("ivr.speech_model %s cannot serve the menus; spoken menu choices are OFF "
                  "(keys only):\n  %s", path, "\n  ".join(problems))
        return None
    log.info("speech model %s loaded", path)
    return model


def _part(settings: Settings, part: str):
    section, key = part.split(".")
    return getattr(getattr(settings, section), key)


def _personal_pins(settings: Settings) -> frozenset[str]:
    """The moderators' personal PINs: no booking may be given one."""
    return frozenset(m.pin for m in settings.moderators)


def _tls_context(ca_file: str | None):
    """A verifying TLS context trusting `ca_file` in addition to nothing else; None = default."""
    if not ca_file:
        return None
    import ssl
    return ssl.create_default_context(cafile=ca_file)


async def _quietly(coro, what: str) -> None:
    try:
        await asyncio.wait_for(coro, 15)
    except Exception:  # a failing part must not keep the others running
        log.exception("error while stopping the %s", what)


def run(config_path: str | Path, *, voice: bool = True, mail: bool = True) -> int:
    try:
        app = App(config_path, voice=voice, mail=mail)
    except config.ConfigError as e:
        log.error("cannot start, the configuration has errors:\n%s", e)
        return 1
    from bot.service import logsetup
    service = app.settings.service
    if service.log is not service.log.STDERR:
        log.info("logging to %s from now on", service.log_file if service.log is service.log.FILE
                 else "syslog")
    try:
        where = logsetup.install(service)
    except logsetup.LogSetupError as e:
        log.error("cannot start: %s", e)
        return 1
    log.info("confbot starting, log to %s", where)
    return asyncio.run(app.main())
