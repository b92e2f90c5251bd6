"""The push rule evaluator on its own (no server): globs, property paths, exact matches,
member counts, notification permissions and the first-match rule, against the spec's
examples."""

import time
from typing import Any

from homeserver.events.event import Event
from homeserver.events.room_versions import KNOWN_ROOM_VERSIONS
from homeserver.handlers.push_evaluator import (
    EventEvaluator,
    PushRule,
    RoomFacts,
    glob_matches,
    split_path,
)
from homeserver.handlers.push_rules import build_ruleset
from homeserver.storage.stores.push_rules import StoredRules

BOB = "@bob:test"


def event(content: dict[str, Any], etype: str = "m.room.message", sender: str = "@alice:test", **extra: Any) -> Event:
    pdu = {"type": etype, "room_id": "!r:test", "sender": sender, "content": content, "origin_server_ts": 1,
           "depth": 1, "prev_events": [], "auth_events": [], **extra}
    return Event(pdu, KNOWN_ROOM_VERSIONS["10"])


def holds(condition: dict[str, Any], ev: Event, room: RoomFacts | None = None, display_name: str | None = None) -> bool:
    return EventEvaluator(ev, room or RoomFacts(3, None)).condition_holds(condition, display_name)


def test_globs_match_whole_values_case_insensitively() -> None:
    assert glob_matches("lunc?*", "Lunch plans")
    assert glob_matches("lunc?*", "LUNCH")
    assert not glob_matches("lunc?*", " lunch")
    assert not glob_matches("lunc?*", "lunc")
    assert glob_matches("a.b", "A.B") and not glob_matches("a.b", "axb")
    assert glob_matches("*", "") and glob_matches("multi*line", "multi\nline")
    assert glob_matches("a*b*c", "aXbYc") and glob_matches("a*b*c", "abbc") and not glob_matches("a*b*c", "aXbYcd")
    assert glob_matches("*c", "abc") and not glob_matches("ab*bc", "abc") and glob_matches("a**?", "ab")
    assert glob_matches("the*end", "THE END", word_bounded=True)
    assert not glob_matches("the*end", "bathe in the endless sea", word_bounded=True)
    assert glob_matches("*ness", "endless business", word_bounded=True)


def test_many_stars_cannot_stall_matching() -> None:
    start = time.monotonic()
    assert not glob_matches("*a" * 40 + "b", "a" * 20000)
    assert not glob_matches("a*" * 40 + "b", "a " * 10000, word_bounded=True)
    assert time.monotonic() - start < 1


def test_body_patterns_match_at_word_boundaries() -> None:
    assert glob_matches("ex*ple", "An example event.", word_bounded=True)
    assert glob_matches("ex*ple", "exple", word_bounded=True)
    assert glob_matches("ex*ple", "An exciting triple-whammy", word_bounded=True)
    assert not glob_matches("cake", "pancakes", word_bounded=True)
    assert glob_matches("cake", "I like (cake)!", word_bounded=True)


def test_property_paths_and_escapes() -> None:
    assert split_path("content.m\\.relates_to.rel_type") == ["content", "m.relates_to", "rel_type"]
    assert split_path("content.m\\\\foo") == ["content", "m\\foo"]
    assert split_path("content.m\\xfoo") == ["content", "m\\xfoo"]
    ev = event({"body": "x", "m.relates_to": {"rel_type": "m.replace", "event_id": "$e"}, "n": None, "flag": True, "num": 1})
    assert holds({"kind": "event_property_is", "key": "content.m\\.relates_to.rel_type", "value": "m.replace"}, ev)
    assert holds({"kind": "event_property_is", "key": "content.n", "value": None}, ev)
    assert holds({"kind": "event_property_is", "key": "content.flag", "value": True}, ev)
    assert not holds({"kind": "event_property_is", "key": "content.num", "value": True}, ev)
    assert not holds({"kind": "event_property_is", "key": "content.flag", "value": "true"}, ev)
    assert not holds({"kind": "event_property_is", "key": "content.missing", "value": None}, ev)
    assert not holds({"kind": "event_match", "key": "content.num", "pattern": "*"}, ev)
    assert not holds({"kind": "event_match", "key": "content.missing", "pattern": "*"}, ev)


def test_contains_member_count_and_permissions() -> None:
    ev = event({"body": "x", "alt": ["#a:test", 1, {"x": 1}], "m.mentions": {"user_ids": [BOB]}})
    assert holds({"kind": "event_property_contains", "key": "content.alt", "value": "#a:test"}, ev)
    assert holds({"kind": "event_property_contains", "key": "content.alt", "value": 1}, ev)
    assert not holds({"kind": "event_property_contains", "key": "content.alt", "value": ":test"}, ev)
    assert holds({"kind": "event_property_contains", "key": "content.m\\.mentions.user_ids", "value": BOB}, ev)
    for spec, expected in [("3", True), ("==3", True), ("<3", False), ("<=3", True), (">2", True), (">=4", False), ("x", False)]:
        assert holds({"kind": "room_member_count", "is": spec}, ev) is expected, spec
    levels = {"users": {"@alice:test": 50}, "notifications": {"room": 60}}
    assert not holds({"kind": "sender_notification_permission", "key": "room"}, ev, RoomFacts(3, levels))
    assert holds({"kind": "sender_notification_permission", "key": "room"}, ev, RoomFacts(3, {"users": {"@alice:test": 50}}))
    assert holds({"kind": "sender_notification_permission", "key": "room"}, ev, RoomFacts(3, None, "@alice:test"))
    assert not holds({"kind": "unknown_kind"}, ev)


def test_display_names_and_the_first_matching_rule() -> None:
    ev = event({"msgtype": "m.text", "body": "Is Bobby T. around?"})
    assert holds({"kind": "contains_display_name"}, ev, display_name="bobby t.")
    assert not holds({"kind": "contains_display_name"}, ev, display_name="Bob")
    assert not holds({"kind": "contains_display_name"}, ev, display_name="")

    rules = build_ruleset(BOB, StoredRules())
    evaluator = EventEvaluator(ev, RoomFacts(3, None))
    outcome = evaluator.run(rules, BOB, "Bobby T.")
    assert outcome is not None and outcome.notify and outcome.highlight
    outcome = evaluator.run(rules, BOB, "Robert")
    assert outcome is not None and outcome.notify and not outcome.highlight and outcome.actions == ["notify"]
    assert EventEvaluator(ev, RoomFacts(2, None)).run(rules, BOB, None).actions == [  # type: ignore[union-attr]
        "notify", {"set_tweak": "sound", "value": "default"},
    ]
    notice = EventEvaluator(event({"msgtype": "m.notice", "body": "bob"}), RoomFacts(3, None)).run(rules, BOB, None)
    assert notice is not None and not notice.notify
    silenced = [PushRule("override", "x", False, True, ["dont_notify"], [])] + rules
    outcome = evaluator.run(silenced, BOB, "Bobby T.")
    assert outcome is not None and outcome.actions == [] and not outcome.notify
    tweak_off = [PushRule("override", "x", False, True, ["notify", {"set_tweak": "highlight", "value": False}], [])]
    outcome = evaluator.run(tweak_off, BOB, None)
    assert outcome is not None and outcome.notify and not outcome.highlight
    assert evaluator.run([PushRule("override", "x", False, False, ["notify"], [])], BOB, None) is None
