"""Helpers for the call-flow tests: a dial plan, bookings, and a tiny scripted driver that plays
every prompt instantly (STYLE lesson 12: it speaks the same events/actions as the real driver)."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

from bot.booking.domain import Booking
from bot.config.settings import DialIn, Route, Tariff
from ivr.events import CallAnswered, DigitPressed, Play, PlayFile, PromptFinished
from ivr.flow import CallFlow
from ivr.flowconfig import FlowConfig
from ivr.guard import DialOutGuard, PinGuard
from ivr.steps import Naming

T0 = datetime(2025, 3, 4, 10, 0, tzinfo=timezone.utc)

DIALINS = (
    DialIn("+49 900 100", "4990100", Tariff.PREMIUM, Route.PIN),
    DialIn("+49 800 200", "4980200", Tariff.TOLLFREE, Route.PIN),
    DialIn("+49 30 300", "4930300", Tariff.STANDARD, Route.DIRECT, room="lobby"),
    DialIn("+49 30 400", "4930400", Tariff.STANDARD, Route.MENU, language="en"),
    DialIn("+49 30 500", "4930500", Tariff.STANDARD, Route.OPERATOR),
)
PIN_NUMBER, TOLLFREE_NUMBER, DIRECT_NUMBER, MENU_NUMBER, OPERATOR_NUMBER = (d.user for d in DIALINS)
OPERATOR = "sip:operator@127.0.0.1"

BOOKING = Booking(reference="CB-7K2Q9", organizer="alice@example.com", title="Quarterly review",
                  start=T0, end=T0 + timedelta(hours=1), participants=5,
                  participant_pin="482913", moderator_pin="771204")


def config(**overrides) -> FlowConfig:
    base = dict(dialins=DIALINS, operator_uri=OPERATOR, naming=Naming.OFF)
    base.update(overrides)
    return FlowConfig(**base)


def new_flow(cfg: FlowConfig | None = None, pin_guard: PinGuard | None = None,
             dial_guard: DialOutGuard | None = None) -> CallFlow:
    return CallFlow(cfg or config(), pin_guard or PinGuard(), dial_guard or DialOutGuard())


def answer(flow: CallFlow, dialled: str = PIN_NUMBER, caller: str = "4917012345", at=T0) -> list:
    return flow.handle(CallAnswered("c1", f"sip:{dialled}@127.0.0.1", caller, at))


def press(flow: CallFlow, keys: str, at=None) -> list:
    out: list = []
    for k in keys:
        out += flow.handle(DigitPressed(k, at))
    return out


def finish(flow: CallFlow, actions: list) -> list:
    """The driver played every queued prompt to its end: report each one, in order."""
    out: list = []
    for a in actions:
        if isinstance(a, (Play, PlayFile)) and not flow.ended:
            out += flow.handle(PromptFinished(a.token))
    return out


def prompts(actions: list) -> list:
    return [a.prompt for a in actions if isinstance(a, Play)]


def of(actions: list, cls: type) -> list:
    return [a for a in actions if isinstance(a, cls)]
