"""Push rules API end to end: the default ruleset, creating and ordering rules, `enabled`
and `actions`, errors, per-user isolation, and `m.push_rules` in `/sync`, on both engines."""

from typing import Any

from tests.harness import Client
from tests.spec import assert_matches_spec

RULE = "/pushrules/global/{kind}/{ruleId}"
DEFAULT_OVERRIDE = [
    ".m.rule.master", ".m.rule.suppress_notices", ".m.rule.invite_for_me", ".m.rule.member_event",
    ".m.rule.is_user_mention", ".m.rule.contains_display_name", ".m.rule.is_room_mention", ".m.rule.roomnotif",
    ".m.rule.tombstone", ".m.rule.reaction", ".m.rule.room.server_acl", ".m.rule.suppress_edits",
]
DEFAULT_UNDERRIDE = [
    ".m.rule.call", ".m.rule.encrypted_room_one_to_one", ".m.rule.room_one_to_one", ".m.rule.message", ".m.rule.encrypted",
]


def ruleset(client: Client) -> dict[str, Any]:
    resp = client.get("pushrules/global/")
    assert resp.status_code == 200, resp.text
    assert_matches_spec(resp.json(), "pushrules.yaml", "/pushrules/global/", "get", 200)
    return resp.json()  # type: ignore[no-any-return]


def ids(client: Client, kind: str) -> list[str]:
    return [r["rule_id"] for r in ruleset(client)[kind]]


def put_rule(client: Client, kind: str, rule_id: str, body: dict[str, Any], **params: str) -> Any:
    return client.put(f"pushrules/global/{kind}/{rule_id}", body, params=params)


def error(resp: Any, status: int, errcode: str | None = None) -> None:
    assert resp.status_code == status, resp.text
    assert "error" in resp.json()
    if errcode is not None:
        assert resp.json()["errcode"] == errcode, resp.text


def test_default_ruleset_follows_the_spec(make_user: Any) -> None:
    alice = make_user("alice")
    resp = alice.get("pushrules/")
    assert resp.status_code == 200, resp.text
    assert_matches_spec(resp.json(), "pushrules.yaml", "/pushrules/", "get", 200)
    rules = resp.json()["global"]
    assert rules == ruleset(alice)
    assert [r["rule_id"] for r in rules["override"]] == DEFAULT_OVERRIDE
    assert [r["rule_id"] for r in rules["underride"]] == DEFAULT_UNDERRIDE
    assert rules["room"] == [] and rules["sender"] == []
    by_id = {r["rule_id"]: r for kind in rules.values() for r in kind}
    assert all(r["default"] for r in by_id.values())
    assert by_id[".m.rule.master"]["enabled"] is False
    assert all(r["enabled"] for rid, r in by_id.items() if rid != ".m.rule.master")
    localpart = alice.user_id[1:].split(":")[0]  # type: ignore[index]
    assert rules["content"] == [{
        "rule_id": ".m.rule.contains_user_name", "default": True, "enabled": True, "pattern": localpart,
        "actions": ["notify", {"set_tweak": "sound", "value": "default"}, {"set_tweak": "highlight"}],
    }]
    assert {"kind": "event_match", "key": "state_key", "pattern": alice.user_id} in by_id[".m.rule.invite_for_me"]["conditions"]
    assert by_id[".m.rule.is_user_mention"]["conditions"] == [
        {"kind": "event_property_contains", "key": "content.m\\.mentions.user_ids", "value": alice.user_id}
    ]
    assert by_id[".m.rule.message"] == {
        "rule_id": ".m.rule.message", "default": True, "enabled": True, "actions": ["notify"],
        "conditions": [{"kind": "event_match", "key": "type", "pattern": "m.room.message"}],
    }
    single = alice.get("pushrules/global/underride/.m.rule.call")
    assert single.status_code == 200
    assert_matches_spec(single.json(), "pushrules.yaml", RULE, "get", 200)
    assert single.json()["actions"] == ["notify", {"set_tweak": "sound", "value": "ring"}]


def test_create_order_update_and_delete_rules(make_user: Any) -> None:
    alice = make_user("alice")
    assert put_rule(alice, "content", "cake", {"pattern": "cake", "actions": ["notify"]}).status_code == 200
    assert put_rule(alice, "content", "lie", {"pattern": "cake*lie", "actions": []}, before="cake").status_code == 200
    assert put_rule(alice, "content", "tea", {"pattern": "tea", "actions": ["notify"]}, after="cake").status_code == 200
    assert put_rule(alice, "content", "first", {"pattern": "x", "actions": []}).status_code == 200
    assert ids(alice, "content") == ["first", "lie", "cake", "tea", ".m.rule.contains_user_name"]

    # Updating keeps the place (and the enabled state); before/after moves the rule.
    assert alice.put("pushrules/global/content/lie/enabled", {"enabled": False}).status_code == 200
    assert put_rule(alice, "content", "lie", {"pattern": "cake*lies", "actions": ["notify"]}).status_code == 200
    rule = alice.get("pushrules/global/content/lie").json()
    assert_matches_spec(rule, "pushrules.yaml", RULE, "get", 200)
    assert rule == {"rule_id": "lie", "default": False, "enabled": False, "pattern": "cake*lies", "actions": ["notify"]}
    assert ids(alice, "content")[:4] == ["first", "lie", "cake", "tea"]
    assert put_rule(alice, "content", "first", {"pattern": "x", "actions": []}, after="tea").status_code == 200
    assert ids(alice, "content") == ["lie", "cake", "tea", "first", ".m.rule.contains_user_name"]

    # Override rules keep their conditions; room and sender rules show neither conditions nor pattern.
    conditions = [{"kind": "event_match", "key": "content.body", "pattern": "beer"}, {"kind": "room_member_count", "is": "<=10"}]
    assert put_rule(alice, "override", "beer", {"conditions": conditions, "actions": ["notify"]}).status_code == 200
    assert ids(alice, "override")[:2] == [".m.rule.master", "beer"]
    assert alice.get("pushrules/global/override/beer").json()["conditions"] == conditions
    room_id = "!somewhere:test.local"
    assert put_rule(alice, "room", room_id, {"actions": []}).status_code == 200
    assert put_rule(alice, "sender", "@spam:test.local", {"actions": []}).status_code == 200
    rules = ruleset(alice)
    assert rules["room"] == [{"rule_id": room_id, "default": False, "enabled": True, "actions": []}]
    assert rules["sender"] == [{"rule_id": "@spam:test.local", "default": False, "enabled": True, "actions": []}]

    resp = alice.delete("pushrules/global/content/cake")
    assert resp.status_code == 200 and resp.json() == {}
    error(alice.get("pushrules/global/content/cake"), 404, "M_NOT_FOUND")
    error(alice.delete("pushrules/global/content/cake"), 404, "M_NOT_FOUND")
    assert ids(alice, "content") == ["lie", "tea", "first", ".m.rule.contains_user_name"]


def test_invalid_requests_are_matrix_errors(make_user: Any) -> None:
    alice = make_user("alice")
    error(put_rule(alice, "content", ".mine", {"pattern": "x", "actions": []}), 400)
    error(put_rule(alice, "override", ".m.rule.message", {"actions": []}), 400)
    error(alice.delete("pushrules/global/underride/.m.rule.message"), 404, "M_NOT_FOUND")
    error(put_rule(alice, "content", "a", {"pattern": "x", "actions": []}, before="nope"), 400)
    error(put_rule(alice, "content", "a", {"pattern": "x", "actions": []}, after=".m.rule.contains_user_name"), 400)
    error(put_rule(alice, "content", "a", {"actions": []}), 400, "M_MISSING_PARAM")
    error(put_rule(alice, "content", "a", {"pattern": "x"}), 400, "M_MISSING_PARAM")
    error(put_rule(alice, "content", "a", {"pattern": "x", "actions": ["explode"]}), 400)
    error(put_rule(alice, "override", "a", {"conditions": [{"key": "type"}], "actions": []}), 400)
    error(put_rule(alice, "override", "a", {"conditions": "all", "actions": []}), 400)
    error(put_rule(alice, "content", "a%2Fb", {"pattern": "x", "actions": []}), 400)
    error(alice.put("pushrules/global/content/a", data=b"not json"), 400, "M_NOT_JSON")
    error(put_rule(alice, "bogus", "a", {"actions": []}), 400)
    error(alice.get("pushrules/global/bogus/a"), 400)
    error(alice.get("pushrules/global/content/missing"), 404, "M_NOT_FOUND")
    error(alice.get("pushrules/global/override/.m.rule.nonexistent/enabled"), 404, "M_NOT_FOUND")
    error(alice.put("pushrules/global/override/.m.rule.nonexistent/enabled", {"enabled": True}), 404, "M_NOT_FOUND")
    error(alice.put("pushrules/global/content/missing/actions", {"actions": []}), 404, "M_NOT_FOUND")
    error(alice.put("pushrules/global/override/.m.rule.master/enabled", {"enabled": "yes"}), 400)
    error(alice.put("pushrules/global/override/.m.rule.master/enabled", {}), 400, "M_MISSING_PARAM")
    error(alice.put("pushrules/global/override/.m.rule.master/actions", {"actions": "notify"}), 400)
    error(Client(alice.base_url).get("pushrules/"), 401, "M_MISSING_TOKEN")
    assert ids(alice, "content") == [".m.rule.contains_user_name"]


def test_enabled_and_actions_of_default_and_own_rules(make_user: Any) -> None:
    alice, bob = make_user("alice"), make_user("bob")
    path = "pushrules/global/override/.m.rule.master"
    resp = alice.get(path + "/enabled")
    assert_matches_spec(resp.json(), "pushrules.yaml", RULE + "/enabled", "get", 200)
    assert resp.json() == {"enabled": False}
    assert alice.put(path + "/enabled", {"enabled": True}).json() == {}
    assert alice.get(path + "/enabled").json() == {"enabled": True}
    assert alice.get(path).json()["enabled"] is True

    actions = ["notify", {"set_tweak": "sound", "value": "bing"}]
    message = "pushrules/global/underride/.m.rule.message"
    assert alice.put(message + "/actions", {"actions": actions}).status_code == 200
    resp = alice.get(message + "/actions")
    assert_matches_spec(resp.json(), "pushrules.yaml", RULE + "/actions", "get", 200)
    assert resp.json() == {"actions": actions}
    assert alice.get(message).json()["default"] is True
    # Changing actions leaves enabled alone and vice versa.
    assert alice.put(message + "/enabled", {"enabled": False}).status_code == 200
    assert alice.get(message).json() | {"conditions": None} == {
        "rule_id": ".m.rule.message", "default": True, "enabled": False, "actions": actions, "conditions": None,
    }

    assert put_rule(alice, "sender", bob.user_id, {"actions": ["notify"]}).status_code == 200
    own = f"pushrules/global/sender/{bob.user_id}"
    assert alice.put(own + "/actions", {"actions": []}).status_code == 200
    assert alice.put(own + "/enabled", {"enabled": False}).status_code == 200
    assert alice.get(own).json() == {"rule_id": bob.user_id, "default": False, "enabled": False, "actions": []}

    # None of it shows for anyone else.
    assert bob.get(path + "/enabled").json() == {"enabled": False}
    assert bob.get(message).json()["actions"] == ["notify"]
    error(bob.get(own), 404, "M_NOT_FOUND")
    error(bob.delete(own), 404, "M_NOT_FOUND")
    assert alice.get(own).status_code == 200


def push_rules_event(body: dict[str, Any]) -> dict[str, Any] | None:
    found = [e for e in body["account_data"]["events"] if e["type"] == "m.push_rules"]
    assert len(found) <= 1
    return found[0] if found else None


def sync(client: Client, **params: Any) -> dict[str, Any]:
    resp = client.get("sync", params=params)
    assert resp.status_code == 200, resp.text
    assert_matches_spec(resp.json(), "sync.yaml", "/sync", "get", 200)
    return resp.json()  # type: ignore[no-any-return]


def test_push_rules_reach_sync_as_account_data(make_user: Any) -> None:
    alice = make_user("alice")
    first = sync(alice)
    event = push_rules_event(first)
    assert event is not None
    assert event["content"] == {"global": ruleset(alice)}

    second = sync(alice, since=first["next_batch"])
    assert push_rules_event(second) is None

    assert put_rule(alice, "content", "lunch", {"pattern": "lunch", "actions": ["notify"]}).status_code == 200
    third = sync(alice, since=second["next_batch"], timeout=5000)
    event = push_rules_event(third)
    assert event is not None
    assert event["content"]["global"]["content"][0]["rule_id"] == "lunch"

    assert alice.put("pushrules/global/content/lunch/enabled", {"enabled": False}).status_code == 200
    fourth = sync(alice, since=third["next_batch"], timeout=5000)
    assert push_rules_event(fourth)["content"]["global"]["content"][0]["enabled"] is False  # type: ignore[index]

    # A filter that leaves out m.push_rules leaves it out.
    filtered = sync(alice, filter='{"account_data": {"not_types": ["m.push_rules"]}}')
    assert push_rules_event(filtered) is None
