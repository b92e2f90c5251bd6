"""To-device messages end to end, on both engines: delivery to one device or to every device of
a user, idempotent transaction ids, redelivery until a later sync acknowledges, the 100-message
cap per sync, and long-polling syncs woken by a message."""

from typing import Any

from tests.harness import Client
from tests.matrix_helpers import long_poll
from tests.spec import assert_matches_spec
from tests.sync_b.helpers import second_device, sync


def send(sender: Client, txn_id: str, messages: dict[str, Any], event_type: str = "m.test") -> None:
    resp = sender.put(f"sendToDevice/{event_type}/{txn_id}", {"messages": messages})
    assert resp.status_code == 200, resp.text
    assert_matches_spec(resp.json(), "to_device.yaml", "/sendToDevice/{eventType}/{txnId}", "put", 200)


def received(body: dict[str, Any]) -> list[Any]:
    return [(e["sender"], e["type"], e["content"]) for e in body["to_device"]["events"]]


def test_delivery_to_one_device_and_to_every_device(make_user: Any, server_name: str) -> None:
    alice, bob = make_user("alice"), make_user("bob")
    bob_phone = second_device(bob)
    tokens = {c.device_id: sync(c)["next_batch"] for c in (bob, bob_phone)}

    send(alice, "one", {
        bob.user_id: {bob.device_id: {"n": 1}, "NOSUCHDEVICE": {"n": 0}},
        f"@nobody:{server_name}": {"*": {"n": 0}},
        "@someone:elsewhere.example": {"*": {"n": 0}},
    })
    first = sync(bob, since=tokens[bob.device_id])
    assert received(first) == [(alice.user_id, "m.test", {"n": 1})]
    assert received(sync(bob_phone, since=tokens[bob_phone.device_id])) == []

    send(alice, "all", {bob.user_id: {"*": {"n": 2}}}, event_type="m.other")
    assert received(sync(bob, since=first["next_batch"])) == [(alice.user_id, "m.other", {"n": 2})]
    assert received(sync(bob_phone, since=tokens[bob_phone.device_id])) == [(alice.user_id, "m.other", {"n": 2})]


def test_transaction_ids_make_sends_idempotent(make_user: Any) -> None:
    alice, bob = make_user("alice"), make_user("bob")
    token = sync(bob)["next_batch"]
    send(alice, "same", {bob.user_id: {bob.device_id: {"n": 1}}})
    send(alice, "same", {bob.user_id: {bob.device_id: {"n": 1}}})
    # The same id from another device of the sender is another request.
    send(second_device(alice), "same", {bob.user_id: {bob.device_id: {"n": 2}}})
    send(alice, "other", {bob.user_id: {bob.device_id: {"n": 3}}})
    assert [c["n"] for _, _, c in received(sync(bob, since=token))] == [1, 2, 3]


def test_messages_stay_until_a_later_sync_acknowledges_them(make_user: Any) -> None:
    alice, bob = make_user("alice"), make_user("bob")
    token = sync(bob)["next_batch"]
    send(alice, "m1", {bob.user_id: {bob.device_id: {"n": 1}}})
    first = sync(bob, since=token)
    assert received(first) == [(alice.user_id, "m.test", {"n": 1})]
    # A retried sync (the response was lost) gets the message again.
    retry = sync(bob, since=token)
    assert received(retry) == received(first)
    assert retry["next_batch"] == first["next_batch"]
    # Syncing from the new token acknowledges it: it is gone for good.
    assert received(sync(bob, since=first["next_batch"])) == []
    assert received(sync(bob, since=token)) == []


def test_at_most_100_messages_per_sync_and_the_rest_next_time(make_user: Any) -> None:
    alice, bob = make_user("alice"), make_user("bob")
    token = sync(bob)["next_batch"]
    for i in range(130):
        send(alice, f"bulk{i}", {bob.user_id: {bob.device_id: {"n": i}}})
    first = sync(bob, since=token)
    assert [c["n"] for _, _, c in received(first)] == list(range(100))
    second = sync(bob, since=first["next_batch"])
    assert [c["n"] for _, _, c in received(second)] == list(range(100, 130))
    assert received(sync(bob, since=second["next_batch"])) == []


def test_long_poll_wakes_for_a_to_device_message(make_user: Any) -> None:
    alice, bob = make_user("alice"), make_user("bob")
    token = sync(bob)["next_batch"]
    body, seconds = long_poll(bob, token, lambda: send(alice, "wake", {bob.user_id: {"*": {"hello": "bob"}}}))
    assert received(body) == [(alice.user_id, "m.test", {"hello": "bob"})]
    assert seconds < 5, seconds


def test_bad_requests_are_matrix_errors(make_user: Any) -> None:
    alice = make_user("alice")
    cases = [
        ({}, 400, "M_MISSING_PARAM"),
        ({"messages": []}, 400, "M_BAD_JSON"),
        ({"messages": {"not-a-user": {"*": {}}}}, 400, "M_INVALID_PARAM"),
        ({"messages": {alice.user_id: {"*": "not an object"}}}, 400, "M_BAD_JSON"),
    ]
    for body, status, errcode in cases:
        resp = alice.put("sendToDevice/m.test/bad", body)
        assert (resp.status_code, resp.json()["errcode"]) == (status, errcode), body
    anonymous = Client(alice.base_url)
    assert anonymous.put("sendToDevice/m.test/x", {"messages": {}}).status_code == 401
