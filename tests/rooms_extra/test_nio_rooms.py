"""A real client library (matrix-nio) uses rooms the way a chat client does: two users create
rooms with every preset, invite, join, talk, paginate back to the room's creation, redact,
reply in a thread and react there, search, browse the directory and a space, and upgrade a
room, on both engines. Every nio call must come back as its success type."""

import asyncio
import json
from typing import Any
from urllib.parse import quote

import nio
from nio.api import RelationshipType
from nio.responses import PublicRoomsResponse, RoomUpgradeResponse

from tests.harness import ServerProcess

PASSWORD = "nio rooms password"


def ok(response: Any, kind: type) -> Any:
    assert isinstance(response, kind), f"expected {kind.__name__}, got {response!r}"
    return response


async def raw(client: nio.AsyncClient, method: str, path: str, body: Any = None) -> Any:
    """An endpoint nio has no method for, through nio's own HTTP session."""
    resp = await client.send(method, path, json.dumps(body) if body is not None else None,
                             {"Authorization": f"Bearer {client.access_token}", "Content-Type": "application/json"})
    data = await resp.json()
    assert resp.status == 200, data
    return data


async def paginate_to_creation(client: nio.AsyncClient, room_id: str) -> list[Any]:
    """Every event of the room, oldest first, fetched backwards a few at a time."""
    events: list[Any] = []
    token = None
    for _ in range(50):
        page = ok(await client.room_messages(room_id, start=token, limit=4), nio.RoomMessagesResponse)
        events = list(reversed(page.chunk)) + events
        if not page.chunk or page.end is None:
            return events
        token = page.end
    raise AssertionError("pagination never reached the start of the room")


async def _scenario(url: str, tag: str) -> None:
    alice = nio.AsyncClient(url, f"alice_{tag}")
    bob = nio.AsyncClient(url, f"bob_{tag}")
    try:
        ok(await alice.register(f"alice_{tag}", PASSWORD), nio.RegisterResponse)
        ok(await bob.register(f"bob_{tag}", PASSWORD), nio.RegisterResponse)
        server_name = alice.user_id.split(":", 1)[1]

        # --- a room of each preset, both users in it, a conversation --------------------
        rooms = {}
        for preset in (nio.RoomPreset.private_chat, nio.RoomPreset.trusted_private_chat, nio.RoomPreset.public_chat):
            public = preset is nio.RoomPreset.public_chat
            created = ok(await alice.room_create(
                visibility=nio.RoomVisibility.public if public else nio.RoomVisibility.private,
                name=f"{preset.value} room", topic="nio talks", preset=preset,
                alias=f"nio_{preset.value}_{tag}",
            ), nio.RoomCreateResponse)
            room_id = created.room_id
            rooms[preset] = room_id
            if not public:
                ok(await alice.room_invite(room_id, bob.user_id), nio.RoomInviteResponse)
            ok(await bob.join(room_id if not public else f"#nio_{preset.value}_{tag}:{server_name}"), nio.JoinResponse)
            members = ok(await alice.joined_members(room_id), nio.JoinedMembersResponse)
            assert {m.user_id for m in members.members} == {alice.user_id, bob.user_id}
            for i in range(3):
                for speaker in (alice, bob):
                    ok(await speaker.room_send(room_id, "m.room.message",
                                               {"msgtype": "m.text", "body": f"{speaker.user} says {i}"}),
                       nio.RoomSendResponse)
            history = await paginate_to_creation(bob, room_id)
            assert isinstance(history[0], nio.RoomCreateEvent), history[0]
            bodies = [e.body for e in history if isinstance(e, nio.RoomMessageText)]
            assert bodies == [f"{u} says {i}" for i in range(3) for u in (alice.user, bob.user)]
            state = ok(await bob.room_get_state(room_id), nio.RoomGetStateResponse)
            join_rule = next(e["content"]["join_rule"] for e in state.events if e["type"] == "m.room.join_rules")
            assert join_rule == ("public" if public else "invite")
            resolved = ok(await bob.room_resolve_alias(f"#nio_{preset.value}_{tag}:{server_name}"), nio.RoomResolveAliasResponse)
            assert resolved.room_id == room_id

        room_id = rooms[nio.RoomPreset.private_chat]

        # --- redaction ---------------------------------------------------------------------
        oops = ok(await bob.room_send(room_id, "m.room.message", {"msgtype": "m.text", "body": "secret typo"}),
                  nio.RoomSendResponse)
        ok(await bob.room_redact(room_id, oops.event_id, reason="typo"), nio.RoomRedactResponse)
        fetched = ok(await alice.room_get_event(room_id, oops.event_id), nio.RoomGetEventResponse)
        assert isinstance(fetched.event, nio.RedactedEvent), fetched.event
        context = ok(await alice.room_context(room_id, oops.event_id, limit=4), nio.RoomContextResponse)
        assert context.events_before

        # --- a thread with a reaction on a reply -------------------------------------------
        root = ok(await alice.room_send(room_id, "m.room.message", {"msgtype": "m.text", "body": "thread root"}),
                  nio.RoomSendResponse)
        reply = ok(await bob.room_send(room_id, "m.room.message", {
            "msgtype": "m.text", "body": "thread reply",
            "m.relates_to": {"rel_type": "m.thread", "event_id": root.event_id, "is_falling_back": True,
                             "m.in_reply_to": {"event_id": root.event_id}},
        }), nio.RoomSendResponse)
        reaction = ok(await alice.room_send(room_id, "m.reaction", {
            "m.relates_to": {"rel_type": "m.annotation", "event_id": reply.event_id, "key": "👍"},
        }), nio.RoomSendResponse)
        thread_events = [e async for e in alice.room_get_event_relations(room_id, root.event_id, RelationshipType.thread)]
        assert [e.event_id for e in thread_events] == [reply.event_id]
        reactions = [e async for e in bob.room_get_event_relations(room_id, reply.event_id,
                                                                   RelationshipType.annotation, "m.reaction")]
        assert [e.event_id for e in reactions] == [reaction.event_id]
        thread_roots = [e async for e in bob.room_get_threads(room_id)]
        assert [e.event_id for e in thread_roots] == [root.event_id]
        deep = await raw(alice, "GET", f"/_matrix/client/v1/rooms/{quote(room_id)}/relations/{quote(root.event_id)}"
                                       "?recurse=true")
        assert [e["event_id"] for e in deep["chunk"]] == [reaction.event_id, reply.event_id]

        # --- search ----------------------------------------------------------------------------
        found = await raw(bob, "POST", "/_matrix/client/v3/search",
                          {"search_categories": {"room_events": {"search_term": "says", "filter": {"limit": 20}}}})
        results = found["search_categories"]["room_events"]
        assert results["count"] == 18
        assert {r["result"]["room_id"] for r in results["results"]} == set(rooms.values())
        typo = await raw(alice, "POST", "/_matrix/client/v3/search",
                         {"search_categories": {"room_events": {"search_term": "typo"}}})
        assert typo["search_categories"]["room_events"]["results"] == []

        # --- the directory and a space -------------------------------------------------------
        listed = ok(await bob.list_public_rooms(filter_generic_search_term="public_chat room"), PublicRoomsResponse)
        assert [r.room_id for r in listed.public_rooms] == [rooms[nio.RoomPreset.public_chat]]
        space = ok(await alice.room_create(name="nio space", space=True, preset=nio.RoomPreset.public_chat),
                   nio.RoomCreateResponse)
        ok(await alice.room_put_state(space.room_id, "m.space.child", {"via": ["test.local"]},
                                      rooms[nio.RoomPreset.public_chat]), nio.RoomPutStateResponse)
        hierarchy = ok(await bob.space_get_hierarchy(space.room_id), nio.SpaceGetHierarchyResponse)
        assert [r["room_id"] for r in hierarchy.rooms] == [space.room_id, rooms[nio.RoomPreset.public_chat]]

        # --- upgrades: the server's endpoint, and nio's own client-side helper ----------------
        old = rooms[nio.RoomPreset.public_chat]
        upgraded = await raw(alice, "POST", f"/_matrix/client/v3/rooms/{quote(old)}/upgrade", {"new_version": "11"})
        new_room = upgraded["replacement_room"]
        tombstone = ok(await bob.room_get_state_event(old, "m.room.tombstone"), nio.RoomGetStateEventResponse)
        assert tombstone.content["replacement_room"] == new_room
        ok(await bob.join(f"#nio_public_chat_{tag}:{server_name}"), nio.JoinResponse)
        assert new_room in ok(await bob.joined_rooms(), nio.JoinedRoomsResponse).rooms
        ok(await bob.room_send(new_room, "m.room.message", {"msgtype": "m.text", "body": "hello new room"}),
           nio.RoomSendResponse)
        assert isinstance((await paginate_to_creation(bob, new_room))[0], nio.RoomCreateEvent)

        trusted = rooms[nio.RoomPreset.trusted_private_chat]
        client_side = ok(await alice.room_upgrade(trusted, "11"), RoomUpgradeResponse)
        create = ok(await alice.room_get_state_event(client_side.room_id, "m.room.create"), nio.RoomGetStateEventResponse)
        assert create.content["predecessor"]["room_id"] == trusted
        name = ok(await alice.room_get_state_event(client_side.room_id, "m.room.name"), nio.RoomGetStateEventResponse)
        assert name.content == {"name": "trusted_private_chat room"}

        ok(await bob.room_leave(rooms[nio.RoomPreset.private_chat]), nio.RoomLeaveResponse)
        ok(await bob.room_forget(rooms[nio.RoomPreset.private_chat]), nio.RoomForgetResponse)
    finally:
        await alice.close()
        await bob.close()


def test_matrix_nio_rooms(server: ServerProcess) -> None:
    asyncio.run(_scenario(server.url, "one"))
