"""A real client library (matrix-nio, with end-to-end encryption) runs a two-user conversation
entirely through /sync, on both engines: profiles, an encrypted room with Megolm messages
both ways (keys uploaded, queried and claimed by nio), typing, read receipts and the fully
read marker, presence, room tags, and a custom to-device message. Every assertion is on what
nio reports (its callbacks and room state), and the raw body of every /sync response either
client gets must match the spec's schema. Skipped without nio's encryption support."""

import asyncio
import json
import secrets
import tempfile
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

import nio
import nio.crypto
import pytest

from tests.harness import ServerProcess
from tests.spec import assert_matches_spec

if not nio.crypto.ENCRYPTION_ENABLED:
    pytest.skip("matrix-nio was installed without encryption support", allow_module_level=True)

PASSWORD = "conversation password"
ENCRYPTION_STATE = {"type": "m.room.encryption", "state_key": "", "content": {"algorithm": "m.megolm.v1.aes-sha2"}}
# How long each step may take before it counts as never happening; each /sync long-polls
# for at most POLL_MS, so a step that works returns as soon as the server wakes it.
STEP_SECONDS = 10
POLL_MS = 2000


def ok(response: Any, kind: type) -> Any:
    assert isinstance(response, kind), f"expected {kind.__name__}, got {response!r}"
    return response


class Participant:
    """A nio client with everything its callbacks saw and the raw JSON of each /sync."""

    def __init__(self, url: str, name: str, store: str):
        config = nio.AsyncClientConfig(encryption_enabled=True, store_sync_tokens=False)
        self.client = nio.AsyncClient(url, name, store_path=store, config=config)
        self.name = name
        self.sync_bodies: list[dict[str, Any]] = []
        self.messages: list[nio.RoomMessageText] = []
        self.undecrypted: list[nio.MegolmEvent] = []
        self.typing: list[nio.TypingNoticeEvent] = []
        self.receipts: list[nio.ReceiptEvent] = []
        self.presence: list[nio.PresenceEvent] = []
        self.room_account_data: list[nio.AccountDataEvent] = []
        self.to_device: list[nio.UnknownToDeviceEvent] = []
        self.timeline_ids: list[str] = []  # every room event nio was handed, in order
        self.client.add_event_callback(self._on_event, nio.Event)
        self.client.add_event_callback(self._on_message, nio.RoomMessageText)
        self.client.add_event_callback(self._on_undecrypted, nio.MegolmEvent)
        self.client.add_ephemeral_callback(self._on_ephemeral, (nio.TypingNoticeEvent, nio.ReceiptEvent))
        self.client.add_presence_callback(self._on_presence, nio.PresenceEvent)
        self.client.add_room_account_data_callback(self._on_account_data, nio.AccountDataEvent)
        self.client.add_to_device_callback(self._on_to_device, nio.UnknownToDeviceEvent)

    async def _on_event(self, room: nio.MatrixRoom, event: nio.Event) -> None:
        self.timeline_ids.append(event.event_id)

    async def _on_message(self, room: nio.MatrixRoom, event: nio.RoomMessageText) -> None:
        self.messages.append(event)

    async def _on_undecrypted(self, room: nio.MatrixRoom, event: nio.MegolmEvent) -> None:
        self.undecrypted.append(event)

    async def _on_ephemeral(self, room: nio.MatrixRoom, event: Any) -> None:
        (self.typing if isinstance(event, nio.TypingNoticeEvent) else self.receipts).append(event)

    async def _on_presence(self, event: nio.PresenceEvent) -> None:
        self.presence.append(event)

    async def _on_account_data(self, room: nio.MatrixRoom, event: nio.AccountDataEvent) -> None:
        self.room_account_data.append(event)

    async def _on_to_device(self, event: nio.UnknownToDeviceEvent) -> None:
        self.to_device.append(event)

    async def sync(self, timeout_ms: int = 0) -> nio.SyncResponse:
        """One /sync (long-polling up to `timeout_ms`), then the key maintenance it calls for,
        as nio's own `sync_forever` loop does."""
        client = self.client
        response = ok(await client.sync(timeout=timeout_ms, full_state=client.next_batch is None), nio.SyncResponse)
        # nio keeps the aiohttp response, whose body it has already read and cached.
        self.sync_bodies.append(await response.transport_response.json())
        if client.should_upload_keys:
            ok(await client.keys_upload(), nio.KeysUploadResponse)
        if client.should_query_keys:
            ok(await client.keys_query(), nio.KeysQueryResponse)
        if client.should_claim_keys:
            ok(await client.keys_claim(client.get_users_for_key_claiming()), nio.KeysClaimResponse)
        for sent in await client.send_to_device_messages():
            ok(sent, nio.ToDeviceResponse)
        return response

    async def sync_until(self, what: str, condition: Callable[[], Any]) -> Any:
        """Long-poll /sync until `condition()` is truthy, bounded by STEP_SECONDS."""
        deadline = time.monotonic() + STEP_SECONDS
        while True:
            result = condition()
            if result:
                return result
            assert time.monotonic() < deadline, f"{self.name} never saw {what}"
            await self.sync(POLL_MS)

    async def raw(self, method: str, path: str, body: Any = None) -> Any:
        """An endpoint nio has no method for, through nio's own HTTP session."""
        client = self.client
        resp = await client.send(method, path, json.dumps(body) if body is not None else None,
                                 {"Authorization": f"Bearer {client.access_token}", "Content-Type": "application/json"})
        data = await resp.json()
        assert resp.status == 200, data
        return data


async def _conversation(url: str, stores: tuple[str, str]) -> None:
    suffix = secrets.token_hex(3)
    alice = Participant(url, f"alice_conv_{suffix}", stores[0])
    bob = Participant(url, f"bob_conv_{suffix}", stores[1])
    a, b = alice.client, bob.client
    try:
        ok(await a.register(alice.name, PASSWORD, device_name="alice's laptop"), nio.RegisterResponse)
        ok(await b.register(bob.name, PASSWORD, device_name="bob's phone"), nio.RegisterResponse)
        for p in (alice, bob):
            await p.sync()  # initial sync; nio uploads its device and one-time keys after it

        # --- profile: alice's display name reaches bob through the room's member list ----------
        ok(await a.set_displayname("Alice Liddell"), nio.ProfileSetDisplayNameResponse)
        assert ok(await b.get_displayname(a.user_id), nio.ProfileGetDisplayNameResponse).displayname == "Alice Liddell"

        # --- an encrypted room: alice creates it and invites bob, bob joins --------------------
        created = ok(await a.room_create(name="e2e chat", invite=[b.user_id], initial_state=[ENCRYPTION_STATE]),
                     nio.RoomCreateResponse)
        room_id = created.room_id
        await bob.sync_until("the invite", lambda: room_id in b.invited_rooms)
        assert b.invited_rooms[room_id].inviter == a.user_id
        ok(await b.join(room_id), nio.JoinResponse)
        room_b = await bob.sync_until("the joined room", lambda: b.rooms.get(room_id))
        room_a = await alice.sync_until(
            "bob's join", lambda: (room := a.rooms.get(room_id)) is not None and b.user_id in room.users and room)
        assert room_a.encrypted and room_b.encrypted and room_b.name == "e2e chat"
        assert room_b.users[a.user_id].display_name == "Alice Liddell"
        assert room_b.user_name(a.user_id) == "Alice Liddell"

        # A profile change after joining is a new member event in every room alice is in.
        ok(await a.set_displayname("Alice in Wonderland"), nio.ProfileSetDisplayNameResponse)
        await bob.sync_until("alice's new name",
                             lambda: room_b.users[a.user_id].display_name == "Alice in Wonderland")
        await alice.sync_until("her own new name",
                               lambda: room_a.users[a.user_id].display_name == "Alice in Wonderland")

        # --- Megolm messages both ways, each decrypted by the other's client --------------------
        sent_a = ok(await a.room_send(room_id, "m.room.message", {"msgtype": "m.text", "body": "hello bob"},
                                      ignore_unverified_devices=True), nio.RoomSendResponse)
        await bob.sync_until("alice's message", lambda: any(m.body == "hello bob" for m in bob.messages))
        await alice.sync()  # alice learns bob's keys are current before he answers
        sent_b = ok(await b.room_send(room_id, "m.room.message", {"msgtype": "m.text", "body": "hello alice"},
                                      ignore_unverified_devices=True), nio.RoomSendResponse)
        await alice.sync_until("bob's message", lambda: any(m.body == "hello alice" for m in alice.messages))
        for p, body, event_id, sender in ((bob, "hello bob", sent_a.event_id, a.user_id),
                                          (alice, "hello alice", sent_b.event_id, b.user_id)):
            message = next(m for m in p.messages if m.body == body)
            assert message.decrypted and message.event_id == event_id and message.sender == sender
            assert p.undecrypted == [], f"{p.name} could not decrypt {p.undecrypted}"
        # What the server stored is Megolm ciphertext only (nio's room_get_event would decrypt it).
        stored = await alice.raw("GET", f"/_matrix/client/v3/rooms/{quote(room_id)}/event/{quote(sent_b.event_id)}")
        assert stored["type"] == "m.room.encrypted" and stored["content"]["algorithm"] == "m.megolm.v1.aes-sha2"
        assert "hello alice" not in json.dumps(stored)

        # --- typing --------------------------------------------------------------------------------
        ok(await a.room_typing(room_id, True, timeout=20_000), nio.RoomTypingResponse)
        await bob.sync_until("alice typing", lambda: a.user_id in room_b.typing_users)
        assert bob.typing[-1].users == [a.user_id]
        ok(await a.room_typing(room_id, False), nio.RoomTypingResponse)
        await bob.sync_until("alice stop typing", lambda: room_b.typing_users == [])

        # --- a read receipt and the fully read marker --------------------------------------------
        ok(await b.room_read_markers(room_id, fully_read_event=sent_a.event_id, read_event=sent_a.event_id),
           nio.RoomReadMarkersResponse)
        receipt = await alice.sync_until("bob's read receipt", lambda: room_a.read_receipts.get(b.user_id))
        assert receipt.event_id == sent_a.event_id and receipt.receipt_type == "m.read"
        assert isinstance(receipt.timestamp, int) and receipt.timestamp > 0
        await bob.sync_until("his fully read marker", lambda: room_b.fully_read_marker == sent_a.event_id)
        assert any(isinstance(e, nio.FullyReadEvent) and e.event_id == sent_a.event_id for e in bob.room_account_data)
        # A threaded receipt (nio's default thread is "main") for bob's own later message.
        ok(await a.update_receipt_marker(room_id, sent_b.event_id), nio.UpdateReceiptMarkerResponse)
        threaded = await bob.sync_until("alice's receipt in the main thread",
                                        lambda: room_b.threaded_read_receipts.get(a.user_id, {}).get("main"))
        assert threaded.event_id == sent_b.event_id

        # --- presence ------------------------------------------------------------------------------
        ok(await a.set_presence("online", "working"), nio.PresenceSetResponse)
        seen = await bob.sync_until("alice's presence", lambda: [
            e for e in bob.presence if e.user_id == a.user_id and e.status_msg == "working"])
        assert seen[-1].presence == "online"
        assert room_b.users[a.user_id].presence == "online" and room_b.users[a.user_id].status_msg == "working"
        fetched = ok(await b.get_presence(a.user_id), nio.PresenceGetResponse)
        assert fetched.presence == "online" and fetched.status_msg == "working"

        # --- room tags (nio has no method for them: its HTTP session, raw) -----------------------
        tag_path = f"/_matrix/client/v3/user/{quote(b.user_id)}/rooms/{quote(room_id)}/tags"
        await bob.raw("PUT", f"{tag_path}/u.work", {"order": 0.25})
        await bob.raw("PUT", f"{tag_path}/m.favourite", {})
        await bob.sync_until("his tags", lambda: set(getattr(room_b, "tags", {})) == {"u.work", "m.favourite"})
        assert room_b.tags == {"u.work": {"order": 0.25}, "m.favourite": {}}
        assert any(isinstance(e, nio.TagEvent) for e in bob.room_account_data)
        assert (await bob.raw("GET", tag_path))["tags"] == room_b.tags
        await bob.raw("DELETE", f"{tag_path}/m.favourite")
        await bob.sync_until("a tag removed", lambda: room_b.tags == {"u.work": {"order": 0.25}})
        assert not any(isinstance(e, nio.TagEvent) for e in alice.room_account_data), "bob's tags leaked to alice"

        # --- a custom to-device message to bob's device -------------------------------------------
        message = nio.ToDeviceMessage("org.example.conversation.ping", b.user_id, b.device_id, {"n": 1, "hi": "bob"})
        ok(await a.to_device(message, tx_id=f"ping-{suffix}"), nio.ToDeviceResponse)
        ok(await a.to_device(message, tx_id=f"ping-{suffix}"), nio.ToDeviceResponse)  # a retry: delivered once
        pings = await bob.sync_until("alice's to-device message", lambda: [
            e for e in bob.to_device if e.type == "org.example.conversation.ping"])
        assert len(pings) == 1 and pings[0].sender == a.user_id
        assert pings[0].source["content"] == {"n": 1, "hi": "bob"}
        await bob.sync()
        await bob.sync()
        assert len([e for e in bob.to_device if e.type == "org.example.conversation.ping"]) == 1, "redelivered"
        assert not any(e.type == "org.example.conversation.ping" for e in alice.to_device)

        # --- one last exchange on both sides, then every /sync body against the spec --------------
        for p in (alice, bob):
            await p.sync()
        for p in (alice, bob):
            # A profile change is not a new join: nobody is handed the room's history again.
            repeated = {i for i in p.timeline_ids if p.timeline_ids.count(i) > 1}
            assert not repeated, f"{p.name} got these timeline events more than once: {repeated}"
            assert len(p.sync_bodies) >= 5
            for body in p.sync_bodies:
                assert_matches_spec(body, "sync.yaml", "/sync", "get", 200)
    finally:
        await a.close()
        await b.close()


def test_nio_two_user_conversation_through_sync(server: ServerProcess) -> None:
    with tempfile.TemporaryDirectory() as store_a, tempfile.TemporaryDirectory() as store_b:
        asyncio.run(asyncio.wait_for(_conversation(server.url, (store_a, store_b)), timeout=120))
