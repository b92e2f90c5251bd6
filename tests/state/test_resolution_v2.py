"""State resolution v2 on small forked rooms built from real signed events.

Each test forks a room, grows two branches and resolves the states at their tips; the
comments say what the algorithm does with the events on each side.
"""

import asyncio

import pytest

from homeserver.state.resolution_v2 import (
    EventCache,
    mainline_order,
    resolve_state_v2,
    reverse_topological_power_order,
    separate,
)
from tests.state.dag import (
    ALICE,
    BOB,
    CAROL,
    EVE,
    JOIN_RULES,
    NAME,
    POWER,
    TOPIC,
    RoomDag,
    member,
)


@pytest.fixture(params=["2", "6", "10", "11"])
def dag(request: pytest.FixtureRequest) -> RoomDag:
    """A room of each event format and creator rule that uses state resolution v2."""
    return RoomDag(request.param)


def test_no_conflict_returns_the_common_state(dag: RoomDag) -> None:
    tip = dag.create_room()
    state = dag.state_after[tip]
    assert dag.resolve([state, dict(state)]) == state
    assert dag.fetched == []  # nothing to fetch without a conflict


def test_separate_counts_a_missing_key_as_conflicted() -> None:
    a = {("t", ""): "$1", ("u", ""): "$2"}
    b = {("t", ""): "$1"}
    unconflicted, conflicted = separate([a, b])
    assert unconflicted == {("t", ""): "$1"}
    assert conflicted == {("u", ""): {"$2"}}


def test_ban_beats_a_power_change_by_the_banned_user(dag: RoomDag) -> None:
    # Bob is a moderator. Alice bans him on one branch while, on the other, he edits the
    # power levels. Alice's ban sorts first (she has more power), so Bob is no longer in
    # the room when his power levels event is re-checked: it is dropped.
    p1 = dag.power_levels(dag.create_room(), ALICE, {ALICE: 100, BOB: 50})
    ban = dag.membership(p1, ALICE, BOB, "ban")
    bob_pl = dag.power_levels(p1, BOB, {ALICE: 100, BOB: 50, CAROL: 50})

    resolved = dag.resolve_tips(ban, bob_pl)

    assert resolved[member(BOB)] == ban
    assert resolved[POWER] == p1


def test_ban_by_a_moderator_demoted_on_the_other_branch_is_dropped(dag: RoomDag) -> None:
    # Bob (a moderator) bans Carol while Alice takes his power away. Alice's change sorts
    # first, so by the time the ban is checked Bob is below the ban level.
    p1 = dag.power_levels(dag.create_room(), ALICE, {ALICE: 100, BOB: 50})
    carol_join = dag.state_after[p1][member(CAROL)]
    ban = dag.membership(p1, BOB, CAROL, "ban")
    demote = dag.power_levels(p1, ALICE, {ALICE: 100})

    resolved = dag.resolve_tips(ban, demote)

    assert resolved[POWER] == demote
    assert resolved[member(CAROL)] == carol_join


def test_topic_from_a_user_demoted_on_the_other_branch_is_dropped(dag: RoomDag) -> None:
    p1 = dag.power_levels(dag.create_room(), ALICE, {ALICE: 100, BOB: 50})
    t0 = dag.topic(p1, ALICE, "welcome")
    demote = dag.power_levels(t0, ALICE, {ALICE: 100})
    bob_topic = dag.topic(t0, BOB, "bob was here")

    resolved = dag.resolve_tips(demote, bob_topic)

    assert resolved[POWER] == demote
    assert resolved[TOPIC] == t0


def test_topic_resets_when_its_sender_is_banned_later(dag: RoomDag) -> None:
    # One branch: Alice sets a topic, promotes Bob, Bob changes the topic, Alice bans Bob.
    # The other branch only saw the first topic. The ban and the promotion survive, and
    # Bob's topic, re-checked after the ban, does not: the first topic comes back.
    root = dag.create_room()
    t1 = dag.topic(root, ALICE, "first")
    promote = dag.power_levels(t1, ALICE, {ALICE: 100, BOB: 50})
    t2 = dag.topic(promote, BOB, "second")
    ban = dag.membership(t2, ALICE, BOB, "ban")
    other = dag.message(t1, CAROL)

    resolved = dag.resolve_tips(ban, other)

    assert resolved[TOPIC] == t1
    assert resolved[member(BOB)] == ban
    assert resolved[POWER] == promote


def test_join_rule_evasion_is_undone(dag: RoomDag) -> None:
    # Alice makes the room invite-only; concurrently Eve joins under the old public rule.
    # The join rule is a power event and is applied first, so Eve's join fails.
    root = dag.create_room()
    invite_only = dag.join_rule(root, ALICE, "invite")
    eve_join = dag.join(root, EVE)

    resolved = dag.resolve_tips(invite_only, eve_join)

    assert resolved[JOIN_RULES] == invite_only
    assert member(EVE) not in resolved


def test_concurrent_topics_follow_the_mainline_not_the_clock(dag: RoomDag) -> None:
    # Bob's topic cites the newest power levels (p2), Alice's late topic an older one (p1).
    # Mainline ordering applies Alice's first although it is the most recent, so Bob's wins.
    p1 = dag.power_levels(dag.create_room(), ALICE, {ALICE: 100, BOB: 50})
    t_a = dag.topic(p1, ALICE, "early")
    p2 = dag.power_levels(t_a, ALICE, {ALICE: 100, BOB: 50, CAROL: 10})
    bob_topic = dag.topic(p2, BOB, "cites p2")
    late_topic = dag.topic(p1, ALICE, "cites p1", ts=9_000_000_000)
    assert dag.events[late_topic].origin_server_ts > dag.events[bob_topic].origin_server_ts

    resolved = dag.resolve_tips(bob_topic, late_topic)

    assert resolved[POWER] == p2
    assert resolved[TOPIC] == bob_topic


def test_power_level_change_by_a_lower_user_applies_after_the_higher_one(dag: RoomDag) -> None:
    # Several power levels events only ever rise in the sort; a mod's change to an
    # unrelated level is still applied (after Alice's), because it remains allowed.
    p1 = dag.power_levels(dag.create_room(), ALICE, {ALICE: 100, BOB: 50, CAROL: 50})
    by_alice = dag.power_levels(p1, ALICE, {ALICE: 100, BOB: 50, CAROL: 50}, ts=2_000_000_000)
    by_bob = dag.power_levels(p1, BOB, {ALICE: 100, BOB: 50, CAROL: 50}, ts=1_000_000_000,
                              events={"m.room.topic": 50})

    resolved = dag.resolve_tips(by_alice, by_bob)

    assert resolved[POWER] == by_bob


def test_power_events_are_ordered_by_sender_power_first(dag: RoomDag) -> None:
    # Bob's join rule is older, but Alice has more power, so hers is applied first and
    # Bob's last: his stands.
    p1 = dag.power_levels(dag.create_room(), ALICE, {ALICE: 100, BOB: 50})
    by_bob = dag.join_rule(p1, BOB, "invite", ts=10)
    by_alice = dag.join_rule(p1, ALICE, "knock", ts=20)

    assert dag.resolve_tips(by_bob, by_alice)[JOIN_RULES] == by_bob
    assert dag.resolve_tips(by_alice, by_bob)[JOIN_RULES] == by_bob


@pytest.mark.parametrize("bob_first", [True, False])
def test_power_events_of_equal_senders_are_ordered_by_timestamp(
    dag: RoomDag, bob_first: bool
) -> None:
    p1 = dag.power_levels(dag.create_room(), ALICE, {ALICE: 100, BOB: 50, CAROL: 50})
    by_bob = dag.join_rule(p1, BOB, "invite", ts=10 if bob_first else 30)
    by_carol = dag.join_rule(p1, CAROL, "knock", ts=20)

    resolved = dag.resolve_tips(by_bob, by_carol)

    assert resolved[JOIN_RULES] == (by_carol if bob_first else by_bob)


def test_power_events_with_equal_power_and_time_are_ordered_by_event_id(dag: RoomDag) -> None:
    p1 = dag.power_levels(dag.create_room(), ALICE, {ALICE: 100, BOB: 50, CAROL: 50})
    by_bob = dag.join_rule(p1, BOB, "invite", ts=10)
    by_carol = dag.join_rule(p1, CAROL, "knock", ts=10)

    resolved = dag.resolve_tips(by_bob, by_carol)

    assert resolved[JOIN_RULES] == max(by_bob, by_carol)  # the larger id is applied last


def test_power_order_puts_auth_ancestors_before_more_powerful_senders(dag: RoomDag) -> None:
    p1 = dag.power_levels(dag.create_room(), ALICE, {ALICE: 100, BOB: 50})
    by_bob = dag.power_levels(p1, BOB, {ALICE: 100, BOB: 50, CAROL: 10}, ts=50)
    by_alice = dag.power_levels(by_bob, ALICE, {ALICE: 100, BOB: 50, CAROL: 20}, ts=60)
    rule = dag.join_rule(p1, ALICE, "invite", ts=70)
    cache = EventCache(dict(dag.events), dag.fetch)
    graph: dict[str, set[str]] = {by_alice: {by_bob}, by_bob: set(), rule: set()}

    order = reverse_topological_power_order(graph, cache)

    # Alice's join rule leads (most power); her power levels must wait for Bob's.
    assert order == [rule, by_bob, by_alice]


def test_power_order_sees_conflicted_ancestors_behind_common_events(dag: RoomDag) -> None:
    # One state has been reset to Bob's old power levels p1, which every state's auth
    # chain contains. Alice's p3 descends from p1 through p2, which is in every chain and
    # so not conflicted; p1 must still be applied before p3, which therefore wins.
    with_bob = dag.power_levels(dag.create_room(), ALICE, {ALICE: 100, BOB: 50})
    p1 = dag.power_levels(with_bob, BOB, {ALICE: 100, BOB: 50, CAROL: 10})
    p2 = dag.power_levels(p1, ALICE, {ALICE: 100, BOB: 50, CAROL: 20})
    knock = dag.join_rule(p2, ALICE, "knock")
    p3 = dag.power_levels(p2, ALICE, {ALICE: 100, BOB: 50, CAROL: 30})
    reset_state = {**dag.state_after[knock], POWER: p1}

    resolved = dag.resolve([reset_state, dag.state_after[p3]])

    assert resolved[POWER] == p3
    assert resolved[JOIN_RULES] == knock


def test_mainline_order_without_power_levels_in_the_chain_goes_first(dag: RoomDag) -> None:
    p1 = dag.power_levels(dag.create_room(), ALICE, {ALICE: 100, BOB: 50})
    on_p1 = dag.topic(p1, ALICE, "on p1", ts=5)
    p2 = dag.power_levels(p1, ALICE, {ALICE: 100, BOB: 60})
    on_p2 = dag.topic(p2, ALICE, "on p2", ts=1)
    on_p2_later = dag.topic(p2, BOB, "on p2, later", ts=2)
    cache = EventCache(dict(dag.events), dag.fetch)
    create = dag.state_after[p1][("m.room.create", "")]

    order = mainline_order([on_p2_later, on_p2, on_p1, create], p2, cache)

    assert order == [create, on_p1, on_p2, on_p2_later]


def test_event_both_branches_agree_on_is_kept(dag: RoomDag) -> None:
    # Bob names the room while he may; both branches keep that name. One branch then
    # demotes him, which would forbid the name now, but unconflicted state is not undone.
    p1 = dag.power_levels(dag.create_room(), ALICE, {ALICE: 100, BOB: 50})
    name = dag.state(p1, BOB, "m.room.name", {"name": "Bob's room"})
    demote = dag.power_levels(name, ALICE, {ALICE: 100})
    topic = dag.topic(name, ALICE, "other branch")

    resolved = dag.resolve_tips(demote, topic)

    assert resolved[NAME] == name
    assert resolved[POWER] == demote
    assert resolved[TOPIC] == topic


def test_unconflicted_value_is_laid_back_over_the_auth_difference(dag: RoomDag) -> None:
    # One state holds Bob's original join although its topic cites a later leave and
    # rejoin of his (as a peer's state could). Both are in the auth difference and are
    # re-applied; the final step restores the join that both states agree on.
    root = dag.create_room()
    bob_join = dag.state_after[root][member(BOB)]
    leave = dag.membership(root, BOB, BOB, "leave")
    rejoin = dag.join(leave, BOB)
    promote = dag.power_levels(rejoin, ALICE, {ALICE: 100, BOB: 50})
    bob_topic = dag.topic(promote, BOB, "cites the rejoin")
    odd_state = {**dag.state_after[bob_topic], member(BOB): bob_join}
    other = dag.topic(root, ALICE, "other")

    resolved = dag.resolve([odd_state, dag.state_after[other]])

    assert resolved[member(BOB)] == bob_join
    assert resolved[POWER] == promote


def test_event_failing_auth_on_one_branch_is_dropped(dag: RoomDag) -> None:
    # Carol has no power to set the topic or name; her events (later than Alice's) lose.
    root = dag.create_room()
    alice_topic = dag.topic(root, ALICE, "official", ts=10)
    carol_topic = dag.topic(root, CAROL, "unofficial", ts=20)
    carol_name = dag.state(carol_topic, CAROL, "m.room.name", {"name": "mine"}, ts=30)

    resolved = dag.resolve_tips(alice_topic, carol_name)

    assert resolved[TOPIC] == alice_topic
    assert NAME not in resolved


def test_event_marked_rejected_is_dropped_and_grants_nothing(dag: RoomDag) -> None:
    # On one branch a power levels event promoting Bob was rejected when it arrived, and
    # Bob then set the topic; the rejected event is left out, so Bob's topic fails too.
    root = dag.create_room()
    t0 = dag.topic(root, ALICE, "start")
    promote = dag.power_levels(t0, ALICE, {ALICE: 100, BOB: 50})
    dag.events[promote].rejected_reason = "auth_error"
    bob_topic = dag.topic(promote, BOB, "bob's")
    other = dag.message(t0, CAROL)
    base_power = dag.state_after[root][POWER]

    resolved = dag.resolve_tips(bob_topic, other)

    assert resolved[POWER] == base_power
    assert resolved[TOPIC] == t0


def test_rejected_event_that_would_pass_is_still_dropped(dag: RoomDag) -> None:
    root = dag.create_room()
    t0 = dag.topic(root, ALICE, "start")
    t1 = dag.topic(t0, ALICE, "rejected on arrival")
    dag.events[t1].rejected_reason = "auth_error"
    other = dag.message(t0, CAROL)

    assert dag.resolve_tips(t1, other)[TOPIC] == t0


def test_resolution_is_the_same_whatever_the_order_of_states(dag: RoomDag) -> None:
    p1 = dag.power_levels(dag.create_room(), ALICE, {ALICE: 100, BOB: 50})
    a = dag.topic(dag.membership(p1, ALICE, CAROL, "ban"), BOB, "a")
    b = dag.join_rule(dag.topic(p1, ALICE, "b"), BOB, "invite")
    c = dag.power_levels(p1, ALICE, {ALICE: 100, BOB: 50, EVE: 20})

    first = dag.resolve_tips(a, b, c)

    assert dag.resolve_tips(c, a, b) == first
    assert dag.resolve_tips(b, c, a) == first


def test_events_are_fetched_in_batches_and_cached(dag: RoomDag) -> None:
    p1 = dag.power_levels(dag.create_room(), ALICE, {ALICE: 100, BOB: 50})
    a = dag.topic(p1, ALICE, "a")
    b = dag.topic(p1, BOB, "b")
    states = [dag.state_after[a], dag.state_after[b]]
    event_map: dict = {}

    resolved = asyncio.run(resolve_state_v2(dag.room_version, states, event_map, dag.fetch))

    assert resolved[TOPIC] in (a, b)
    assert {a, b, p1} <= event_map.keys()
    fetched = [i for batch in dag.fetched for i in batch]
    assert len(fetched) == len(set(fetched))  # nothing asked for twice
    assert len(dag.fetched) < len(fetched)  # a generation of ancestors per call

    dag.fetched.clear()
    again = asyncio.run(resolve_state_v2(dag.room_version, states, event_map, dag.fetch))
    assert again == resolved
    assert dag.fetched == []


def test_unknown_events_are_left_out() -> None:
    dag = RoomDag("10")
    root = dag.create_room()
    known = dag.topic(root, ALICE, "known")
    states = [dag.state_after[known], {**dag.state_after[root], TOPIC: "$missing"}]

    assert dag.resolve(states)[TOPIC] == known
