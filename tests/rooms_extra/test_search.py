"""POST /search (room_events): ranking and recency, counts, highlights, paging, filters, keys,
event context, groupings, room state and who may find what, on both engines."""

from typing import Any

from tests.harness import Client
from tests.rooms_extra.helpers import create_room, enc, join, put_state, redact, say
from tests.spec import assert_matches_spec
from tests.test_accounts import assert_error


def search(client: Client, term: str, next_batch: str | None = None, **criteria: Any) -> dict[str, Any]:
    body = {"search_categories": {"room_events": {"search_term": term, **criteria}}}
    resp = client.post("search", body, params={"next_batch": next_batch} if next_batch else None)
    assert resp.status_code == 200, resp.text
    assert_matches_spec(resp.json(), "search.yaml", "/search", "post", 200)
    return resp.json()["search_categories"]["room_events"]  # type: ignore[no-any-return]


def found(result: dict[str, Any]) -> list[str]:
    return [r["result"]["event_id"] for r in result["results"]]


def test_search_by_rank_and_by_recency(make_user: Any) -> None:
    alice = make_user("search")
    room_id = create_room(alice)
    strong = say(alice, room_id, "pineapple pineapple pineapple")
    weak = say(alice, room_id, "I once saw a pineapple in a shop that sold many other fruits and vegetables")
    say(alice, room_id, "nothing to see here")
    newest = say(alice, room_id, "pineapples on pizza?")

    ranked = search(alice, "pineapple", order_by="rank")
    assert set(found(ranked)) == {strong, weak, newest}
    assert found(ranked)[0] == strong
    ranks = [r["rank"] for r in ranked["results"]]
    assert ranks == sorted(ranks, reverse=True)
    assert ranked["count"] == 3
    assert "pineapple" in ranked["highlights"]
    assert "next_batch" not in ranked
    result = ranked["results"][0]["result"]
    assert result["room_id"] == room_id and result["sender"] == alice.user_id
    assert result["type"] == "m.room.message" and result["content"]["body"] == "pineapple pineapple pineapple"

    recent = search(alice, "pineapple", order_by="recent")
    assert found(recent) == [newest, weak, strong]
    # Rank is the default order.
    assert found(search(alice, "pineapple"))[0] == strong
    # Every word has to match; case does not matter.
    assert found(search(alice, "PINEAPPLE shop")) == [weak]
    assert search(alice, "pineapple mango")["results"] == []
    assert search(alice, "mango") == {"results": [], "count": 0, "highlights": ["mango"]}


def test_paging_with_next_batch(make_user: Any) -> None:
    alice = make_user("search")
    room_id = create_room(alice)
    sent = [say(alice, room_id, f"kiwi number {i}") for i in range(5)]
    seen: list[str] = []
    token = None
    pages = 0
    while True:
        page = search(alice, "kiwi", token, order_by="recent", filter={"limit": 2})
        pages += 1
        assert page["count"] == 5
        assert len(page["results"]) <= 2
        seen += found(page)
        token = page.get("next_batch")
        if token is None:
            break
    assert pages == 3
    assert seen == sent[::-1]


def test_filters(make_user: Any) -> None:
    alice, bob = make_user("search"), make_user("bob")
    first = create_room(alice, preset="public_chat")
    second = create_room(alice, preset="public_chat")
    for room in (first, second):
        join(bob, room)
    a1 = say(alice, first, "mango from alice")
    b1 = say(bob, first, "mango from bob")
    a2 = say(alice, second, "mango from alice again")
    b2 = say(bob, second, "mango from bob again")

    assert set(found(search(alice, "mango"))) == {a1, b1, a2, b2}
    assert set(found(search(alice, "mango", filter={"rooms": [first]}))) == {a1, b1}
    assert set(found(search(alice, "mango", filter={"not_rooms": [first]}))) == {a2, b2}
    only_bob = search(alice, "mango", filter={"senders": [bob.user_id]})
    assert set(found(only_bob)) == {b1, b2}
    assert only_bob["count"] == 2
    both = search(alice, "mango", filter={"rooms": [second], "senders": [alice.user_id]})
    assert found(both) == [a2]
    limited = search(alice, "mango", order_by="recent", filter={"limit": 1})
    assert found(limited) == [b2]
    assert limited["count"] == 4 and "next_batch" in limited


def test_keys(make_user: Any) -> None:
    alice = make_user("search")
    room_id = create_room(alice)
    name = put_state(alice, room_id, "m.room.name", {"name": "Papaya fans"})
    topic = put_state(alice, room_id, "m.room.topic", {"topic": "All things papaya"})
    message = say(alice, room_id, "papaya for breakfast")

    assert set(found(search(alice, "papaya"))) == {name, topic, message}
    assert found(search(alice, "papaya", keys=["content.name"])) == [name]
    assert found(search(alice, "papaya", keys=["content.topic"])) == [topic]
    assert found(search(alice, "papaya", keys=["content.body"])) == [message]
    assert set(found(search(alice, "papaya", keys=["content.name", "content.body"]))) == {name, message}
    body = {"search_categories": {"room_events": {"search_term": "papaya", "keys": ["content.url"]}}}
    assert_error(alice.post("search", body), 400)


def test_event_context(make_user: Any) -> None:
    alice = make_user("search")
    room_id = create_room(alice)
    before = [say(alice, room_id, f"before {i}") for i in range(4)]
    hit = say(alice, room_id, "the guava is here")
    after = [say(alice, room_id, f"after {i}") for i in range(3)]

    result = search(alice, "guava", event_context={"before_limit": 3, "after_limit": 1})
    assert found(result) == [hit]
    context = result["results"][0]["context"]
    # Closest first on both sides, each limited separately.
    assert [e["event_id"] for e in context["events_before"]] == before[:0:-1]
    assert [e["event_id"] for e in context["events_after"]] == after[:1]
    # The tokens continue the timeline right where the context stops.
    older = alice.get(f"rooms/{enc(room_id)}/messages", params={"from": context["start"], "dir": "b", "limit": 1})
    assert [e["event_id"] for e in older.json()["chunk"]] == before[:1], older.text
    newer = alice.get(f"rooms/{enc(room_id)}/messages", params={"from": context["end"], "dir": "f", "limit": 1})
    assert [e["event_id"] for e in newer.json()["chunk"]] == after[1:2], newer.text

    result = search(alice, "guava", event_context={"before_limit": 0, "after_limit": 2})
    context = result["results"][0]["context"]
    assert context["events_before"] == []
    assert [e["event_id"] for e in context["events_after"]] == after[:2]
    # Without event_context there is none.
    assert "context" not in search(alice, "guava")["results"][0]


def test_groupings(make_user: Any) -> None:
    alice, bob = make_user("search"), make_user("bob")
    first = create_room(alice, preset="public_chat")
    second = create_room(alice, preset="public_chat")
    join(bob, first)
    a1 = say(alice, first, "lychee one")
    b1 = say(bob, first, "lychee two")
    a2 = say(alice, second, "lychee three")

    result = search(alice, "lychee", order_by="recent",
                    groupings={"group_by": [{"key": "room_id"}, {"key": "sender"}]})
    assert found(result) == [a2, b1, a1]
    by_room = result["groups"]["room_id"]
    assert set(by_room) == {first, second}
    assert by_room[first]["results"] == [b1, a1]
    assert by_room[second]["results"] == [a2]
    assert by_room[second]["order"] < by_room[first]["order"]
    by_sender = result["groups"]["sender"]
    assert by_sender[alice.user_id]["results"] == [a2, a1]
    assert by_sender[bob.user_id]["results"] == [b1]

    only_rooms = search(alice, "lychee", groupings={"group_by": [{"key": "room_id"}]})
    assert set(only_rooms["groups"]) == {"room_id"}
    assert "groups" not in search(alice, "lychee")


def test_include_state(make_user: Any) -> None:
    alice = make_user("search")
    room_id = create_room(alice, name="Fig room")
    other = create_room(alice, name="No figs here")
    say(alice, room_id, "fresh fig")
    say(alice, other, "no match")
    result = search(alice, "fresh", include_state=True)
    assert set(result["state"]) == {room_id}
    state = {(e["type"], e["state_key"]): e for e in result["state"][room_id]}
    assert state[("m.room.name", "")]["content"] == {"name": "Fig room"}
    assert state[("m.room.member", alice.user_id)]["content"]["membership"] == "join"
    assert ("m.room.create", "") in state
    assert "state" not in search(alice, "fresh")


def test_only_joined_rooms_are_searched(make_user: Any) -> None:
    alice, bob = make_user("search"), make_user("bob")
    private = create_room(alice, preset="private_chat")
    secret = say(alice, private, "the durian password is hunter2")
    public = create_room(alice, preset="public_chat")
    shared = say(alice, public, "durian everywhere")

    # Bob is in neither room: he finds nothing, not even a count.
    assert search(bob, "durian") == {"results": [], "count": 0, "highlights": ["durian"]}
    assert search(bob, "durian", filter={"rooms": [private]})["results"] == []
    join(bob, public)
    result = search(bob, "durian")
    assert found(result) == [shared]
    assert result["count"] == 1
    assert secret not in found(search(bob, "durian", filter={"rooms": [private, public]}))

    # After leaving, the room is no longer searched.
    assert bob.post(f"rooms/{enc(public)}/leave", {}).status_code == 200
    assert search(bob, "durian")["results"] == []


def test_redacted_message_is_not_found(make_user: Any) -> None:
    alice = make_user("search")
    room_id = create_room(alice)
    kept = say(alice, room_id, "coconut milk")
    gone = say(alice, room_id, "coconut water")
    assert set(found(search(alice, "coconut"))) == {kept, gone}
    redact(alice, room_id, gone, reason="oops")
    result = search(alice, "coconut")
    assert found(result) == [kept]
    assert result["count"] == 1
    assert search(alice, "water")["results"] == []


def test_bad_requests(make_user: Any) -> None:
    alice = make_user("search")
    assert_error(alice.post("search", {"search_categories": {"room_events": {}}}), 400)
    assert_error(alice.post("search", {"search_categories": {"room_events": {"search_term": 5}}}), 400)
    assert_error(alice.post("search", {}), 400)
    assert_error(alice.post("search", {"search_categories": {"room_events": {"search_term": "x", "order_by": "size"}}}),
                 400)
    assert_error(alice.post("search", {"search_categories": {"room_events": {"search_term": "x"}}},
                            params={"next_batch": "bogus"}), 400)
    assert_error(Client(alice.base_url).post("search", {"search_categories": {}}), 401, "M_MISSING_TOKEN")
