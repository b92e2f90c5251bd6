"""THE route table (DESIGN §4): every HTTP endpoint the server serves, listed once.

Each entry gives the path regex, the methods, the listener resource it belongs to, where it may
run and the servlet that serves it. Servlet registration in every process reads this table; so
will the `homeserver routes` proxy-config generator and the misroute guard.

Placement values:
  any              every process whose listener has the resource (main and generic workers)
  main             the main process only
  writer:<stream>  the (first) writer of that stream (typing, to_device, account_data, receipts,
                   presence, push_rules, device_lists)
  room-sticky      one instance per room (pagination)
"""

import importlib
from collections.abc import Iterator
from dataclasses import dataclass

CLIENT_PREFIX = "^/_matrix/client/(?:api/v1|r0|v3|unstable)"
CLIENT_V3_PREFIX = "^/_matrix/client/(?:r0|v3|unstable)"
CLIENT_V1_PREFIX = "^/_matrix/client/(?:v1|unstable)"


@dataclass(frozen=True)
class Endpoint:
    name: str
    pattern: str
    methods: tuple[str, ...]
    resource: str
    placement: str
    servlet: str
    balance: str | None = None

    def with_balance(self, balance: str) -> "Endpoint":
        return Endpoint(self.name, self.pattern, self.methods, self.resource, self.placement, self.servlet, balance)

    def servlet_class(self) -> type:
        module_name, _, class_name = self.servlet.partition(":")
        return getattr(importlib.import_module(module_name), class_name)  # type: ignore[no-any-return]


def _client(name: str, path: str, methods: str, placement: str, servlet: str, prefix: str = CLIENT_PREFIX) -> Endpoint:
    return Endpoint(name, prefix + path + "$", tuple(methods.split()), "client", placement, "homeserver.rest.client." + servlet)


ROUTES: list[Endpoint] = [
    # --- accounts ------------------------------------------------------------------------
    Endpoint("versions", "^/_matrix/client/versions$", ("GET",), "client", "any", "homeserver.rest.client.versions:VersionsServlet"),
    _client("capabilities", "/capabilities", "GET", "any", "versions:CapabilitiesServlet", CLIENT_V3_PREFIX),
    # Logging in and registering run anywhere (the device is created on a device_lists writer
    # over HTTP replication); logging out and other device deletions run on that writer.
    _client("register", "/register", "POST", "any", "register:RegisterServlet", CLIENT_V3_PREFIX),
    _client("register_available", "/register/available", "GET", "any", "register:RegisterAvailableServlet", CLIENT_V3_PREFIX),
    _client("login", "/login", "GET POST", "any", "login:LoginServlet"),
    _client("logout", "/logout", "POST", "writer:device_lists", "login:LogoutServlet", CLIENT_V3_PREFIX),
    _client("logout_all", "/logout/all", "POST", "writer:device_lists", "login:LogoutAllServlet", CLIENT_V3_PREFIX),
    _client("whoami", "/account/whoami", "GET", "any", "account:WhoamiServlet", CLIENT_V3_PREFIX),
    _client("password", "/account/password", "POST", "writer:device_lists", "account:PasswordServlet", CLIENT_V3_PREFIX),
    _client("deactivate", "/account/deactivate", "POST", "writer:device_lists", "account:DeactivateServlet", CLIENT_V3_PREFIX),
    _client("devices", "/devices", "GET", "any", "devices:DevicesServlet", CLIENT_V3_PREFIX),
    _client("device", "/devices/(?P<device_id>[^/]+)", "GET PUT DELETE", "writer:device_lists", "devices:DeviceServlet", CLIENT_V3_PREFIX),
    _client("delete_devices", "/delete_devices", "POST", "writer:device_lists", "devices:DeleteDevicesServlet", CLIENT_V3_PREFIX),
    # --- sync ------------------------------------------------------------------------------
    Endpoint("sync", "^/_matrix/client/(?:r0|v3)/sync$", ("GET",), "client", "any", "homeserver.rest.client.sync:SyncServlet",
             balance="access_token"),
    _client("events", "/events", "GET", "any", "initial_sync:EventsServlet"),
    _client("initial_sync", "/initialSync", "GET", "any", "initial_sync:InitialSyncServlet"),
    _client("room_initial_sync", "/rooms/(?P<room_id>[^/]+)/initialSync", "GET", "any", "initial_sync:RoomInitialSyncServlet"),
    _client("filter_upload", "/user/(?P<user_id>[^/]+)/filter", "POST", "any", "sync:FilterUploadServlet", CLIENT_V3_PREFIX),
    _client("filter", "/user/(?P<user_id>[^/]+)/filter/(?P<filter_id>[^/]+)", "GET", "any", "sync:FilterServlet", CLIENT_V3_PREFIX),
    # --- rooms: events are created where the request arrives and persisted by the room's
    # event persister, reached over HTTP replication ---------------------------------------
    _client("create_room", "/createRoom", "POST", "any", "room:CreateRoomServlet"),
    _client("join", "/join/(?P<room>[^/]+)", "POST", "any", "room:JoinServlet"),
    _client("room_join", "/rooms/(?P<room>[^/]+)/join", "POST", "any", "room:JoinServlet"),
    _client("knock", "/knock/(?P<room>[^/]+)", "POST", "any", "room:KnockServlet", CLIENT_V3_PREFIX),
    _client("membership", "/rooms/(?P<room_id>[^/]+)/(?P<action>invite|leave|kick|ban|unban|forget)", "POST", "any", "room:MembershipServlet"),
    _client("send", "/rooms/(?P<room_id>[^/]+)/send/(?P<event_type>[^/]+)/(?P<txn_id>[^/]+)", "PUT", "any", "room:SendEventServlet",
            ).with_balance("room"),
    _client("redact", "/rooms/(?P<room_id>[^/]+)/redact/(?P<event_id>[^/]+)/(?P<txn_id>[^/]+)", "PUT", "any", "room:RedactServlet"),
    _client("state_event", "/rooms/(?P<room_id>[^/]+)/state/(?P<event_type>[^/]+)(?:/(?P<state_key>[^/]*))?", "GET PUT", "any", "room:RoomStateEventServlet"),
    # --- rooms: reads ----------------------------------------------------------------------
    _client("joined_rooms", "/joined_rooms", "GET", "any", "room:JoinedRoomsServlet"),
    _client("room_state", "/rooms/(?P<room_id>[^/]+)/state", "GET", "any", "room:RoomStateServlet"),
    _client("room_event", "/rooms/(?P<room_id>[^/]+)/event/(?P<event_id>[^/]+)", "GET", "any", "room:RoomEventServlet"),
    _client("members", "/rooms/(?P<room_id>[^/]+)/members", "GET", "any", "room:MembersServlet"),
    _client("joined_members", "/rooms/(?P<room_id>[^/]+)/joined_members", "GET", "any", "room:JoinedMembersServlet"),
    _client("messages", "/rooms/(?P<room_id>[^/]+)/messages", "GET", "room-sticky", "room:MessagesServlet"),
    _client("context", "/rooms/(?P<room_id>[^/]+)/context/(?P<event_id>[^/]+)", "GET", "any", "room:ContextServlet"),
    # --- relations and threads ---------------------------------------------------------------
    _client("relations", "/rooms/(?P<room_id>[^/]+)/relations/(?P<event_id>[^/]+)(?:/(?P<rel_type>[^/]+)(?:/(?P<event_type>[^/]+))?)?",
            "GET", "any", "relations:RelationsServlet", CLIENT_V1_PREFIX),
    _client("threads", "/rooms/(?P<room_id>[^/]+)/threads", "GET", "any", "relations:ThreadsServlet", CLIENT_V1_PREFIX),
    _client("search", "/search", "POST", "any", "search:SearchServlet"),
    _client("upgrade", "/rooms/(?P<room_id>[^/]+)/upgrade", "POST", "main", "room_extras:UpgradeServlet"),
    _client("report_event", "/rooms/(?P<room_id>[^/]+)/report/(?P<event_id>[^/]+)", "POST", "main", "room_extras:ReportEventServlet"),
    _client("report_room", "/rooms/(?P<room_id>[^/]+)/report", "POST", "main", "room_extras:ReportRoomServlet", CLIENT_V3_PREFIX),
    _client("timestamp_to_event", "/rooms/(?P<room_id>[^/]+)/timestamp_to_event", "GET", "any",
            "room_extras:TimestampToEventServlet", CLIENT_V1_PREFIX),
    # --- spaces and previews ------------------------------------------------------------------
    _client("hierarchy", "/rooms/(?P<room_id>[^/]+)/hierarchy", "GET", "any", "hierarchy:HierarchyServlet", CLIENT_V1_PREFIX),
    _client("room_summary", "/room_summary/(?P<room>[^/]+)", "GET", "any", "hierarchy:RoomSummaryServlet",
            "^/_matrix/client/v1"),
    _client("room_summary_unstable_short", "/summary/(?P<room>[^/]+)", "GET", "any", "hierarchy:RoomSummaryServlet",
            "^/_matrix/client/unstable/im.nheko.summary"),
    _client("room_summary_unstable", "/rooms/(?P<room>[^/]+)/summary", "GET", "any", "hierarchy:RoomSummaryServlet",
            "^/_matrix/client/unstable/im.nheko.summary"),
    # --- aliases and the room directory ----------------------------------------------------
    _client("alias", "/directory/room/(?P<alias>[^/]+)", "GET PUT DELETE", "main", "directory:AliasServlet"),
    _client("room_aliases", "/rooms/(?P<room_id>[^/]+)/aliases", "GET", "main", "directory:RoomAliasesServlet", CLIENT_V3_PREFIX),
    _client("directory_visibility", "/directory/list/room/(?P<room_id>[^/]+)", "GET PUT", "main", "directory:DirectoryVisibilityServlet"),
    _client("public_rooms", "/publicRooms", "GET POST", "any", "directory:PublicRoomsServlet"),
    # --- account data, tags, profiles, user directory, VoIP, 3pids ---------------------------
    # Reads come from the database and may run anywhere; writes of account data and tags run
    # on the account_data writer. A profile change runs anywhere (its member events go to the
    # rooms' event persisters).
    _client("account_data", "/user/(?P<user_id>[^/]+)/account_data/(?P<data_type>[^/]+)", "GET", "any",
            "account_data:AccountDataServlet", CLIENT_V3_PREFIX),
    _client("account_data_put", "/user/(?P<user_id>[^/]+)/account_data/(?P<data_type>[^/]+)", "PUT", "writer:account_data",
            "account_data:AccountDataServlet", CLIENT_V3_PREFIX),
    _client("room_account_data", "/user/(?P<user_id>[^/]+)/rooms/(?P<room_id>[^/]+)/account_data/(?P<data_type>[^/]+)", "GET",
            "any", "account_data:RoomAccountDataServlet", CLIENT_V3_PREFIX),
    _client("room_account_data_put", "/user/(?P<user_id>[^/]+)/rooms/(?P<room_id>[^/]+)/account_data/(?P<data_type>[^/]+)", "PUT",
            "writer:account_data", "account_data:RoomAccountDataServlet", CLIENT_V3_PREFIX),
    _client("room_tags", "/user/(?P<user_id>[^/]+)/rooms/(?P<room_id>[^/]+)/tags", "GET", "any",
            "account_data:TagsServlet", CLIENT_V3_PREFIX),
    _client("room_tag", "/user/(?P<user_id>[^/]+)/rooms/(?P<room_id>[^/]+)/tags/(?P<tag>[^/]+)", "PUT DELETE", "writer:account_data",
            "account_data:TagServlet", CLIENT_V3_PREFIX),
    _client("profile", "/profile/(?P<user_id>[^/]+)", "GET", "any", "profile:ProfileServlet"),
    _client("profile_field", "/profile/(?P<user_id>[^/]+)/(?P<field>displayname|avatar_url)", "GET", "any",
            "profile:ProfileFieldServlet"),
    _client("profile_field_put", "/profile/(?P<user_id>[^/]+)/(?P<field>displayname|avatar_url)", "PUT", "any",
            "profile:ProfileFieldServlet"),
    _client("user_directory_search", "/user_directory/search", "POST", "any",
            "user_directory:UserDirectorySearchServlet", CLIENT_V3_PREFIX),
    _client("turn_server", "/voip/turnServer", "GET", "any", "voip:TurnServerServlet"),
    _client("threepids", "/account/3pid", "GET", "any", "threepid:ThreepidsServlet", CLIENT_V3_PREFIX),
    # --- to-device messages and end-to-end encryption -----------------------------------------
    # Writes of the to_device and device_lists streams run on their writers; key backups
    # (serialised per user in memory) stay on main.
    _client("send_to_device", "/sendToDevice/(?P<event_type>[^/]+)/(?P<txn_id>[^/]+)", "PUT", "writer:to_device",
            "to_device:SendToDeviceServlet", CLIENT_V3_PREFIX),
    _client("keys_upload", "/keys/upload", "POST", "writer:device_lists", "keys:KeyUploadServlet", CLIENT_V3_PREFIX),
    _client("keys_query", "/keys/query", "POST", "any", "keys:KeyQueryServlet", CLIENT_V3_PREFIX),
    _client("keys_claim", "/keys/claim", "POST", "any", "keys:KeyClaimServlet", CLIENT_V3_PREFIX),
    _client("keys_changes", "/keys/changes", "GET", "any", "keys:KeyChangesServlet", CLIENT_V3_PREFIX),
    _client("keys_device_signing_upload", "/keys/device_signing/upload", "POST", "writer:device_lists", "keys:SigningKeyUploadServlet",
            CLIENT_V3_PREFIX),
    _client("keys_signatures_upload", "/keys/signatures/upload", "POST", "writer:device_lists", "keys:SignaturesUploadServlet",
            CLIENT_V3_PREFIX),
    _client("room_keys_new_version", "/room_keys/version", "GET POST", "main", "room_keys:RoomKeysNewVersionServlet",
            CLIENT_V3_PREFIX),
    _client("room_keys_version", "/room_keys/version/(?P<version>[^/]+)", "GET PUT DELETE", "main",
            "room_keys:RoomKeysVersionServlet", CLIENT_V3_PREFIX),
    _client("room_keys", "/room_keys/keys(?:/(?P<room_id>[^/]+)(?:/(?P<session_id>[^/]+))?)?", "GET PUT DELETE", "main",
            "room_keys:RoomKeysServlet", CLIENT_V3_PREFIX),
    # --- push rules and notifications ---------------------------------------------------------
    # Reads come from the database; writes run on the push_rules writer.
    _client("push_rules", "/pushrules/?", "GET", "any", "push_rules:PushRulesServlet"),
    _client("push_rules_global", "/pushrules/global/", "GET", "any", "push_rules:GlobalPushRulesServlet"),
    _client("push_rule", "/pushrules/global/(?P<kind>[^/]+)/(?P<rule_id>[^/]+)", "GET", "any", "push_rules:PushRuleServlet"),
    _client("push_rule_write", "/pushrules/global/(?P<kind>[^/]+)/(?P<rule_id>[^/]+)", "PUT DELETE", "writer:push_rules",
            "push_rules:PushRuleServlet"),
    _client("push_rule_attribute", "/pushrules/global/(?P<kind>[^/]+)/(?P<rule_id>[^/]+)/(?P<attribute>enabled|actions)", "GET",
            "any", "push_rules:PushRuleAttributeServlet"),
    _client("push_rule_attribute_write", "/pushrules/global/(?P<kind>[^/]+)/(?P<rule_id>[^/]+)/(?P<attribute>enabled|actions)",
            "PUT", "writer:push_rules", "push_rules:PushRuleAttributeServlet"),
    _client("notifications", "/notifications", "GET", "any", "notifications:NotificationsServlet", CLIENT_V3_PREFIX),
    # --- typing, receipts, read markers, presence ----------------------------------------------
    # Each runs on its stream's writer; a read marker's account data is written on the
    # account_data writer over HTTP replication.
    _client("typing", "/rooms/(?P<room_id>[^/]+)/typing/(?P<user_id>[^/]+)", "PUT", "writer:typing", "typing:TypingServlet"),
    _client("receipt", "/rooms/(?P<room_id>[^/]+)/receipt/(?P<receipt_type>[^/]+)/(?P<event_id>[^/]+)", "POST", "writer:receipts",
            "receipts:ReceiptServlet", CLIENT_V3_PREFIX),
    _client("read_markers", "/rooms/(?P<room_id>[^/]+)/read_markers", "POST", "writer:receipts", "receipts:ReadMarkersServlet",
            CLIENT_V3_PREFIX),
    _client("presence_status", "/presence/(?P<user_id>[^/]+)/status", "GET PUT", "writer:presence",
            "presence:PresenceStatusServlet"),
    # --- HTTP replication (the `replication` listener resource; never public) -------------
    Endpoint("replication_persist_event", "^/_synapse/replication/persist_event/(?P<txn_id>[^/]+)$", ("POST",),
             "replication", "any", "homeserver.rest.replication:PersistEventServlet"),
    Endpoint("replication_typing_updates", "^/_synapse/replication/typing_updates/(?P<txn_id>[^/]+)$", ("POST",),
             "replication", "writer:typing", "homeserver.rest.replication:TypingUpdatesServlet"),
    Endpoint("replication_register_device", "^/_synapse/replication/register_device/(?P<txn_id>[^/]+)$", ("POST",),
             "replication", "writer:device_lists", "homeserver.rest.replication:RegisterDeviceServlet"),
    Endpoint("replication_presence_user_sync", "^/_synapse/replication/presence_user_sync/(?P<txn_id>[^/]+)$", ("POST",),
             "replication", "writer:presence", "homeserver.rest.replication:PresenceUserSyncServlet"),
    Endpoint("replication_account_data", "^/_synapse/replication/account_data/(?P<txn_id>[^/]+)$", ("POST",),
             "replication", "writer:account_data", "homeserver.rest.replication:AccountDataServlet"),
    # --- admin API -----------------------------------------------------------------------
    Endpoint("admin_register", "^/_synapse/admin/v1/register$", ("GET", "POST"), "client", "main", "homeserver.rest.admin.register:SharedSecretRegisterServlet"),
    # --- operations ----------------------------------------------------------------------
    Endpoint("health", "^/health$", ("GET",), "health", "any", "homeserver.rest.health:HealthServlet"),
    Endpoint("metrics", "^/_synapse/metrics$", ("GET",), "metrics", "any", "homeserver.rest.health:MetricsServlet"),
]

# Resources that also serve /health, as in Synapse (every HTTP listener answers it).
HEALTH_ON_EVERY_LISTENER = True


def can_run_on(endpoint: Endpoint, is_main: bool, instance_name: str, stream_writers: dict[str, list[str]]) -> bool:
    """Whether a process may serve `endpoint` itself."""
    if endpoint.placement.startswith("writer:"):
        return instance_name in stream_writers.get(endpoint.placement.split(":", 1)[1], [])
    if endpoint.placement == "main":
        return is_main
    # `any` and `room-sticky`: keeping a room on one instance is the reverse proxy's job.
    return True


def endpoints_for(resources: set[str], is_main: bool, instance_name: str, stream_writers: dict[str, list[str]]) -> Iterator[Endpoint]:
    for endpoint in ROUTES:
        in_listener = endpoint.resource in resources or (endpoint.resource == "health" and HEALTH_ON_EVERY_LISTENER)
        if in_listener and can_run_on(endpoint, is_main, instance_name, stream_writers):
            yield endpoint


def endpoint_table_markdown() -> str:
    """The route table as a Markdown table (docs/endpoints.md is generated from this)."""
    lines = [
        "# Endpoints",
        "",
        "Generated from `homeserver/routes.py` by `python -m homeserver.routes > docs/endpoints.md`;",
        "a test fails when this file is out of date.",
        "",
        "Placement: `any` = main and generic workers; `main` = main process only; `room-sticky` = any",
        "process, but a reverse proxy should send all requests of one room to the same one.",
        "",
        "| name | methods | resource | placement | path regex |",
        "| --- | --- | --- | --- | --- |",
    ]
    for e in ROUTES:
        pattern = e.pattern.replace("|", "\\|")
        lines.append(f"| {e.name} | {' '.join(e.methods)} | {e.resource} | {e.placement} | `{pattern}` |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(endpoint_table_markdown(), end="")
