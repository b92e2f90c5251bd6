"""THE route table (DESIGN §4): every HTTP endpoint the server serves, listed once.

Each entry gives the path regex, the methods, the listener resource it belongs to, where it may
run and the servlet that serves it. Servlet registration in every process reads this table; so
will the `homeserver routes` proxy-config generator and the misroute guard.

Placement values:
  any              every process whose listener has the resource (main and generic workers)
  main             the main process only
  writer:<stream>  the writer of that stream (typing, to_device, account_data, receipts, presence)
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
    _client("capabilities", "/capabilities", "GET", "main", "versions:CapabilitiesServlet", CLIENT_V3_PREFIX),
    # Synapse serves /register and /login on workers; here they stay on main until device
    # registration can be forwarded to the device_lists writer over HTTP replication.
    _client("register", "/register", "POST", "main", "register:RegisterServlet", CLIENT_V3_PREFIX),
    _client("register_available", "/register/available", "GET", "main", "register:RegisterAvailableServlet", CLIENT_V3_PREFIX),
    _client("login", "/login", "GET POST", "main", "login:LoginServlet"),
    _client("logout", "/logout", "POST", "main", "login:LogoutServlet", CLIENT_V3_PREFIX),
    _client("logout_all", "/logout/all", "POST", "main", "login:LogoutAllServlet", CLIENT_V3_PREFIX),
    _client("whoami", "/account/whoami", "GET", "any", "account:WhoamiServlet", CLIENT_V3_PREFIX),
    _client("password", "/account/password", "POST", "main", "account:PasswordServlet", CLIENT_V3_PREFIX),
    _client("deactivate", "/account/deactivate", "POST", "main", "account:DeactivateServlet", CLIENT_V3_PREFIX),
    _client("devices", "/devices", "GET", "any", "devices:DevicesServlet", CLIENT_V3_PREFIX),
    _client("device", "/devices/(?P<device_id>[^/]+)", "GET PUT DELETE", "main", "devices:DeviceServlet", CLIENT_V3_PREFIX),
    _client("delete_devices", "/delete_devices", "POST", "main", "devices:DeleteDevicesServlet", CLIENT_V3_PREFIX),
    # --- sync ------------------------------------------------------------------------------
    Endpoint("sync", "^/_matrix/client/(?:r0|v3)/sync$", ("GET",), "client", "main", "homeserver.rest.client.sync:SyncServlet",
             balance="access_token"),
    _client("events", "/events", "GET", "main", "initial_sync:EventsServlet"),
    _client("initial_sync", "/initialSync", "GET", "main", "initial_sync:InitialSyncServlet"),
    _client("room_initial_sync", "/rooms/(?P<room_id>[^/]+)/initialSync", "GET", "main", "initial_sync:RoomInitialSyncServlet"),
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
    # Reads come from the database and may run anywhere; writes stay on main until they can be
    # forwarded to the account_data writer (and, for profiles, to the rooms' event persisters).
    _client("account_data", "/user/(?P<user_id>[^/]+)/account_data/(?P<data_type>[^/]+)", "GET", "any",
            "account_data:AccountDataServlet", CLIENT_V3_PREFIX),
    _client("account_data_put", "/user/(?P<user_id>[^/]+)/account_data/(?P<data_type>[^/]+)", "PUT", "main",
            "account_data:AccountDataServlet", CLIENT_V3_PREFIX),
    _client("room_account_data", "/user/(?P<user_id>[^/]+)/rooms/(?P<room_id>[^/]+)/account_data/(?P<data_type>[^/]+)", "GET",
            "any", "account_data:RoomAccountDataServlet", CLIENT_V3_PREFIX),
    _client("room_account_data_put", "/user/(?P<user_id>[^/]+)/rooms/(?P<room_id>[^/]+)/account_data/(?P<data_type>[^/]+)", "PUT",
            "main", "account_data:RoomAccountDataServlet", CLIENT_V3_PREFIX),
    _client("room_tags", "/user/(?P<user_id>[^/]+)/rooms/(?P<room_id>[^/]+)/tags", "GET", "any",
            "account_data:TagsServlet", CLIENT_V3_PREFIX),
    _client("room_tag", "/user/(?P<user_id>[^/]+)/rooms/(?P<room_id>[^/]+)/tags/(?P<tag>[^/]+)", "PUT DELETE", "main",
            "account_data:TagServlet", CLIENT_V3_PREFIX),
    _client("profile", "/profile/(?P<user_id>[^/]+)", "GET", "any", "profile:ProfileServlet"),
    _client("profile_field", "/profile/(?P<user_id>[^/]+)/(?P<field>displayname|avatar_url)", "GET", "any",
            "profile:ProfileFieldServlet"),
    _client("profile_field_put", "/profile/(?P<user_id>[^/]+)/(?P<field>displayname|avatar_url)", "PUT", "main",
            "profile:ProfileFieldServlet"),
    _client("user_directory_search", "/user_directory/search", "POST", "any",
            "user_directory:UserDirectorySearchServlet", CLIENT_V3_PREFIX),
    _client("turn_server", "/voip/turnServer", "GET", "any", "voip:TurnServerServlet"),
    _client("threepids", "/account/3pid", "GET", "any", "threepid:ThreepidsServlet", CLIENT_V3_PREFIX),
    # --- to-device messages and end-to-end encryption -----------------------------------------
    # Writes of the to_device and device_lists streams, /keys/changes (which needs the current
    # stream positions) and key backups (serialised per user in memory) stay on main.
    _client("send_to_device", "/sendToDevice/(?P<event_type>[^/]+)/(?P<txn_id>[^/]+)", "PUT", "main",
            "to_device:SendToDeviceServlet", CLIENT_V3_PREFIX),
    _client("keys_upload", "/keys/upload", "POST", "main", "keys:KeyUploadServlet", CLIENT_V3_PREFIX),
    _client("keys_query", "/keys/query", "POST", "any", "keys:KeyQueryServlet", CLIENT_V3_PREFIX),
    _client("keys_claim", "/keys/claim", "POST", "any", "keys:KeyClaimServlet", CLIENT_V3_PREFIX),
    _client("keys_changes", "/keys/changes", "GET", "main", "keys:KeyChangesServlet", CLIENT_V3_PREFIX),
    _client("keys_device_signing_upload", "/keys/device_signing/upload", "POST", "main", "keys:SigningKeyUploadServlet",
            CLIENT_V3_PREFIX),
    _client("keys_signatures_upload", "/keys/signatures/upload", "POST", "main", "keys:SignaturesUploadServlet",
            CLIENT_V3_PREFIX),
    _client("room_keys_new_version", "/room_keys/version", "GET POST", "main", "room_keys:RoomKeysNewVersionServlet",
            CLIENT_V3_PREFIX),
    _client("room_keys_version", "/room_keys/version/(?P<version>[^/]+)", "GET PUT DELETE", "main",
            "room_keys:RoomKeysVersionServlet", CLIENT_V3_PREFIX),
    _client("room_keys", "/room_keys/keys(?:/(?P<room_id>[^/]+)(?:/(?P<session_id>[^/]+))?)?", "GET PUT DELETE", "main",
            "room_keys:RoomKeysServlet", CLIENT_V3_PREFIX),
    # --- push rules and notifications ---------------------------------------------------------
    # Reads come from the database; writes of the push_rules stream stay on main.
    _client("push_rules", "/pushrules/?", "GET", "any", "push_rules:PushRulesServlet"),
    _client("push_rules_global", "/pushrules/global/", "GET", "any", "push_rules:GlobalPushRulesServlet"),
    _client("push_rule", "/pushrules/global/(?P<kind>[^/]+)/(?P<rule_id>[^/]+)", "GET", "any", "push_rules:PushRuleServlet"),
    _client("push_rule_write", "/pushrules/global/(?P<kind>[^/]+)/(?P<rule_id>[^/]+)", "PUT DELETE", "main",
            "push_rules:PushRuleServlet"),
    _client("push_rule_attribute", "/pushrules/global/(?P<kind>[^/]+)/(?P<rule_id>[^/]+)/(?P<attribute>enabled|actions)", "GET",
            "any", "push_rules:PushRuleAttributeServlet"),
    _client("push_rule_attribute_write", "/pushrules/global/(?P<kind>[^/]+)/(?P<rule_id>[^/]+)/(?P<attribute>enabled|actions)",
            "PUT", "main", "push_rules:PushRuleAttributeServlet"),
    _client("notifications", "/notifications", "GET", "any", "notifications:NotificationsServlet", CLIENT_V3_PREFIX),
    # --- typing, receipts, read markers, presence ----------------------------------------------
    # Typing and presence live in their writer's memory, so the writer serves them; receipts
    # and read markers (which also write account data) stay on main until HTTP replication.
    _client("typing", "/rooms/(?P<room_id>[^/]+)/typing/(?P<user_id>[^/]+)", "PUT", "writer:typing", "typing:TypingServlet"),
    _client("receipt", "/rooms/(?P<room_id>[^/]+)/receipt/(?P<receipt_type>[^/]+)/(?P<event_id>[^/]+)", "POST", "main",
            "receipts:ReceiptServlet", CLIENT_V3_PREFIX),
    _client("read_markers", "/rooms/(?P<room_id>[^/]+)/read_markers", "POST", "main", "receipts:ReadMarkersServlet",
            CLIENT_V3_PREFIX),
    _client("presence_status", "/presence/(?P<user_id>[^/]+)/status", "GET PUT", "writer:presence",
            "presence:PresenceStatusServlet"),
    # --- HTTP replication (the `replication` listener resource; never public) -------------
    Endpoint("replication_persist_event", "^/_synapse/replication/persist_event/(?P<txn_id>[^/]+)$", ("POST",),
             "replication", "any", "homeserver.rest.replication:PersistEventServlet"),
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
