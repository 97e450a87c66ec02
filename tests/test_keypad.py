"""The in-conference keypad table: compiled from config's plain dict, validated, matched."""
import pytest

from ivr.keypad import DEFAULT_KEYPAD, KeyAction, KeyMatcher, KeypadError, Match, compile_keypad


def test_default_table_compiles_to_enum_actions():
    pad = compile_keypad(DEFAULT_KEYPAD)
    assert pad.action("*6") is KeyAction.TOGGLE_MUTE
    assert pad.action("*#") is KeyAction.COUNT
    assert pad.action("*5") is KeyAction.INVITE
    assert pad.action("*9") is None
    assert pad.key_for(KeyAction.LEAVE) == "*0"


@pytest.mark.parametrize("key", ["", "*A", "12345", "6 ", "#x"])
def test_malformed_key_is_refused_naming_the_key(key):
    with pytest.raises(KeypadError) as err:
        compile_keypad({key: "help"}, path=("keypad",))
    assert err.value.path == ("keypad", key)


def test_unknown_action_is_refused_naming_key_and_action():
    with pytest.raises(KeypadError) as err:
        compile_keypad({"*6": "toggle_mute", "*8": "self_destruct"}, path=("conference", "keypad"))
    assert err.value.path == ("conference", "keypad", "*8")
    assert "self_destruct" in str(err.value) and "conference.keypad.*8" in str(err.value)


def test_a_key_that_prefixes_another_is_ambiguous():
    with pytest.raises(KeypadError) as err:
        compile_keypad({"*": "help", "*6": "toggle_mute"})
    assert err.value.path == ("keypad", "*")


def test_matcher_waits_on_prefix_then_fires():
    m = KeyMatcher(compile_keypad(DEFAULT_KEYPAD))
    assert m.feed("*") == (Match.PENDING, None)
    assert m.feed("6") == (Match.COMMAND, KeyAction.TOGGLE_MUTE)
    assert m.buffer == ""


def test_matcher_recovers_from_a_stray_star():
    m = KeyMatcher(compile_keypad(DEFAULT_KEYPAD))
    assert m.feed("*")[0] is Match.PENDING
    assert m.feed("*")[0] is Match.PENDING      # "**" is dead, but the second "*" starts anew
    assert m.feed("6") == (Match.COMMAND, KeyAction.TOGGLE_MUTE)


def test_matcher_ignores_keys_that_start_nothing():
    m = KeyMatcher(compile_keypad(DEFAULT_KEYPAD))
    assert m.feed("5") == (Match.NONE, None)
    assert m.feed("*")[0] is Match.PENDING
    assert m.feed("9") == (Match.NONE, None)
    assert m.buffer == ""


def test_single_key_bindings_fire_at_once():
    m = KeyMatcher(compile_keypad({"1": "toggle_mute", "*0": "leave"}))
    assert m.feed("1") == (Match.COMMAND, KeyAction.TOGGLE_MUTE)
