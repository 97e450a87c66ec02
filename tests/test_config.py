"""config.toml: the shipped file is valid, every error names file:line: reason, unknown keys
are errors, write-back keeps comments and never leaves a broken file."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from bot.config import load as config
from bot.config.settings import Inbound, Outbound, Route, Tariff

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = (ROOT / "config.toml").read_text(encoding="utf-8")


def line_of(text: str, needle: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), 1) if needle in line)


def errors_of(text: str) -> list[str]:
    with pytest.raises(config.ConfigError) as e:
        config.parse_text(text, "c.toml")
    return e.value.problems


def test_shipped_config_is_valid_and_has_the_demo_room():
    s = config.parse_text(SHIPPED)
    assert s.service.timezone.key == "Europe/Berlin"
    assert s.service.languages == ("de", "en") and s.service.default_language == "de"
    assert s.dialin_for(Tariff.PREMIUM).number.startswith("+49 900")
    assert s.dialin_for(Tariff.TOLLFREE).number.startswith("+49 800")
    demo = s.dialin_by_user("1000")
    assert demo.route is Route.DIRECT and demo.room == "lobby" and s.room("lobby")
    assert s.mail.inbound == (Inbound.SMTP,) and s.mail.outbound is Outbound.OUTBOX
    assert (s.mail.smtp.host, s.mail.smtp.port) == ("127.0.0.1", 2525)
    assert s.pins.length >= 6


def test_empty_file_gives_the_defaults():
    s = config.parse_text("")
    assert s.capacity.total_lines == 200 and s.sip.port == 5060


def test_unknown_key_is_an_error_with_its_line():
    text = SHIPPED.replace("port = 2525", "port = 2525\nprot = 25")
    (problem,) = errors_of(text)
    assert problem.startswith(f"c.toml:{line_of(text, 'prot = 25')}: ")
    assert "unknown key 'prot'" in problem


def test_unknown_section_is_an_error():
    (problem,) = errors_of(SHIPPED + "\n[telephony]\nx = 1\n")
    assert "unknown section or key 'telephony'" in problem


def test_every_error_is_reported_not_just_the_first():
    text = (SHIPPED.replace('timezone = "Europe/Berlin"', 'timezone = "Mars/Olympus"')
            .replace("length = 6", "length = 4")
            .replace('route = "direct"', 'route = "straight"'))
    problems = errors_of(text)
    assert len(problems) == 3
    assert problems[0].startswith(f"c.toml:{line_of(text, 'Mars/Olympus')}: ") and "time zone" in problems[0]
    assert any(p.startswith(f"c.toml:{line_of(text, 'length = 4')}: ") and "at least 6" in p for p in problems)
    assert any(p.startswith(f"c.toml:{line_of(text, 'route = ' + chr(34) + 'straight')}: ") and "dialin[3].route" in p for p in problems)


def test_toml_syntax_error_names_the_line():
    text = SHIPPED.replace('name = "confbot"', 'name = "confbot')
    (problem,) = errors_of(text)
    assert problem.startswith(f"c.toml:{line_of(text, 'name = ' + chr(34) + 'confbot')}: ")


def test_direct_route_needs_a_defined_room():
    text = SHIPPED.replace('room = "lobby"', 'room = "hall"')
    (problem,) = errors_of(text)
    assert f"c.toml:{line_of(text, 'room = ' + chr(34) + 'hall')}:" in problem and "'hall' is not defined" in problem


def test_wrong_types_are_explained():
    text = SHIPPED.replace("total_lines = 200", 'total_lines = "lots"')
    (problem,) = errors_of(text)
    assert "capacity.total_lines must be a whole number" in problem


def test_update_keeps_comments_and_validates(tmp_path):
    path = tmp_path / "config.toml"
    path.write_text(SHIPPED, encoding="utf-8")

    def raise_limit(doc):
        doc["rooms"][0]["max_participants"] = 80
    s = config.update(path, raise_limit)
    assert s.room("lobby").max_participants == 80
    after = path.read_text(encoding="utf-8")
    assert "# Announce joins and leaves to the room: " in after
    assert "max_participants = 80" in after


def test_update_with_a_bad_value_leaves_the_file_untouched(tmp_path):
    path = tmp_path / "config.toml"
    path.write_text(SHIPPED, encoding="utf-8")

    def break_it(doc):
        doc["pins"]["length"] = 3
    with pytest.raises(config.ConfigError):
        config.update(path, break_it)
    assert path.read_text(encoding="utf-8") == SHIPPED
    assert not [p for p in tmp_path.iterdir() if p.name != "config.toml"], "temp file left behind"


def test_relative_paths_are_anchored_at_the_config_folder(tmp_path):
    path = tmp_path / "config.toml"
    path.write_text(SHIPPED, encoding="utf-8")
    s = config.load(path)
    assert s.service.data_dir == str(tmp_path / "var")
    assert s.mail.outbox_dir == str(tmp_path / "var" / "outbox")


def test_check_config_command_exit_codes(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text(SHIPPED.replace("port = 2525", "port = 2525\nprot = 25"), encoding="utf-8")
    ok = subprocess.run([sys.executable, "-m", "bot.cli", "check-config", str(ROOT / "config.toml")],
                        capture_output=True, text=True, cwd=ROOT)
    assert ok.returncode == 0, ok.stderr
    res = subprocess.run([sys.executable, "-m", "bot.cli", "check-config", str(bad)],
                         capture_output=True, text=True, cwd=ROOT)
    assert res.returncode == 1
    assert res.stderr.startswith(f"{bad}:{line_of(bad.read_text(), 'prot')}: unknown key 'prot'")


def test_keypad_table_is_compiled_and_a_bad_action_names_its_line():
    s = config.parse_text(SHIPPED)
    assert s.keypad is not None
    text = SHIPPED.replace('"*0" = "leave"', '"*0" = "hang_up_everyone"')
    (problem,) = errors_of(text)
    assert problem.startswith(f"c.toml:{line_of(text, 'hang_up_everyone')}: ")
    assert "hang_up_everyone" in problem


def test_ivr_uris_are_checked():
    text = SHIPPED.replace('# dialout_uri = "sip:{number}@127.0.0.1:5070"', 'dialout_uri = "sip:gw@127.0.0.1"')
    (problem,) = errors_of(text)
    assert "{number}" in problem and problem.startswith(f"c.toml:{line_of(text, 'dialout_uri = ')}: ")


def test_room_announce_mode():
    from bot.config.settings import Announce
    assert config.parse_text(SHIPPED).room("lobby").announce is Announce.TONE
    named = config.parse_text(SHIPPED.replace('announce = "tone"', 'announce = "name"'))
    assert named.room("lobby").announce is Announce.NAME
    (problem,) = errors_of(SHIPPED.replace('announce = "tone"', 'announce = "loud"'))
    assert "rooms[1].announce must be one of" in problem


def test_speech_needs_a_16khz_bridge():
    text = SHIPPED.replace('# speech_model = "/opt/vosk/vosk-model-small-de-0.15"', 'speech_model = "/opt/vosk/m"')
    (problem,) = errors_of(text)
    assert "clock_rate = 16000" in problem and problem.startswith(f"c.toml:{line_of(text, 'speech_model = ')}: ")
    config.parse_text(text.replace("clock_rate = 8000", "clock_rate = 16000"))


def test_cross_checks_between_sections():
    text = SHIPPED.replace("total_lines = 200", "total_lines = 600")
    assert any("more than sip.max_calls" in p for p in errors_of(text.replace("room_max = 50", "room_max = 50")))
    (p,) = errors_of(SHIPPED.replace("rtp_port_range = 10000", "rtp_port_range = 40000").replace("rtp_port = 20000", "rtp_port = 30000"))
    assert "beyond port 65535" in p
    (p,) = errors_of(SHIPPED.replace("early_join_minutes = 10", "early_join_minutes = 90"))
    assert "early_join_minutes may be at most 60" in p


def test_update_keeps_the_file_mode_and_writes_through_a_symlink(tmp_path):
    import os
    real = tmp_path / "real.toml"
    real.write_text(SHIPPED, encoding="utf-8")
    os.chmod(real, 0o640)
    link = tmp_path / "config.toml"
    link.symlink_to(real)
    config.update(link, lambda doc: doc["capacity"].__setitem__("total_lines", 150))
    assert link.is_symlink(), "the symlink was replaced by a file"
    assert "total_lines = 150" in real.read_text(encoding="utf-8")
    assert (real.stat().st_mode & 0o777) == 0o640


def test_tls_and_model_paths_are_anchored_at_the_config_folder(tmp_path):
    path = tmp_path / "config.toml"
    path.write_text(SHIPPED.replace('# tls_cert = "/etc/confbot/smtp.crt"', 'tls_cert = "certs/smtp.crt"')
                    .replace('# tls_key = "/etc/confbot/smtp.key"', 'tls_key = "certs/smtp.key"'), encoding="utf-8")
    s = config.load(path)
    assert s.mail.smtp.tls_cert == str(tmp_path / "certs" / "smtp.crt")


MODERATORS = '''
[[rooms]]
name = "lobby"
max_participants = 10

[[moderators]]
name = "Eva"
pin = "51873920"
rooms = ["lobby"]

[[moderators]]
name = "Olga"
pin = "77112233"
superuser = true
'''


def test_moderators_with_personal_pins_and_their_rooms():
    s = config.parse_text(MODERATORS)
    eva, olga = s.moderators
    assert s.moderator_by_pin("51873920") is eva and s.moderator_by_pin("5187392") is None
    assert eva.may_moderate("lobby") and not eva.may_moderate("CB-7K2Q9")
    assert olga.superuser and olga.may_moderate("CB-7K2Q9")


@pytest.mark.parametrize("change, error", [
    (('pin = "51873920"', 'pin = "5187"'), "moderators[1].pin must be 6 to 12 digits"),
    (('pin = "77112233"', 'pin = "51873920"'), "this PIN is another moderator's"),
    (('rooms = ["lobby"]', 'rooms = ["hall"]'), "room 'hall' is not defined"),
    (('rooms = ["lobby"]', ''), "moderator 'Eva' needs rooms"),
    (('name = "Eva"', 'name = "Eva"\nsuperuser = true'), "there is one superuser"),
])
def test_a_bad_moderator_entry_is_rejected_with_its_line(change, error):
    text = MODERATORS.replace(*change)
    problems = errors_of(text)
    assert any(error in p for p in problems), problems
    assert all(p.startswith("c.toml:") for p in problems)
