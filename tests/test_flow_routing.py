"""I1: the dialled number picks the journey."""
import pytest

from bot.config.settings import Announce as SettingsAnnounce, Route, Settings, RoomSettings, Tariff
from flow_fixtures import DIALINS
from ivr.flowconfig import FlowConfig
from ivr.routing import ENTRY_BY_ROUTE, Entry, route_call, user_part
from ivr.steps import Announce


@pytest.mark.parametrize("uri, user", [
    ("sip:4990100@127.0.0.1;user=phone", "4990100"), ("<sips:+4990100@host>", "4990100"),
    ("tel:+49-90-100", "4990100"), ("4990100", "4990100"), ("sip:+49 (30) 300@x", "4930300"),
])
def test_user_part_is_extracted_from_any_uri_form(uri, user):
    assert user_part(uri) == user


def test_each_dialin_maps_to_its_entry_tariff_room_and_language():
    assert route_call("sip:4990100@h", DIALINS).entry is Entry.PIN
    assert route_call("sip:4990100@h", DIALINS).tariff is Tariff.PREMIUM
    direct = route_call("sip:+4930300@h", DIALINS)
    assert (direct.entry, direct.room, direct.tariff) == (Entry.DIRECT, "lobby", Tariff.STANDARD)
    assert route_call("4930400", DIALINS).language == "en"
    assert route_call("4930500", DIALINS).entry is Entry.OPERATOR


def test_unknown_number_is_unknown_without_tariff():
    dest = route_call("sip:12345@h", DIALINS)
    assert dest.entry is Entry.UNKNOWN and dest.tariff is None and dest.dialled == "12345"


def test_every_configurable_route_has_an_entry():
    assert {r.value for r in Route} <= set(ENTRY_BY_ROUTE)


def test_flow_config_from_settings_takes_dialins_languages_and_room_announcements():
    s = Settings(dialin=DIALINS, rooms=(RoomSettings("quiet", 10, announce=SettingsAnnounce.OFF),
                                        RoomSettings("loud", 10)))
    cfg = FlowConfig.from_settings(s, operator_uri="sip:op@h")
    assert cfg.dialins == DIALINS and cfg.operator_uri == "sip:op@h"
    assert cfg.announce_for("quiet") is Announce.OFF
    assert cfg.announce_for("loud") is Announce.NAME
    assert cfg.early_join_minutes == s.pins.early_join_minutes
