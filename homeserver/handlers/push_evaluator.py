"""Push rule evaluation: whether a rule's conditions hold for an event, and what its actions
mean (notify, highlight). Pure functions and data; no database access.

Conditions understood: `event_match` (glob, case-insensitive; word-bounded for
`content.body`), `event_property_is`, `event_property_contains`, `contains_display_name`,
`room_member_count` and `sender_notification_permission`. Any other kind never matches, as
the spec requires. `dont_notify` and `coalesce` are historical actions and are ignored.
"""

import functools
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from homeserver.events.event import Event

# The rules the spec deprecates in favour of `m.mentions`: skipped for events that have it.
LEGACY_MENTION_RULES = frozenset({".m.rule.contains_display_name", ".m.rule.contains_user_name", ".m.rule.roomnotif"})
IGNORED_ACTIONS = ("dont_notify", "coalesce")
_WORD = "A-Za-z0-9_"
_MEMBER_COUNT = re.compile(r"^(==|<=|>=|<|>)?([0-9]+)$")
_MISSING = object()


@dataclass
class PushRule:
    """One rule of a user's ruleset, with the conditions it is evaluated with."""

    kind: str
    rule_id: str
    default: bool
    enabled: bool
    actions: list[Any]
    conditions: list[Any] = field(default_factory=list)
    pattern: str | None = None

    def evaluated_conditions(self) -> list[Any]:
        """Room, sender and content rules carry their condition in the id or the pattern."""
        if self.kind == "room":
            return [{"kind": "event_property_is", "key": "room_id", "value": self.rule_id}]
        if self.kind == "sender":
            return [{"kind": "event_property_is", "key": "sender", "value": self.rule_id}]
        if self.kind == "content":
            return [{"kind": "event_match", "key": "content.body", "pattern": self.pattern}]
        return self.conditions


@dataclass(frozen=True)
class Outcome:
    """What the first matching rule decided for one user and one event."""

    actions: list[Any]

    @property
    def notify(self) -> bool:
        return "notify" in self.actions

    @property
    def highlight(self) -> bool:
        for action in self.actions:
            if isinstance(action, dict) and action.get("set_tweak") == "highlight":
                return action.get("value", True) is True
        return False


def effective_actions(actions: Iterable[Any]) -> list[Any]:
    """The actions without the historical ones that mean nothing."""
    return [a for a in actions if a not in IGNORED_ACTIONS]


def split_path(key: str) -> list[str]:
    """A dot-separated property path as its parts (`\\.` is a literal dot, `\\\\` a backslash)."""
    parts: list[str] = []
    current: list[str] = []
    index = 0
    while index < len(key):
        char = key[index]
        if char == "\\" and index + 1 < len(key) and key[index + 1] in ".\\":
            current.append(key[index + 1])
            index += 2
            continue
        if char == ".":
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
        index += 1
    parts.append("".join(current))
    return parts


@functools.lru_cache(maxsize=4096)
def _segment(text: str, boundary_before: bool, boundary_after: bool) -> re.Pattern[str]:
    """A star-free piece of a glob (`?` is any one character) as a regex."""
    body = "".join("." if c == "?" else re.escape(c) for c in text)
    before = f"(?<![{_WORD}])" if boundary_before else ""
    after = f"(?![{_WORD}])" if boundary_after else ""
    return re.compile(before + body + after, re.IGNORECASE | re.DOTALL)


@functools.lru_cache(maxsize=4096)
def _literal_word(text: str) -> re.Pattern[str]:
    """`text` taken literally, case-insensitively, between word boundaries."""
    return re.compile(f"(?<![{_WORD}]){re.escape(text)}(?![{_WORD}])", re.IGNORECASE)


def glob_matches(pattern: str, value: str, word_bounded: bool = False) -> bool:
    """Glob match (`*`, `?`), case-insensitively: the whole value, or with `word_bounded` any
    substring that starts and ends at a word boundary.

    The pattern is split at its stars and each piece placed at its leftmost possible position
    (which is optimal for globs), so matching never backtracks: a user's pattern cannot stall
    the evaluator however many stars it has."""
    pieces = pattern.split("*")
    if len(pieces) == 1:
        if word_bounded:
            return _segment(pattern, True, True).search(value) is not None
        return _segment(pattern, False, False).fullmatch(value) is not None
    first, middle, last = pieces[0], [p for p in pieces[1:-1] if p], pieces[-1]
    found = _segment(first, word_bounded, False).search(value) if word_bounded else _segment(first, False, False).match(value)
    if found is None:
        return False
    position = found.end()
    for piece in middle:
        found = _segment(piece, False, False).search(value, position)
        if found is None:
            return False
        position = found.end()
    if word_bounded:
        return _segment(last, False, True).search(value, position) is not None
    return len(value) - len(last) >= position and _segment(last, False, False).fullmatch(value, len(value) - len(last)) is not None


def _is_simple(value: Any) -> bool:
    return value is None or isinstance(value, (str, bool, int)) and not isinstance(value, float)


def _same(a: Any, b: Any) -> bool:
    """Exact equality of canonical JSON scalars: `true` is not `1`."""
    return type(a) is type(b) and a == b


def _power(value: Any, default: int) -> int:
    if isinstance(value, bool):
        return default
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        try:
            return int(value.strip())
        except ValueError:
            return default
    return default


@dataclass(frozen=True)
class RoomFacts:
    """What conditions need to know about the room at the event."""

    member_count: int
    # The content of the room's power levels event, or None when the room has none.
    power_levels: dict[str, Any] | None
    creator: str | None = None

    def power_of(self, user_id: str) -> int:
        if self.power_levels is None:
            return 100 if user_id == self.creator else 0
        users = self.power_levels.get("users")
        if isinstance(users, dict) and user_id in users:
            return _power(users[user_id], 0)
        return _power(self.power_levels.get("users_default"), 0)

    def notification_level(self, key: str) -> int:
        notifications = (self.power_levels or {}).get("notifications")
        if isinstance(notifications, dict) and key in notifications:
            return _power(notifications[key], 50)
        return 50


class EventEvaluator:
    """Evaluates rulesets against one event (shared by every user the event is checked for)."""

    def __init__(self, event: Event, room: RoomFacts):
        self.event = event
        self.room = room
        self._fields: dict[str, Any] = {
            "event_id": event.event_id, "type": event.type, "sender": event.sender, "room_id": event.room_id,
            "content": event.content, "origin_server_ts": event.origin_server_ts,
        }
        if event.is_state():
            self._fields["state_key"] = event.state_key
        body = event.content.get("body")
        self._body = body if isinstance(body, str) else ""
        self._has_mentions = "m.mentions" in event.content

    def lookup(self, key: str) -> Any:
        value: Any = self._fields
        for part in split_path(key):
            if not isinstance(value, dict) or part not in value:
                return _MISSING
            value = value[part]
        return value

    def run(self, rules: Iterable[PushRule], user_id: str, display_name: str | None) -> Outcome | None:
        """The outcome of the first enabled rule whose conditions all hold, or None."""
        for rule in rules:
            if not rule.enabled:
                continue
            if self._has_mentions and rule.rule_id in LEGACY_MENTION_RULES:
                continue
            if all(self.condition_holds(c, display_name) for c in rule.evaluated_conditions()):
                return Outcome(effective_actions(rule.actions))
        return None

    def condition_holds(self, condition: Any, display_name: str | None) -> bool:
        if not isinstance(condition, dict):
            return False
        kind = condition.get("kind")
        if kind == "event_match":
            return self._event_match(condition.get("key"), condition.get("pattern"))
        if kind == "event_property_is":
            return self._property_is(condition.get("key"), condition.get("value", _MISSING))
        if kind == "event_property_contains":
            return self._property_contains(condition.get("key"), condition.get("value", _MISSING))
        if kind == "contains_display_name":
            return bool(display_name) and self._contains_literal(display_name or "")
        if kind == "room_member_count":
            return self._member_count(condition.get("is"))
        if kind == "sender_notification_permission":
            key = condition.get("key")
            return isinstance(key, str) and self.room.power_of(self.event.sender) >= self.room.notification_level(key)
        return False

    def _event_match(self, key: Any, pattern: Any) -> bool:
        if not isinstance(key, str) or not isinstance(pattern, str):
            return False
        value = self.lookup(key)
        if not isinstance(value, str):
            return False
        return glob_matches(pattern, value, word_bounded=key == "content.body")

    def _property_is(self, key: Any, expected: Any) -> bool:
        if not isinstance(key, str) or expected is _MISSING or not _is_simple(expected):
            return False
        value = self.lookup(key)
        return value is not _MISSING and _is_simple(value) and _same(value, expected)

    def _property_contains(self, key: Any, expected: Any) -> bool:
        if not isinstance(key, str) or expected is _MISSING or not _is_simple(expected):
            return False
        value = self.lookup(key)
        return isinstance(value, list) and any(_is_simple(v) and _same(v, expected) for v in value)

    def _contains_literal(self, text: str) -> bool:
        return _literal_word(text).search(self._body) is not None

    def _member_count(self, spec: Any) -> bool:
        match = _MEMBER_COUNT.match(spec) if isinstance(spec, str) else None
        if match is None:
            return False
        op, number = match.group(1) or "==", int(match.group(2))
        count = self.room.member_count
        return {
            "==": count == number, "<": count < number, ">": count > number, "<=": count <= number, ">=": count >= number,
        }[op]
