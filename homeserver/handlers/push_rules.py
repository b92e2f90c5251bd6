"""Push rules: the server-default ruleset, each user's ruleset (their own rules merged with
their changes to the defaults), the push rules API, an in-memory cache of rulesets for the
evaluator, and the `/sync` source that sends `m.push_rules` account data.

The ruleset is ordered as the spec ranks rules: `.m.rule.master` first, then per kind the
user's rules (most important first) before the server-default ones.
"""

import copy
from typing import TYPE_CHECKING, Any

from homeserver.handlers.filtering import EventFilter
from homeserver.handlers.push_evaluator import IGNORED_ACTIONS, PushRule
from homeserver.handlers.sync_sources import SyncContext
from homeserver.http.errors import MatrixError, bad_json, invalid_param, missing_param, not_found
from homeserver.storage.stores.push_rules import RuleNotFoundError, StoredRules
from homeserver.util.caches import LruCache
from homeserver.util.linearizer import Linearizer
from homeserver.util.stream_change_cache import StreamChangeCache

if TYPE_CHECKING:
    from homeserver.server import HomeServer

KINDS = ("override", "content", "room", "sender", "underride")
ATTRIBUTES = ("enabled", "actions")
_SOUND = {"set_tweak": "sound", "value": "default"}
_HIGHLIGHT = {"set_tweak": "highlight"}
USER_ID = "[user_id]"
LOCALPART = "[localpart]"


def _match(key: str, pattern: str) -> dict[str, str]:
    return {"kind": "event_match", "key": key, "pattern": pattern}


# The server-default rules of the spec (v1.11), as (kind, rule_id, enabled, conditions or
# pattern, actions). USER_ID and LOCALPART stand for the owner of the ruleset.
DefaultRule = tuple[str, str, bool, Any, list[Any]]
_MASTER: DefaultRule = ("override", ".m.rule.master", False, [], [])
_DEFAULTS: list[DefaultRule] = [
    ("override", ".m.rule.suppress_notices", True, [_match("content.msgtype", "m.notice")], []),
    ("override", ".m.rule.invite_for_me", True,
     [_match("type", "m.room.member"), _match("content.membership", "invite"), _match("state_key", USER_ID)],
     ["notify", _SOUND]),
    ("override", ".m.rule.member_event", True, [_match("type", "m.room.member")], []),
    ("override", ".m.rule.is_user_mention", True,
     [{"kind": "event_property_contains", "key": "content.m\\.mentions.user_ids", "value": USER_ID}],
     ["notify", _SOUND, _HIGHLIGHT]),
    ("override", ".m.rule.contains_display_name", True, [{"kind": "contains_display_name"}], ["notify", _SOUND, _HIGHLIGHT]),
    ("override", ".m.rule.is_room_mention", True,
     [{"kind": "event_property_is", "key": "content.m\\.mentions.room", "value": True},
      {"kind": "sender_notification_permission", "key": "room"}],
     ["notify", _HIGHLIGHT]),
    ("override", ".m.rule.roomnotif", True,
     [_match("content.body", "@room"), {"kind": "sender_notification_permission", "key": "room"}],
     ["notify", _HIGHLIGHT]),
    ("override", ".m.rule.tombstone", True, [_match("type", "m.room.tombstone"), _match("state_key", "")],
     ["notify", _HIGHLIGHT]),
    ("override", ".m.rule.reaction", True, [_match("type", "m.reaction")], []),
    ("override", ".m.rule.room.server_acl", True, [_match("type", "m.room.server_acl"), _match("state_key", "")], []),
    ("override", ".m.rule.suppress_edits", True,
     [{"kind": "event_property_is", "key": "content.m\\.relates_to.rel_type", "value": "m.replace"}], []),
    ("content", ".m.rule.contains_user_name", True, LOCALPART, ["notify", _SOUND, _HIGHLIGHT]),
    ("underride", ".m.rule.call", True, [_match("type", "m.call.invite")],
     ["notify", {"set_tweak": "sound", "value": "ring"}]),
    ("underride", ".m.rule.encrypted_room_one_to_one", True,
     [{"kind": "room_member_count", "is": "2"}, _match("type", "m.room.encrypted")], ["notify", _SOUND]),
    ("underride", ".m.rule.room_one_to_one", True,
     [{"kind": "room_member_count", "is": "2"}, _match("type", "m.room.message")], ["notify", _SOUND]),
    ("underride", ".m.rule.message", True, [_match("type", "m.room.message")], ["notify"]),
    ("underride", ".m.rule.encrypted", True, [_match("type", "m.room.encrypted")], ["notify"]),
]
DEFAULT_RULE_IDS = frozenset((kind, rule_id) for kind, rule_id, *_ in [_MASTER, *_DEFAULTS])


def _personalise(value: Any, user_id: str) -> Any:
    if value == USER_ID:
        return user_id
    if value == LOCALPART:
        return user_id[1:].split(":", 1)[0]
    if isinstance(value, list):
        return [_personalise(v, user_id) for v in value]
    if isinstance(value, dict):
        return {k: _personalise(v, user_id) for k, v in value.items()}
    return value


def _mentions_owner(value: Any) -> bool:
    if isinstance(value, list):
        return any(_mentions_owner(v) for v in value)
    if isinstance(value, dict):
        return any(_mentions_owner(v) for v in value.values())
    return value in (USER_ID, LOCALPART)


# Default rules that are the same for everyone, built once and shared by every cached ruleset
# (rules are never modified once built).
_SHARED: dict[tuple[str, str], PushRule] = {}


def _default_rule(spec: DefaultRule, user_id: str, stored: StoredRules) -> PushRule:
    kind, rule_id, _, conditions, _ = spec
    changes = stored.default_changes.get((kind, rule_id))
    if changes is None and not _mentions_owner(conditions):
        if (kind, rule_id) not in _SHARED:
            _SHARED[(kind, rule_id)] = _build_default_rule(spec, user_id, (None, None))
        return _SHARED[(kind, rule_id)]
    return _build_default_rule(spec, user_id, changes or (None, None))


def _build_default_rule(spec: DefaultRule, user_id: str, changes: tuple[bool | None, list[Any] | None]) -> PushRule:
    kind, rule_id, enabled, conditions, actions = spec
    changed_enabled, changed_actions = changes
    rule = PushRule(
        kind, rule_id, True,
        enabled if changed_enabled is None else changed_enabled,
        copy.deepcopy(actions) if changed_actions is None else changed_actions,
    )
    if kind == "content":
        rule.pattern = _personalise(conditions, user_id)
    else:
        rule.conditions = _personalise(copy.deepcopy(conditions), user_id)
    return rule


def build_ruleset(user_id: str, stored: StoredRules) -> list[PushRule]:
    """Every rule of the user in evaluation order."""
    own: dict[str, list[PushRule]] = {kind: [] for kind in KINDS}
    for row in stored.rules:
        own[row.kind].append(PushRule(row.kind, row.rule_id, False, row.enabled, row.actions, row.conditions, row.pattern))
    defaults: dict[str, list[PushRule]] = {kind: [] for kind in KINDS}
    for spec in _DEFAULTS:
        defaults[spec[0]].append(_default_rule(spec, user_id, stored))
    ordered = [_default_rule(_MASTER, user_id, stored)]
    for kind in KINDS:
        ordered += own[kind] + defaults[kind]
    return ordered


def rule_to_client(rule: PushRule) -> dict[str, Any]:
    """The client form of a rule (a copy: cached rules are shared and never modified)."""
    body: dict[str, Any] = {
        "rule_id": rule.rule_id, "default": rule.default, "enabled": rule.enabled, "actions": copy.deepcopy(rule.actions),
    }
    if rule.kind in ("override", "underride"):
        body["conditions"] = copy.deepcopy(rule.conditions)
    elif rule.kind == "content":
        body["pattern"] = rule.pattern
    return body


def ruleset_to_client(rules: list[PushRule]) -> dict[str, list[dict[str, Any]]]:
    result: dict[str, list[dict[str, Any]]] = {kind: [] for kind in KINDS}
    for rule in rules:
        result[rule.kind].append(rule_to_client(rule))
    return result


def check_actions(actions: Any) -> list[Any]:
    if not isinstance(actions, list):
        raise bad_json("'actions' must be a list")
    for action in actions:
        if action == "notify" or action in IGNORED_ACTIONS:
            continue
        if isinstance(action, dict) and isinstance(action.get("set_tweak"), str):
            continue
        raise bad_json(f"Unrecognised action: {action!r}")
    return actions


def check_kind(kind: str) -> None:
    if kind not in KINDS:
        raise MatrixError(400, f"Unknown push rule kind {kind!r}", "M_UNRECOGNIZED")


def _conditions_from_body(kind: str, body: dict[str, Any]) -> tuple[list[Any], str | None]:
    """(conditions, pattern) of a new rule of `kind`."""
    if kind in ("override", "underride"):
        conditions = body.get("conditions", [])
        if not isinstance(conditions, list):
            raise bad_json("'conditions' must be a list")
        for condition in conditions:
            if not isinstance(condition, dict) or not isinstance(condition.get("kind"), str):
                raise bad_json("Each condition must be an object with a string 'kind'")
        return conditions, None
    if kind == "content":
        if "pattern" not in body:
            raise missing_param("pattern")
        if not isinstance(body["pattern"], str):
            raise bad_json("'pattern' must be a string")
        return [], body["pattern"]
    return [], None


class PushRulesHandler:
    def __init__(self, hs: "HomeServer"):
        self.hs = hs
        self.store = hs.stores.push_rules
        self._cache: LruCache[str, list[PushRule]] = LruCache("push_rules", 20_000)
        self._user_locks = Linearizer()
        self._generation = 0
        # On a process that does not write the stream, changes made elsewhere are read from
        # the stream table before the cache is trusted (see `catch_up`).
        self._caught_up_to: int | None = None
        # Users whose rules this process changed, by stream position: a fast "no change"
        # answer for /sync, trusted only where every change is made (the stream's writer).
        self._changes = StreamChangeCache("push_rules", self.store.stream_ids.get_current_token())

    # --- reading -------------------------------------------------------------------------

    async def get_rules(self, user_id: str) -> list[PushRule]:
        return (await self.get_rules_for_users([user_id]))[user_id]

    async def get_rules_for_users(self, user_ids: list[str]) -> dict[str, list[PushRule]]:
        """Each user's ruleset in evaluation order; misses are loaded in one batch."""
        await self.catch_up()
        result: dict[str, list[PushRule]] = {}
        missing = []
        for user_id in user_ids:
            cached = self._cache.get(user_id)
            if cached is None:
                missing.append(user_id)
            else:
                result[user_id] = cached
        if missing:
            generation = self._generation
            stored = await self.store.get_rules_for_users(missing)
            for user_id in missing:
                rules = build_ruleset(user_id, stored[user_id])
                if generation == self._generation:  # no change raced with the load
                    self._cache.set(user_id, rules)
                result[user_id] = rules
        return result

    async def catch_up(self) -> None:
        """Invalidate the rulesets that another process changed since we last looked."""
        if self.store.stream_ids.is_writer:
            return
        latest = await self.store.get_max_stream_id()
        if self._caught_up_to is None:
            self._cache.clear()
        elif latest > self._caught_up_to:
            for user_id in await self.store.get_users_changed_between(self._caught_up_to, latest):
                self._invalidate(user_id)
        self._caught_up_to = latest

    async def has_changed(self, user_id: str, after: int, upto: int) -> bool:
        """Whether the user's rules changed at a position in (after, upto]."""
        if after >= upto:
            return False
        if self.store.stream_ids.is_writer and not self._changes.has_entity_changed(user_id, after):
            return False
        return await self.store.has_user_changed_between(user_id, after, upto)

    async def get_ruleset(self, user_id: str) -> dict[str, list[dict[str, Any]]]:
        return ruleset_to_client(await self.get_rules(user_id))

    async def get_rule(self, user_id: str, kind: str, rule_id: str) -> dict[str, Any]:
        return rule_to_client(await self._find(user_id, kind, rule_id))

    async def get_attribute(self, user_id: str, kind: str, rule_id: str, attribute: str) -> dict[str, Any]:
        rule = rule_to_client(await self._find(user_id, kind, rule_id))
        return {attribute: rule[attribute]}

    async def _find(self, user_id: str, kind: str, rule_id: str) -> PushRule:
        check_kind(kind)
        for rule in await self.get_rules(user_id):
            if rule.kind == kind and rule.rule_id == rule_id:
                return rule
        raise not_found("The push rule was not found.")

    # --- writing -------------------------------------------------------------------------

    async def put_rule(
        self, user_id: str, kind: str, rule_id: str, body: dict[str, Any], before: str | None, after: str | None,
    ) -> None:
        check_kind(kind)
        if rule_id.startswith("."):
            raise invalid_param("Rule ids starting with '.' are reserved for server-default rules")
        if "/" in rule_id or "\\" in rule_id:
            raise invalid_param("Rule ids may not contain slashes or backslashes")
        if "actions" not in body:
            raise missing_param("actions")
        actions = check_actions(body["actions"])
        conditions, pattern = _conditions_from_body(kind, body)
        for relative in (before, after):
            if relative is not None and (relative.startswith(".") or relative == rule_id):
                raise MatrixError(400, f"Cannot add a rule relative to {relative!r}", "M_UNKNOWN")
        async with self._user_locks.queue(user_id):
            try:
                position = await self.store.add_rule(user_id, kind, rule_id, conditions, pattern, actions, before, after)
            except RuleNotFoundError as e:
                raise MatrixError(400, f"before/after rule not found: {e}", "M_UNKNOWN") from e
        self._changed(user_id, position)

    async def delete_rule(self, user_id: str, kind: str, rule_id: str) -> None:
        check_kind(kind)
        if (kind, rule_id) in DEFAULT_RULE_IDS:
            raise not_found("Server-default rules cannot be deleted")
        async with self._user_locks.queue(user_id):
            position = await self.store.delete_rule(user_id, kind, rule_id)
        if position is None:
            raise not_found("The push rule was not found.")
        self._changed(user_id, position)

    async def set_attribute(self, user_id: str, kind: str, rule_id: str, attribute: str, body: dict[str, Any]) -> None:
        check_kind(kind)
        if attribute not in body:
            raise missing_param(attribute)
        value = body[attribute]
        if attribute == "enabled" and not isinstance(value, bool):
            raise bad_json("'enabled' must be a boolean")
        if attribute == "actions":
            check_actions(value)
        is_default = rule_id.startswith(".")
        if is_default and (kind, rule_id) not in DEFAULT_RULE_IDS:
            raise not_found("The push rule was not found.")
        async with self._user_locks.queue(user_id):
            position = await self.store.set_attribute(user_id, kind, rule_id, attribute, value, is_default)
        if position is None:
            raise not_found("The push rule was not found.")
        self._changed(user_id, position)

    def _invalidate(self, user_id: str) -> None:
        self._generation += 1
        self._cache.invalidate(user_id)

    def _changed(self, user_id: str, position: int) -> None:
        self._invalidate(user_id)
        self._changes.entity_has_changed(user_id, position)
        self.hs.notifier.wake(users=[user_id])


def _type_allowed(event_filter: EventFilter, event_type: str) -> bool:
    def matches(patterns: list[str]) -> bool:
        return any(event_type == p or (p.endswith("*") and event_type.startswith(p[:-1])) for p in patterns)

    if event_filter.types is not None and not matches(event_filter.types):
        return False
    return not matches(event_filter.not_types)


class PushRulesSyncSource:
    """Sends the whole ruleset as `m.push_rules` account data: on an initial or `full_state`
    sync, and whenever the user's rules changed since the token."""

    key = "push_rules"

    def __init__(self, hs: "HomeServer"):
        self.hs = hs

    def current_position(self) -> int:
        return self.hs.stores.push_rules.stream_ids.get_current_token()

    async def add_to_sync(self, context: SyncContext, response: dict[str, Any]) -> bool:
        since = context.since_position(self.key)
        if since is not None and not context.full_state:
            if not await self.hs.push_rules_handler.has_changed(context.user_id, since, context.now.push_rules):
                return False
        if not _type_allowed(context.sync_filter.account_data, "m.push_rules"):
            return False
        ruleset = await self.hs.push_rules_handler.get_ruleset(context.user_id)
        response["account_data"]["events"].append({"type": "m.push_rules", "content": {"global": ruleset}})
        return since is not None
