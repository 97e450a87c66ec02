"""The import rules of STYLE.md, checked by reading every module's imports with `ast`.

The folders say what a module may do (`KINDS`): pure cores import only the standard library, a
few pure libraries and other pure cores; each adapter folder wraps one outside library and
imports no other adapter; wiring joins cores and adapters; `ivr` and `mail` never import each
other; nothing imports the composition root; only bot/sip imports pjsua2. A module is classified
by its folder (the longest listed prefix); the few exceptions inside a folder are listed by name.
"""
from __future__ import annotations

import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("bot", "ivr", "mail")

PURE_LIBS = {"numpy", "icalendar", "charset_normalizer"}
PURE, WIRING = "pure", "wiring"
# folder (or top-level module) → PURE, WIRING, or the one outside library an adapter wraps
KINDS = {
    "bot": PURE,                       # bot/__init__.py
    "bot.conference": PURE, "bot.booking": PURE,
    "bot.sip": "pjsua2", "bot.store": "sqlite3", "bot.config": "tomlkit",
    "bot.service": WIRING, "bot.app": WIRING, "bot.cli": WIRING,
    "ivr": PURE,                       # the caller's journey, pure
    "ivr.speech": WIRING,              # the package doc; its modules are listed below
    "mail": PURE,                      # parse, decide, compose
    "mail.transport": WIRING,          # the package doc; its modules are listed below
}
# exceptions inside a folder: pure types beside their adapter, and one adapter per library
MODULE_KINDS = {
    "bot.sip.events": PURE,            # the commands and events the stack exchanges
    "bot.config.settings": PURE,       # the typed tables config.toml compiles into
    "bot.service.logsetup": "logging",
    "ivr.speech.tts": "pyttsx3", "ivr.speech.render": "soxr", "ivr.speech.asr": "vosk",
    "ivr.speech.vad": PURE,
    "ivr.speech.tap": WIRING,          # joins the VAD core to the vosk recogniser in time
    "mail.transport.smtp_in": "aiosmtpd", "mail.transport.imap_in": "aioimaplib",
    "mail.transport.outbound": "aiosmtplib", "mail.transport.pipeline": WIRING,
}
ROOT_MODULES = {"bot.app"}


def kind_of(name: str) -> str | None:
    if name in MODULE_KINDS:
        return MODULE_KINDS[name]
    parts = name.split(".")
    for cut in range(len(parts), 0, -1):
        kind = KINDS.get(".".join(parts[:cut]))
        if kind is not None:
            return kind
    return None


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
    unclassified = sorted(n for n in modules() if kind_of(n) is None)
    assert not unclassified, f"classify these in tests/test_layering.py: {unclassified}"


def test_pure_folders_hold_pure_modules_only_by_their_folder_or_a_listed_exception():
    """The folder tells a reader what a module may do: exceptions are few and named."""
    assert all(kind_of(n) is PURE for n in modules()
               if n.startswith(("bot.conference", "bot.booking")))


def test_import_rules_hold():
    known = modules()
    problems = []
    for name, path in sorted(known.items()):
        kind = kind_of(name)
        pure, adapter = kind is PURE, kind not in (PURE, WIRING)
        for imp in imports_of(path, name):
            top = imp.split(".")[0]
            target = own(imp, known)
            if target is None and top not in PACKAGES:
                if pure and top not in sys.stdlib_module_names and top not in PURE_LIBS:
                    problems.append(f"pure core {name} imports outside library {imp}")
                if pure and top in {"sqlite3", "socket", "asyncio", "threading", "subprocess"}:
                    problems.append(f"pure core {name} imports I/O module {imp}")
                if top == "pjsua2" and kind != "pjsua2":
                    problems.append(f"{name} imports pjsua2 (only bot/sip may)")
                if adapter and top not in sys.stdlib_module_names and top not in PURE_LIBS \
                        and top != kind:
                    problems.append(f"adapter {name} wraps {kind} but imports {imp}")
                continue
            if target is None or target == name:
                continue
            target_kind = kind_of(target)
            if pure and target_kind is not PURE:
                problems.append(f"pure core {name} imports non-core {target}")
            # Two modules wrapping the same library are one adapter split for size
            # (bot/store mixes its parts into one class); different libraries never meet.
            if adapter and target_kind not in (PURE, WIRING) and target_kind != kind:
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
    fake.write_text("from bot.store import sqlite\nimport sqlite3\n")
    imps = imports_of(fake, "bot.conference.mixer")
    assert "bot.store.sqlite" in imps and "sqlite3" in imps
    assert own("bot.store.sqlite.SqliteStore", {"bot.store.sqlite": None}) == "bot.store.sqlite"
