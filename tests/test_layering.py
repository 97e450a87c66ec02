"""The import rules of STYLE.md, checked by reading every module's imports with `ast`.

Pure cores import only the standard library, a few pure libraries and other pure cores;
each adapter wraps one outside library and imports no other adapter; `ivr` and `mail` never
import each other; nothing imports the composition root; only bot.sip (and bot.sipcall and
bot.sipbridge, split off it for size) imports pjsua2.
Every module must be classified below, so a new module is a conscious decision.
"""
from __future__ import annotations

import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("bot", "ivr", "mail")

PURE_LIBS = {"numpy", "icalendar", "charset_normalizer"}
PURE = {
    "bot", "bot.booking", "bot.settings", "bot.ledger", "bot.capacity", "bot.mixer", "bot.rooms",
    "bot.refmix", "bot.talk", "bot.sipevents", "bot.reconcile", "bot.announce", "bot.roster", "bot.endwatch",
    "ivr", "ivr.catalog", "ivr.say",
    "ivr.events", "ivr.flow", "ivr.steps", "ivr.conference", "ivr.invitee", "ivr.guard",
    "ivr.keypad", "ivr.routing", "ivr.vad",
    "mail", "mail.parse", "mail.mime", "mail.body", "mail.texts", "mail.datetext", "mail.invite", "mail.agent",
    "mail.compose", "mail.ics", "mail.zones", "mail.itip", "mail.charset",
}
# adapter → the one outside library (or stdlib I/O module) it wraps
ADAPTERS = {
    "ivr.tts": "pyttsx3", "ivr.render": "soxr", "ivr.speech": "vosk",
    "bot.sip": "pjsua2", "bot.sipcall": "pjsua2", "bot.sipbridge": "pjsua2", "bot.store": "sqlite3", "bot.mailstore": "sqlite3", "bot.config": "tomlkit",
    "bot.cdrstore": "sqlite3", "bot.lockstore": "sqlite3", "bot.logsetup": "logging",
    "mail.smtp_in": "aiosmtpd", "mail.imap_in": "aioimaplib", "mail.outbound": "aiosmtplib",
}
# wiring: may import cores and adapters (but not the composition root)
WIRING = {"bot.voice", "bot.bridgewatch", "bot.ivrdriver", "bot.switchboard", "bot.bookingwatch", "bot.namefiles",
          "mail.pipeline", "bot.cli", "bot.app", "bot.runs", "bot.lockouts",
          "ivr.tap"}   # joins the VAD core to the vosk recogniser in time; wraps no library itself
ROOT_MODULES = {"bot.app"}


def modules() -> dict[str, Path]:
    out = {}
    for pkg in PACKAGES:
        for path in (ROOT / pkg).rglob("*.py"):
            rel = path.relative_to(ROOT).with_suffix("")
            name = ".".join(rel.parts)
            out[name.removesuffix(".__init__")] = path
    return out


def imports_of(path: Path, name: str) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = name.split(".")[: -node.level] if not path.name == "__init__.py" else name.split(".")[: len(name.split(".")) - node.level + 1]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            found.add(mod)
            found.update(f"{mod}.{a.name}" for a in node.names)
    return found


def own(mod: str, known: dict) -> str | None:
    """The project module an import names (longest known prefix), or None if outside."""
    parts = mod.split(".")
    for cut in range(len(parts), 0, -1):
        if ".".join(parts[:cut]) in known:
            return ".".join(parts[:cut])
    return None


def test_every_module_is_classified():
    unclassified = set(modules()) - PURE - set(ADAPTERS) - WIRING
    assert not unclassified, f"classify these in tests/test_layering.py: {sorted(unclassified)}"


def test_import_rules_hold():
    known = modules()
    problems = []
    for name, path in sorted(known.items()):
        for imp in imports_of(path, name):
            top = imp.split(".")[0]
            target = own(imp, known)
            if target is None and top not in PACKAGES:
                if name in PURE and top not in sys.stdlib_module_names and top not in PURE_LIBS:
                    problems.append(f"pure core {name} imports outside library {imp}")
                if name in PURE and top in {"sqlite3", "socket", "asyncio", "threading", "subprocess"}:
                    problems.append(f"pure core {name} imports I/O module {imp}")
                if top == "pjsua2" and ADAPTERS.get(name) != "pjsua2":
                    problems.append(f"{name} imports pjsua2 (only bot.sip and its split-offs "
                                    "bot.sipcall, bot.sipbridge may)")
                if name in ADAPTERS and top not in sys.stdlib_module_names and top not in PURE_LIBS \
                        and top != ADAPTERS[name]:
                    problems.append(f"adapter {name} wraps {ADAPTERS[name]} but imports {imp}")
                continue
            if target is None or target == name:
                continue
            if name in PURE and target not in PURE:
                problems.append(f"pure core {name} imports non-core {target}")
            # Two modules wrapping the same library are one adapter split for size
            # (bot.store mixes in bot.mailstore); different libraries never meet.
            if name in ADAPTERS and target in ADAPTERS and ADAPTERS[name] != ADAPTERS[target]:
                problems.append(f"adapter {name} imports adapter {target}")
            if target in ROOT_MODULES and name != "bot.cli":
                problems.append(f"{name} imports the composition root {target}")
            a, b = name.split(".")[0], target.split(".")[0]
            if {a, b} == {"ivr", "mail"}:
                problems.append(f"{name} imports {target}: ivr and mail never import each other")
    assert not problems, "\n".join(problems)


def test_the_checker_catches_a_core_importing_an_adapter(tmp_path):
    """The rules are not vacuous: a fake core importing the store is reported."""
    fake = tmp_path / "x.py"
    fake.write_text("from bot import store\nimport sqlite3\n")
    imps = imports_of(fake, "bot.mixer")
    assert "bot.store" in imps and "sqlite3" in imps
    assert own("bot.store.SqliteStore", {"bot.store": None}) == "bot.store"
