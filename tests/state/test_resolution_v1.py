"""The original state resolution algorithm (room version 1), and the dispatch by version."""

import asyncio

from homeserver.state import resolve_state
from homeserver.state.resolution_v1 import resolve_state_v1, split
from tests.state.dag import ALICE, BOB, CAROL, POWER, TOPIC, RoomDag, member


def test_missing_key_is_not_a_conflict_in_v1() -> None:
    unconflicted, conflicted = split([{("t", ""): "$1", ("u", ""): "$2"}, {("t", ""): "$3"}])
    assert unconflicted == {("u", ""): "$2"}
    assert conflicted == {("t", ""): {"$1", "$3"}}


def test_single_state_is_returned_as_it_is() -> None:
    dag = RoomDag("1")
    state = dag.state_after[dag.create_room()]
    result = asyncio.run(resolve_state_v1(dag.room_version, [state], {}, dag.fetch))
    assert result == state


def test_deepest_allowed_topic_wins() -> None:
    dag = RoomDag("1")
    root = dag.create_room()
    shallow = dag.topic(root, ALICE, "shallow")
    deep = dag.topic(dag.message(root, BOB), ALICE, "deep")

    assert dag.resolve_tips(shallow, deep)[TOPIC] == deep


def test_deeper_topic_that_fails_auth_loses() -> None:
    dag = RoomDag("1")
    root = dag.create_room()
    shallow = dag.topic(root, ALICE, "by alice")
    deep = dag.topic(dag.message(root, BOB), BOB, "by bob, who may not")

    assert dag.resolve_tips(shallow, deep)[TOPIC] == shallow


def test_when_no_topic_is_allowed_the_shallowest_is_kept() -> None:
    dag = RoomDag("1")
    root = dag.create_room()
    shallow = dag.topic(root, BOB, "one")
    deep = dag.topic(dag.message(root, ALICE), CAROL, "two")

    assert dag.resolve_tips(shallow, deep)[TOPIC] == shallow


def test_power_levels_walk_up_from_the_shallowest_until_one_fails() -> None:
    # Alice's demotion of Bob is shallower and taken first; Bob's later (deeper) change is
    # then checked with him demoted, fails, and the walk stops at Alice's.
    dag = RoomDag("1")
    p1 = dag.power_levels(dag.create_room(), ALICE, {ALICE: 100, BOB: 50})
    demote = dag.power_levels(p1, ALICE, {ALICE: 100})
    bob_change = dag.power_levels(dag.message(p1, CAROL), BOB, {ALICE: 100, BOB: 50, CAROL: 50})

    assert dag.resolve_tips(demote, bob_change)[POWER] == demote


def test_power_levels_walk_keeps_the_deepest_allowed() -> None:
    # Bob's change is shallower; Alice's deeper one is allowed after it and replaces it.
    dag = RoomDag("1")
    p1 = dag.power_levels(dag.create_room(), ALICE, {ALICE: 100, BOB: 50})
    bob_change = dag.power_levels(p1, BOB, {ALICE: 100, BOB: 50, CAROL: 50})
    alice_change = dag.power_levels(dag.message(p1, CAROL), ALICE, {ALICE: 100, BOB: 40})

    assert dag.resolve_tips(bob_change, alice_change)[POWER] == alice_change


def test_member_conflict_ban_before_leave() -> None:
    dag = RoomDag("1")
    root = dag.create_room()
    ban = dag.membership(root, ALICE, CAROL, "ban")
    leave = dag.membership(dag.message(root, BOB), CAROL, CAROL, "leave")

    assert dag.resolve_tips(ban, leave)[member(CAROL)] == ban


def test_resolve_state_picks_the_algorithm_of_the_room_version() -> None:
    # The same graph: v1 takes the deepest topic, v2 orders the two topics (same
    # mainline position) by timestamp and keeps the later one.
    results = {}
    for version in ("1", "2"):
        dag = RoomDag(version)
        root = dag.create_room()
        late_shallow = dag.topic(root, ALICE, "late", ts=9_000_000)
        early_deep = dag.topic(dag.message(root, BOB), ALICE, "early", ts=10)
        states = [dag.state_after[late_shallow], dag.state_after[early_deep]]
        resolved = asyncio.run(resolve_state(dag.room_version, states, {}, dag.fetch))
        results[version] = dag.events[resolved[TOPIC]].content["topic"]

    assert results == {"1": "early", "2": "late"}
