"""Two matrix-nio clients exchange an end-to-end encrypted message through this server (Olm
to-device messages carrying the Megolm room key, then a Megolm-encrypted room message), on
both engines. Needs nio's encryption support (`pip install "matrix-nio[e2e]"`); skipped
without it."""

import asyncio
import secrets
import tempfile
from typing import Any
from urllib.parse import quote

import nio
import nio.crypto
import pytest

from tests.harness import Client, ServerProcess

if not nio.crypto.ENCRYPTION_ENABLED:
    pytest.skip("matrix-nio was installed without encryption support", allow_module_level=True)

ENCRYPTION_STATE = {"type": "m.room.encryption", "state_key": "", "content": {"algorithm": "m.megolm.v1.aes-sha2"}}


async def _client(url: str, store: str, name: str) -> nio.AsyncClient:
    config = nio.AsyncClientConfig(encryption_enabled=True, store_sync_tokens=False)
    client = nio.AsyncClient(url, name, store_path=store, config=config)
    registered = await client.register(name, "e2e password", device_name=f"{name}'s device")
    assert isinstance(registered, nio.RegisterResponse), registered
    return client


async def _sync(client: nio.AsyncClient) -> Any:
    """One sync, then whatever key maintenance it calls for, as a real client loop does."""
    response = await client.sync(timeout=0, full_state=client.next_batch is None)
    assert isinstance(response, nio.SyncResponse), response
    if client.should_upload_keys:
        assert isinstance(await client.keys_upload(), nio.KeysUploadResponse)
    if client.should_query_keys:
        assert isinstance(await client.keys_query(), nio.KeysQueryResponse)
    if client.should_claim_keys:
        assert isinstance(await client.keys_claim(client.get_users_for_key_claiming()), nio.KeysClaimResponse)
    return response


async def _exchange(url: str, store_a: str, store_b: str) -> None:
    suffix = secrets.token_hex(3)
    alice = await _client(url, store_a, f"alice_e2e_{suffix}")
    bob = await _client(url, store_b, f"bob_e2e_{suffix}")
    try:
        for client in (alice, bob):
            await _sync(client)
        created = await alice.room_create(invite=[bob.user_id], initial_state=[ENCRYPTION_STATE])
        assert isinstance(created, nio.RoomCreateResponse), created
        await _sync(bob)
        assert isinstance(await bob.join(created.room_id), nio.JoinResponse)
        for client in (alice, bob, alice):
            await _sync(client)
        assert alice.rooms[created.room_id].encrypted

        sent = await alice.room_send(created.room_id, "m.room.message", {"msgtype": "m.text", "body": "for bob only"},
                                     ignore_unverified_devices=True)
        assert isinstance(sent, nio.RoomSendResponse), sent
        # Bob's client decrypts the message with the room key that reached his device as an
        # Olm-encrypted to-device message; on the server it is only ever a Megolm ciphertext.
        response = await _sync(bob)
        events = response.rooms.join[created.room_id].timeline.events
        decrypted = [e for e in events if isinstance(e, nio.RoomMessageText)]
        assert [e.body for e in decrypted] == ["for bob only"], events
        assert decrypted[0].decrypted
        raw = Client(url, bob.access_token).get(f"rooms/{quote(created.room_id)}/event/{quote(sent.event_id)}").json()
        assert raw["type"] == "m.room.encrypted" and raw["content"]["algorithm"] == "m.megolm.v1.aes-sha2"
        assert "for bob only" not in str(raw["content"])
    finally:
        await alice.close()
        await bob.close()


def test_encrypted_message_between_two_nio_clients(server: ServerProcess) -> None:
    with tempfile.TemporaryDirectory() as store_a, tempfile.TemporaryDirectory() as store_b:
        asyncio.run(_exchange(server.url, store_a, store_b))
