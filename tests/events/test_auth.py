"""Authorization rules per room version, case by case on small in-memory rooms."""

import pytest

from homeserver.events.auth import (
    check_auth,
    check_auth_events_selection,
    get_send_level,
    get_user_power_level,
)
from homeserver.events.builder import auth_types_for_event
from homeserver.events.errors import AuthError
from homeserver.events.event import Event
from homeserver.events.room_versions import KNOWN_ROOM_VERSIONS
from tests.events.helpers import (
    ALICE,
    BOB,
    CREATOR,
    MOD,
    REMOTE,
    Room,
    create_content,
    new_room,
)

ALL = [str(n) for n in range(1, 12)]
KNOCK = [v for v in ALL if int(v) >= 7]
NO_KNOCK = [v for v in ALL if int(v) < 7]
RESTRICTED = [v for v in ALL if int(v) >= 8]


def allowed(room: Room, event: Event) -> None:
    room.check(event)


def denied(room: Room, event: Event, reason: str = "") -> None:
    with pytest.raises(AuthError) as info:
        room.check(event)
    assert reason in info.value.msg


# --- m.room.create -----------------------------------------------------------------------

@pytest.mark.parametrize("version", ALL)
def test_create(version: str) -> None:
    room = Room(version)
    rv = room.rv
    allowed(room, room.make("m.room.create", CREATOR, create_content(rv), ""))
    denied(room, room.make("m.room.create", REMOTE, create_content(rv, REMOTE), ""), "domain")
    denied(room, room.make("m.room.create", CREATOR, create_content(rv, room_version="99"), ""),
           "room version")
    no_creator = room.make("m.room.create", CREATOR, {"room_version": version}, "")
    if rv.implicit_room_creator:
        allowed(room, no_creator)
    else:
        denied(room, no_creator, "creator")
    room.apply(room.make("m.room.create", CREATOR, create_content(rv), ""))
    denied(room, room.make("m.room.create", CREATOR, create_content(rv), ""), "prev_events")


@pytest.mark.parametrize("version", ALL)
def test_creator_first_join_and_nothing_without_create(version: str) -> None:
    room = Room(version)
    room.send("m.room.create", CREATOR, create_content(room.rv), "")
    denied(room, room.member(ALICE, ALICE, "join"), "invite-only")  # no join rules yet
    first = room.member(CREATOR, CREATOR, "join")
    allowed(room, first)
    with pytest.raises(AuthError, match="m.room.create"):
        check_auth(room.rv, first, {})


def test_v11_creator_is_the_sender() -> None:
    room = Room("11")
    room.send("m.room.create", CREATOR, {"creator": ALICE}, "")
    denied(room, room.member(ALICE, ALICE, "join"))
    room.set_member(CREATOR, CREATOR, "join")
    assert get_user_power_level(CREATOR, room.state) == 100
    assert get_user_power_level(ALICE, room.state) == 0


def test_v10_creator_is_content_creator() -> None:
    room = Room("10")
    room.send("m.room.create", CREATOR, {"creator": ALICE}, "")
    denied(room, room.member(CREATOR, CREATOR, "join"))
    allowed(room, room.member(ALICE, ALICE, "join"))
    assert get_user_power_level(ALICE, room.state) == 100


# --- joins ---------------------------------------------------------------------------------

@pytest.mark.parametrize("version", ALL)
def test_join_public_and_invite_rooms(version: str) -> None:
    public = new_room(version, "public")
    allowed(public, public.member(ALICE, ALICE, "join"))
    denied(public, public.member(ALICE, BOB, "join"), "behalf")

    private = new_room(version, "invite")
    denied(private, private.member(ALICE, ALICE, "join"), "invite-only")
    private.set_member(MOD, ALICE, "invite")
    allowed(private, private.member(ALICE, ALICE, "join"))
    private.set_member(ALICE, ALICE, "join")
    allowed(private, private.member(ALICE, ALICE, "join", displayname="A"))  # profile change


@pytest.mark.parametrize("version", ALL)
def test_banned_user_cannot_join(version: str) -> None:
    room = new_room(version, "public")
    room.set_member(MOD, ALICE, "ban")
    denied(room, room.member(ALICE, ALICE, "join"), "banned")


@pytest.mark.parametrize("version", ALL)
def test_unknown_join_rule_and_membership(version: str) -> None:
    room = new_room(version, "private")
    denied(room, room.member(ALICE, ALICE, "join"), "join rule")
    denied(room, room.member(ALICE, ALICE, "dance"), "unknown membership")


@pytest.mark.parametrize("version", ALL)
def test_knock(version: str) -> None:
    room = new_room(version, "knock")
    knock = room.member(ALICE, ALICE, "knock")
    if version in NO_KNOCK:
        denied(room, knock, "unknown membership")
        denied(room, room.member(ALICE, ALICE, "join"), "join rule")
        return
    denied(room, room.member(ALICE, ALICE, "join"), "invite-only")
    denied(room, room.member(ALICE, BOB, "knock"), "behalf")
    room.check(knock)
    room.apply(knock)
    allowed(room, room.member(ALICE, ALICE, "leave"))  # rescinding the knock
    room.set_member(MOD, ALICE, "invite")
    denied(room, room.member(ALICE, ALICE, "knock"), "membership")
    allowed(room, room.member(ALICE, ALICE, "join"))
    denied(room, room.member(MOD, MOD, "knock"), "membership")


@pytest.mark.parametrize("version", KNOCK)
def test_knock_needs_knock_rule(version: str) -> None:
    for rule in ("public", "invite"):
        room = new_room(version, rule)
        denied(room, room.member(ALICE, ALICE, "knock"), "knock")
    room = new_room(version, "knock")
    room.set_member(MOD, ALICE, "ban")
    denied(room, room.member(ALICE, ALICE, "knock"), "membership")


@pytest.mark.parametrize("version", KNOCK)
def test_knock_restricted(version: str) -> None:
    room = new_room(version, "knock_restricted")
    knock = room.member(ALICE, ALICE, "knock")
    via_mod = room.member(BOB, BOB, "join", join_authorised_via_users_server=MOD)
    if int(version) >= 10:
        allowed(room, knock)
        allowed(room, via_mod)
    else:
        denied(room, knock, "knock")
        denied(room, via_mod, "join rule")


@pytest.mark.parametrize("version", ALL)
def test_restricted_join(version: str) -> None:
    room = new_room(version, "restricted", invite=10)
    via_mod = room.member(ALICE, ALICE, "join", join_authorised_via_users_server=MOD)
    if version not in RESTRICTED:
        denied(room, via_mod, "join rule")
        return
    allowed(room, via_mod)
    denied(room, room.member(ALICE, ALICE, "join"), "join_authorised_via_users_server")
    # the authorising user must be joined and able to invite
    denied(room, room.member(ALICE, ALICE, "join", join_authorised_via_users_server=BOB),
           "not joined")
    room.set_member(MOD, BOB, "invite")
    room.set_member(BOB, BOB, "join")
    denied(room, room.member(ALICE, ALICE, "join", join_authorised_via_users_server=BOB),
           "may not invite")
    # an invited user needs no authoriser
    room.set_member(MOD, ALICE, "invite")
    allowed(room, room.member(ALICE, ALICE, "join"))


@pytest.mark.parametrize("version", RESTRICTED)
def test_restricted_join_needs_authorising_servers_signature(version: str) -> None:
    room = new_room(version, "restricted")
    # a remote authoriser: first let them in through an invite
    room.set_member(MOD, "@admin:other", "invite")
    room.set_member("@admin:other", "@admin:other", "join")
    content = {"membership": "join", "join_authorised_via_users_server": "@admin:other"}
    unsigned_by_other = room.make("m.room.member", ALICE, content, ALICE)
    denied(room, unsigned_by_other, "not signed by other")
    signed = room.make("m.room.member", ALICE, content, ALICE, also_signed_by=("other",))
    allowed(room, signed)


# --- invites -------------------------------------------------------------------------------

@pytest.mark.parametrize("version", ALL)
def test_invites(version: str) -> None:
    room = new_room(version, "invite", members=(MOD, BOB), invite=50)
    denied(room, room.member(BOB, ALICE, "invite"), "invite level")
    allowed(room, room.member(MOD, ALICE, "invite"))
    denied(room, room.member(ALICE, "@carol:test", "invite"), "not joined")
    denied(room, room.member(MOD, BOB, "invite"), "already join")
    room.set_member(MOD, ALICE, "ban")
    denied(room, room.member(MOD, ALICE, "invite"), "already ban")

    anyone = new_room(version, "invite", members=(MOD, BOB), invite=0)
    allowed(anyone, anyone.member(BOB, ALICE, "invite"))


@pytest.mark.parametrize("version", ALL)
def test_third_party_invite_rejected(version: str) -> None:
    room = new_room(version, "invite")
    event = room.member(MOD, ALICE, "invite", third_party_invite={
        "display_name": "a", "signed": {"mxid": ALICE, "token": "t", "signatures": {}}})
    denied(room, event, "third-party invites are not supported until federation exists")


# --- leave, kick, ban, unban ---------------------------------------------------------------

@pytest.mark.parametrize("version", ALL)
def test_leave(version: str) -> None:
    room = new_room(version, "invite", members=(MOD, BOB))
    allowed(room, room.member(BOB, BOB, "leave"))
    denied(room, room.member(ALICE, ALICE, "leave"), "cannot leave")
    room.set_member(MOD, ALICE, "invite")
    allowed(room, room.member(ALICE, ALICE, "leave"))  # rejecting the invite
    room.set_member(MOD, ALICE, "ban")
    denied(room, room.member(ALICE, ALICE, "leave"), "cannot leave")


@pytest.mark.parametrize("version", ALL)
def test_kick(version: str) -> None:
    room = new_room(version, "public", members=(MOD, BOB, ALICE))
    allowed(room, room.member(MOD, ALICE, "leave"))
    denied(room, room.member(BOB, ALICE, "leave"), "kick level")
    denied(room, room.member(MOD, CREATOR, "leave"), "not below")
    allowed(room, room.member(CREATOR, MOD, "leave"))
    room.power_levels(users={CREATOR: 100, MOD: 50, BOB: 50})
    denied(room, room.member(MOD, BOB, "leave"), "not below")  # equal levels
    room.power_levels(users={CREATOR: 100, MOD: 50}, kick=60)
    denied(room, room.member(MOD, ALICE, "leave"), "kick level")
    room.set_member(ALICE, ALICE, "leave")
    denied(room, room.member("@out:test", ALICE, "leave"), "not joined")


@pytest.mark.parametrize("version", ALL)
def test_ban_and_unban(version: str) -> None:
    room = new_room(version, "public", members=(MOD, BOB, ALICE))
    denied(room, room.member(BOB, ALICE, "ban"), "ban level")
    denied(room, room.member(MOD, CREATOR, "ban"), "not below")
    denied(room, room.member("@out:test", ALICE, "ban"), "not joined")
    room.set_member(MOD, ALICE, "ban")
    allowed(room, room.member(MOD, ALICE, "leave"))  # unban
    denied(room, room.member(BOB, ALICE, "leave"), "ban level")
    room.power_levels(users={CREATOR: 100, MOD: 50}, ban=60)
    denied(room, room.member(MOD, ALICE, "leave"), "ban level")
    denied(room, room.member(MOD, BOB, "ban"), "ban level")
    allowed(room, room.member(CREATOR, ALICE, "leave"))
    room.power_levels(users={CREATOR: 100, MOD: 50}, ban=50, kick=60)
    denied(room, room.member(MOD, ALICE, "leave"), "kick level")  # unban needs both


# --- power levels ----------------------------------------------------------------------------

def _pl_event(room: Room, sender: str, **changes: object) -> Event:
    content = dict(room.state[("m.room.power_levels", "")].content)
    for key, value in changes.items():
        if value is None:
            content.pop(key, None)
        else:
            content[key] = value
    return room.make("m.room.power_levels", sender, content, "")


@pytest.mark.parametrize("version", ALL)
def test_power_level_changes(version: str) -> None:
    open_pl = {"m.room.name": 50, "m.room.power_levels": 50}
    room = new_room(version, "public", members=(MOD, BOB, ALICE), events=open_pl)
    users = {CREATOR: 100, MOD: 50}
    denied(room, _pl_event(room, BOB, kick=40), "needs power level 50")
    allowed(room, _pl_event(room, CREATOR, users={**users, ALICE: 50}))
    allowed(room, _pl_event(room, MOD, users={**users, ALICE: 50}))
    denied(room, _pl_event(room, MOD, users={**users, ALICE: 60}), "above the sender")
    denied(room, _pl_event(room, MOD, users={**users, MOD: 100}), "above the sender")
    allowed(room, _pl_event(room, MOD, users={**users, MOD: 10}))  # demoting oneself
    denied(room, _pl_event(room, MOD, users={CREATOR: 0, MOD: 50}), "not below")
    denied(room, _pl_event(room, MOD, users={MOD: 50}), "not below")  # removing creator
    room.power_levels(users={**users, BOB: 50}, events=open_pl)
    denied(room, _pl_event(room, MOD, users={**users, BOB: 0}), "not below")  # peer
    allowed(room, _pl_event(room, MOD, kick=40))
    denied(room, _pl_event(room, MOD, kick=51), "above the sender")
    denied(room, _pl_event(room, MOD, users_default=60), "above the sender")
    allowed(room, _pl_event(room, MOD, events={**open_pl, "m.room.name": 20}))
    denied(room, _pl_event(room, MOD, events={**open_pl, "m.room.name": 51}), "above the sender")
    room.power_levels(users={**users, BOB: 50}, ban=75,
                      events={**open_pl, "m.x": 80})
    denied(room, _pl_event(room, MOD, ban=50), "current level 75")
    denied(room, _pl_event(room, MOD, ban=None), "current level 75")  # removal
    denied(room, _pl_event(room, MOD, events=open_pl), "current level 80")


@pytest.mark.parametrize("version", ALL)
def test_notifications_levels(version: str) -> None:
    room = new_room(version, "public", events={"m.room.power_levels": 50},
                    notifications={"room": 80})
    change = _pl_event(room, MOD, notifications={"room": 10})
    if room.rv.limit_notifications_power_levels:
        denied(room, change, "notifications.room")
    else:
        allowed(room, change)


@pytest.mark.parametrize("version", ALL)
def test_power_level_value_types(version: str) -> None:
    room = new_room(version, "public")
    string_levels = _pl_event(room, CREATOR, users={CREATOR: "100", MOD: " +50 "},
                              kick="50", events={"m.room.power_levels": "100"})
    bad_user = _pl_event(room, CREATOR, users={CREATOR: 100, "not-a-user": 5})
    garbage = _pl_event(room, CREATOR, users={CREATOR: 100, MOD: "fifty"})
    bad_events = _pl_event(room, CREATOR, events=[])
    if room.rv.enforce_int_power_levels:
        denied(room, string_levels, "not an integer")
    else:
        allowed(room, string_levels)
    denied(room, bad_user, "not a user id")
    denied(room, garbage, "not an integer")
    denied(room, bad_events, "not an object")


def test_string_levels_are_read_in_old_versions() -> None:
    room = new_room("9", "public", members=(MOD, ALICE))
    room.power_levels(users={CREATOR: "100", MOD: "50"}, kick="40")
    assert get_user_power_level(MOD, room.state) == 50
    allowed(room, room.member(MOD, ALICE, "leave"))


def test_float_levels_truncate_in_v1() -> None:
    room = new_room("1", "public", members=(MOD, ALICE))
    room.power_levels(users={CREATOR: 100, MOD: 50.57}, kick=50.9)
    assert get_user_power_level(MOD, room.state) == 50
    allowed(room, room.member(MOD, ALICE, "leave"))


@pytest.mark.parametrize("version", ALL)
def test_first_power_levels_allowed(version: str) -> None:
    room = Room(version)
    room.send("m.room.create", CREATOR, create_content(room.rv), "")
    room.set_member(CREATOR, CREATOR, "join")
    allowed(room, room.make("m.room.power_levels", CREATOR,
                            {"users": {CREATOR: 100, ALICE: 100}}, ""))


# --- other events ----------------------------------------------------------------------------

@pytest.mark.parametrize("version", ALL)
def test_sending_messages_and_state(version: str) -> None:
    room = new_room(version, "public", members=(MOD, BOB))
    allowed(room, room.make("m.room.message", BOB, {"body": "hi"}))
    denied(room, room.make("m.room.message", ALICE, {"body": "hi"}), "not joined")
    denied(room, room.make("m.room.topic", BOB, {"topic": "t"}, ""), "needs power level 50")
    allowed(room, room.make("m.room.topic", MOD, {"topic": "t"}, ""))
    denied(room, room.make("m.room.power_levels", MOD, {"users": {}}, ""), "needs power level 100")
    room.power_levels(events_default=10, events={"m.reaction": 0, "m.room.power_levels": 100})
    denied(room, room.make("m.room.message", BOB, {"body": "hi"}), "needs power level 10")
    allowed(room, room.make("m.reaction", BOB, {}))


@pytest.mark.parametrize("version", ALL)
def test_state_key_user_id_rule(version: str) -> None:
    room = new_room(version, "public", members=(MOD, BOB), state_default=0)
    allowed(room, room.make("m.custom", BOB, {}, BOB))
    denied(room, room.make("m.custom", BOB, {}, MOD), "sender's")
    allowed(room, room.make("m.custom", BOB, {}, "not-a-user"))


@pytest.mark.parametrize("version", ALL)
def test_third_party_invite_event_needs_invite_level(version: str) -> None:
    room = new_room(version, "invite", members=(MOD, BOB), invite=50)
    content = {"display_name": "x", "key_validity_url": "https://x", "public_key": "k"}
    denied(room, room.make("m.room.third_party_invite", BOB, content, "tok"), "invite level")
    allowed(room, room.make("m.room.third_party_invite", MOD, content, "tok"))


@pytest.mark.parametrize("version", ALL)
def test_redactions(version: str) -> None:
    room = new_room(version, "public", members=(MOD, BOB, REMOTE))
    remote_msg = room.send("m.room.message", REMOTE, {"body": "spam"})
    own_msg = room.send("m.room.message", BOB, {"body": "oops"})
    by_mod = room.make("m.room.redaction", MOD, {}, redacts=remote_msg.event_id)
    own = room.make("m.room.redaction", BOB, {}, redacts=own_msg.event_id)
    others = room.make("m.room.redaction", BOB, {}, redacts=remote_msg.event_id)
    allowed(room, by_mod)
    allowed(room, own)
    if room.rv.redaction_rule_in_auth:
        denied(room, others, "redact level")
    else:
        allowed(room, others)  # checked when the redaction is applied instead
    room.power_levels(events={"m.room.redaction": 60, "m.room.power_levels": 100})
    denied(room, room.make("m.room.redaction", MOD, {}, redacts=own_msg.event_id),
           "needs power level 60")


@pytest.mark.parametrize("version", ALL)
def test_aliases(version: str) -> None:
    room = new_room(version, "public")
    outsider = room.make("m.room.aliases", REMOTE, {"aliases": ["#a:other"]}, "other")
    wrong_domain = room.make("m.room.aliases", REMOTE, {"aliases": ["#a:other"]}, "test")
    if room.rv.special_case_aliases_auth:
        allowed(room, outsider)
        denied(room, wrong_domain, "server")
    else:
        denied(room, outsider, "not joined")


@pytest.mark.parametrize("version", ["1", "10", "11"])
def test_m_federate_false(version: str) -> None:
    room = Room(version)
    content = {**create_content(room.rv), "m.federate": False}
    room.send("m.room.create", CREATOR, content, "")
    room.set_member(CREATOR, CREATOR, "join")
    room.send("m.room.join_rules", CREATOR, {"join_rule": "public"}, "")
    denied(room, room.member(REMOTE, REMOTE, "join"), "federate")
    allowed(room, room.member(ALICE, ALICE, "join"))


# --- the auth events themselves --------------------------------------------------------------

def test_auth_entries_must_match_their_keys_and_room() -> None:
    room = new_room("10", "public", members=(MOD, BOB))
    message = room.make("m.room.message", BOB, {"body": "x"})
    state = dict(room.state)
    state[("m.room.member", BOB)] = room.state[("m.room.member", MOD)]
    with pytest.raises(AuthError, match="does not match"):
        check_auth(room.rv, message, state)
    rejected = dict(room.state)
    pl = room.state[("m.room.power_levels", "")]
    rejected_pl = Event(pl.get_pdu_json(), room.rv, pl.event_id)
    rejected_pl.rejected_reason = "auth"
    rejected[("m.room.power_levels", "")] = rejected_pl
    with pytest.raises(AuthError, match="rejected"):
        check_auth(room.rv, message, rejected)
    other_room = Room("10", room_id="!other:test")
    other_room.send("m.room.create", CREATOR, create_content(other_room.rv), "")
    moved = dict(room.state)
    moved[("m.room.create", "")] = other_room.state[("m.room.create", "")]
    with pytest.raises(AuthError, match="another room"):
        check_auth(room.rv, message, moved)
    # unrelated state is ignored
    allowed(room, message)


def test_check_auth_events_selection() -> None:
    room = new_room("10", "public", members=(MOD, BOB))
    message = room.make("m.room.message", BOB, {"body": "x"})
    cited = [room.state[key] for key in auth_types_for_event(
        room.rv, message.type, message.sender, message.state_key, message.content)]
    check_auth_events_selection(room.rv, message, cited)
    for bad, reason in [
        (cited + [cited[0]], "duplicate"),
        (cited + [room.state[("m.room.join_rules", "")]], "not one this event may cite"),
        (cited[1:], "no m.room.create"),
    ]:
        with pytest.raises(AuthError, match=reason):
            check_auth_events_selection(room.rv, message, bad)


@pytest.mark.parametrize("version", ["7", "9", "11"])
def test_auth_types_for_event(version: str) -> None:
    rv = KNOWN_ROOM_VERSIONS[version]
    base = [("m.room.create", ""), ("m.room.power_levels", ""), ("m.room.member", ALICE)]
    assert auth_types_for_event(rv, "m.room.create", ALICE, "", {}) == []
    assert auth_types_for_event(rv, "m.room.message", ALICE, None, {}) == base
    assert auth_types_for_event(rv, "m.room.member", ALICE, ALICE, {"membership": "join"}) == \
        base + [("m.room.join_rules", "")]
    assert auth_types_for_event(rv, "m.room.member", ALICE, BOB, {"membership": "ban"}) == \
        base + [("m.room.member", BOB)]
    assert auth_types_for_event(rv, "m.room.member", ALICE, BOB, {"membership": "invite"}) == \
        base + [("m.room.member", BOB), ("m.room.join_rules", "")]
    assert auth_types_for_event(rv, "m.room.member", ALICE, ALICE, {"membership": "knock"}) == \
        base + [("m.room.join_rules", "")]
    tpi = {"membership": "invite", "third_party_invite": {"signed": {"token": "tok"}}}
    assert ("m.room.third_party_invite", "tok") in auth_types_for_event(
        rv, "m.room.member", ALICE, BOB, tpi)
    restricted = auth_types_for_event(
        rv, "m.room.member", ALICE, ALICE,
        {"membership": "join", "join_authorised_via_users_server": MOD})
    assert (("m.room.member", MOD) in restricted) is rv.restricted_join_rule


def test_get_send_level_defaults() -> None:
    assert get_send_level("m.room.message", None, None) == 0
    assert get_send_level("m.room.topic", "", None) == 50
    content = {"events": {"m.room.topic": 10}, "events_default": 5, "state_default": 70}
    assert get_send_level("m.room.topic", "", content) == 10
    assert get_send_level("m.room.name", "", content) == 70
    assert get_send_level("m.room.message", None, content) == 5

