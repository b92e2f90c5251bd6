"""The fuzzing user's world: a registered user with a room, an event, an alias, a filter and a
key backup, and a second user with a room of their own, made over the Client-Server API."""

import itertools
import secrets

from tests.fuzz.strategies import World
from tests.harness import Client

PASSWORD = "fuzzing horse"
_names = itertools.count(1)
_suffix = secrets.token_hex(3)


def new_user(base_url: str, prefix: str) -> Client:
    """A freshly registered, logged-in user."""
    client = Client(base_url)
    client.register(f"{prefix}{next(_names)}_{_suffix}", PASSWORD)
    return client


def _ok(resp_json: dict[str, object], key: str) -> str:
    value = resp_json[key]
    assert isinstance(value, str), resp_json
    return value


def build_world(base_url: str, server_name: str, full: bool = True) -> World:
    """A new user with a room of their own and one message in it. With `full`, also a second
    user (joined to the room, with a private room of their own), a public alias for the room,
    a filter and a key backup version."""
    user = new_user(base_url, "fuzz")
    room = user.post("createRoom", {"preset": "public_chat", "name": "fuzz"})
    assert room.status_code == 200, room.text
    room_id = _ok(room.json(), "room_id")
    sent = user.put(f"rooms/{room_id}/send/m.room.message/t{secrets.token_hex(4)}",
                    {"msgtype": "m.text", "body": "hello fuzz"})
    assert sent.status_code == 200, sent.text
    state = user.get(f"rooms/{room_id}/state")
    assert state.status_code == 200, state.text
    create_event_id = next(e["event_id"] for e in state.json() if e["type"] == "m.room.create")
    assert user.user_id and user.access_token and user.device_id
    world = World(
        server_name=server_name,
        user_id=user.user_id,
        access_token=user.access_token,
        device_id=user.device_id,
        password=PASSWORD,
        room_id=room_id,
        event_id=_ok(sent.json(), "event_id"),
        state_event_id=create_event_id,
    )
    if not full:
        return world
    other = new_user(base_url, "other")
    assert other.user_id
    world.other_user_id = other.user_id
    joined = other.post(f"join/{room_id}", {})
    assert joined.status_code == 200, joined.text
    other_room = other.post("createRoom", {"preset": "private_chat"})
    assert other_room.status_code == 200, other_room.text
    world.other_room_id = _ok(other_room.json(), "room_id")
    world.alias = f"#fuzz{secrets.token_hex(3)}:{server_name}"
    alias = user.put(f"directory/room/{world.alias.replace('#', '%23')}", {"room_id": room_id})
    assert alias.status_code == 200, alias.text
    flt = user.post(f"user/{user.user_id}/filter", {"room": {"timeline": {"limit": 5}}})
    assert flt.status_code == 200, flt.text
    world.filter_id = _ok(flt.json(), "filter_id")
    backup = user.post("room_keys/version", {
        "algorithm": "m.megolm_backup.v1.curve25519-aes-sha2",
        "auth_data": {"public_key": "abcdefg", "signatures": {}},
    })
    assert backup.status_code == 200, backup.text
    world.backup_version = _ok(backup.json(), "version")
    return world
