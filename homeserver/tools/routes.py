"""Reverse-proxy routing generated from the route table (`homeserver/routes.py`) and a
deployment: which process(es) serve each request, written out as nginx or haproxy config.

- `any` endpoints go to the pool of workers with a client listener that write no stream (so
  event persisters and stream writers keep to their own work; when every worker writes a
  stream, all of them), or to the main process when there is none. The pool is balanced by access token, `/sync` included, so each client
  keeps talking to one worker and reads its own writes there at once; `room-sticky`
  endpoints (`/messages`) are balanced by room, so each room's pagination stays on one worker.
- `writer:<stream>` endpoints go to that stream's writer, `main` endpoints to the main process.
- `/_synapse/replication` and `/_synapse/metrics` are never exposed; anything else goes to the
  main process. Errors nginx raises itself come back as Matrix errors (JSON `errcode`).

A request the proxy sends to the wrong place still works (the misroute guard forwards it);
the generated routing only saves that hop.
"""

import re
from collections.abc import Iterable
from dataclasses import dataclass

from homeserver.routes import ROUTES, Endpoint
from homeserver.tools.deployment import Deployment, Process

ROOM_PATH = re.compile(r"^/_matrix/client/[^/]+/rooms/([^/]+)/")
# Long-polling /sync and /events wait up to this long; the proxy must wait longer.
PROXY_READ_TIMEOUT_SECONDS = 330


@dataclass(frozen=True)
class Pool:
    """A named group of processes a request may go to, and how to choose among them."""

    name: str
    members: tuple[Process, ...]
    balance: str = "roundrobin"  # roundrobin | room | access_token

    @property
    def member_names(self) -> list[str]:
        return [p.name for p in self.members]


def client_processes(deployment: Deployment) -> list[Process]:
    return [p for p in deployment.processes if p.address_for("client") is not None]


def proxy_address(process: Process) -> tuple[str, int] | None:
    """Where the proxy reaches `process`: its client listener (else its replication
    listener, which also serves the client API)."""
    return process.address_for("client") or process.address_for("replication")


def pool_for(endpoint: Endpoint, deployment: Deployment) -> Pool:
    """The processes that should serve `endpoint`, as the proxy should see them."""
    if endpoint.placement.startswith("writer:"):
        stream = endpoint.placement.split(":", 1)[1]
        writers = [deployment.get(w) for w in deployment.shared.worker.writers_of(stream)]
        members = tuple(p for p in writers if p is not None and proxy_address(p) is not None)
        return Pool(f"writer_{stream}", members or (deployment.main,))
    if endpoint.placement == "main":
        return Pool("main", (deployment.main,))
    workers = [p for p in client_processes(deployment) if not p.is_main]
    stream_writers = {name for names in deployment.shared.worker.stream_writers.values() for name in names}
    generic = tuple(p for p in workers if p.name not in stream_writers)
    members = generic or tuple(workers) or (deployment.main,)
    if endpoint.placement == "room-sticky":
        return Pool("room_sticky", members, "room")
    return Pool("any", members, "access_token")


def which(path: str, method: str, deployment: Deployment) -> tuple[Endpoint | None, Pool]:
    """The endpoint a request matches (None: unknown, goes to main) and its pool."""
    path = path.split("?", 1)[0]
    for endpoint in ROUTES:
        if endpoint.resource != "client" or not re.match(endpoint.pattern, path):
            continue
        if method.upper() in endpoint.methods or (method.upper() == "HEAD" and "GET" in endpoint.methods):
            return endpoint, pool_for(endpoint, deployment)
    return None, Pool("main", (deployment.main,))


def route_groups(deployment: Deployment) -> list[tuple[str, list[tuple[tuple[str, ...], Pool]]]]:
    """Client endpoints grouped by path regex, in route-table order: each regex with the
    (methods, pool) pairs of its endpoints."""
    groups: dict[str, list[tuple[tuple[str, ...], Pool]]] = {}
    for endpoint in ROUTES:
        if endpoint.resource == "client":
            groups.setdefault(endpoint.pattern, []).append((endpoint.methods, pool_for(endpoint, deployment)))
    return list(groups.items())


def all_pools(deployment: Deployment) -> list[Pool]:
    pools: dict[str, Pool] = {"main": Pool("main", (deployment.main,))}
    for _, entries in route_groups(deployment):
        for _, pool in entries:
            pools.setdefault(pool.name, pool)
    return list(pools.values())


def _servers(pool: Pool) -> Iterable[tuple[str, str, int]]:
    for process in pool.members:
        address = proxy_address(process)
        if address is not None:
            yield process.name, address[0], address[1]


# --- nginx ---------------------------------------------------------------------------------------


def nginx_config(deployment: Deployment, listen: str, server_name: str = "_") -> str:
    """An nginx config fragment for the `http` context (e.g. /etc/nginx/conf.d/matrix.conf)."""
    lines = [
        "# Generated by `homeserver routes --format nginx`: the routing of this deployment.",
        "# Regenerate after changing the workers or stream_writers; do not edit by hand.",
        "",
        'map $request_uri $hs_room_key {',
        '    "~^/_matrix/client/[^/]+/rooms/(?<hs_room>[^/?]+)" $hs_room;',
        "    default $request_uri;",
        "}",
        "map $http_authorization $hs_token_key {",
        '    "" $arg_access_token;',
        "    default $http_authorization;",
        "}",
        "# Clients may send their access token in the query string: log requests without it",
        "# (`access_log /var/log/nginx/matrix.log hs_redacted;` in the http context).",
        "log_format hs_redacted '$remote_addr - [$time_local] \"$request_method $uri $server_protocol\" '",
        "                       '$status $body_bytes_sent $request_time \"$http_user_agent\"';",
        "",
    ]
    for pool in all_pools(deployment):
        lines.append(f"upstream hs_{pool.name} {{")
        if pool.balance == "room":
            lines.append("    hash $hs_room_key consistent;")
        elif pool.balance == "access_token":
            lines.append("    hash $hs_token_key consistent;")
        for name, host, port in _servers(pool):
            lines.append(f"    server {host}:{port};  # {name}")
        lines += ["    keepalive 32;", "}", ""]
    max_body = deployment.shared.server.max_request_body_size
    lines += [
        "server {",
        f"    listen {listen};",
        f"    server_name {server_name};",
        f"    client_max_body_size {max(1, max_body // (1024 * 1024))}m;",
        "    proxy_http_version 1.1;",
        '    proxy_set_header Connection "";',
        "    proxy_set_header Host $host;",
        "    proxy_set_header X-Forwarded-For $remote_addr;",
        "    proxy_set_header X-Forwarded-Proto $scheme;",
        f"    proxy_read_timeout {PROXY_READ_TIMEOUT_SECONDS}s;",
        "    proxy_buffering off;",
        # Bodies up to the server's limit stay in memory (no temp files to set up).
        f"    client_body_buffer_size {max(1, max_body // (1024 * 1024))}m;",
        "",
        "    # Replication between processes and each process's metrics are never public.",
        "    location ^~ /_synapse/replication/ { return 404; }",
        "    location = /_synapse/metrics { return 404; }",
        "",
        "    # Errors nginx itself raises (a body over the limit, a malformed request, a process",
        "    # that does not answer) as Matrix errors, as clients expect.",
        "    error_page 400 /_hs_error/400;",
        "    error_page 413 /_hs_error/413;",
        "    error_page 500 /_hs_error/500;",
        "    error_page 502 503 504 /_hs_error/503;",
        '    location = /_hs_error/400 { internal; default_type application/json; return 400 \'{"errcode":"M_UNKNOWN","error":"Bad request"}\'; }',
        '    location = /_hs_error/413 { internal; default_type application/json;'
        ' return 413 \'{"errcode":"M_TOO_LARGE","error":"Request body too large"}\'; }',
        '    location = /_hs_error/500 { internal; default_type application/json; return 500 \'{"errcode":"M_UNKNOWN","error":"Proxy error"}\'; }',
        '    location = /_hs_error/503 { internal; default_type application/json;'
        ' return 503 \'{"errcode":"M_UNKNOWN","error":"The homeserver process for this request is unavailable; try again"}\'; }',
        "",
    ]
    for pattern, entries in route_groups(deployment):
        lines += _nginx_location(pattern, entries)
    lines += ["    location / { proxy_pass http://hs_main; }", "}", ""]
    return "\n".join(lines)


def _nginx_location(pattern: str, entries: list[tuple[tuple[str, ...], Pool]]) -> list[str]:
    regex = pattern.replace('"', '\\"')
    pools = {pool.name for _, pool in entries}
    if len(pools) == 1:
        return [f'    location ~ "{regex}" {{ proxy_pass http://hs_{entries[0][1].name}; }}']
    # One path, different processes per method (e.g. reads anywhere, writes on a writer).
    default = entries[0][1].name
    lines = [f'    location ~ "{regex}" {{', f"        set $hs_target hs_{default};"]
    for methods, pool in entries[1:]:
        if pool.name != default:
            lines.append(f'        if ($request_method ~ "^({"|".join(methods)})$") {{ set $hs_target hs_{pool.name}; }}')
    lines += ["        proxy_pass http://$hs_target;", "    }"]
    return lines


# --- haproxy -------------------------------------------------------------------------------------


def haproxy_config(deployment: Deployment, listen: str) -> str:
    """A complete haproxy config (global, defaults, one frontend, a backend per pool)."""
    bind = listen if ":" in listen else f"*:{listen}"
    lines = [
        "# Generated by `homeserver routes --format haproxy`: the routing of this deployment.",
        "# Regenerate after changing the workers or stream_writers; do not edit by hand.",
        "global",
        "    maxconn 4096",
        "",
        "defaults",
        "    mode http",
        "    timeout connect 5s",
        "    timeout client 330s",
        "    timeout server 330s",
        "    option forwardfor",
        "",
        "frontend matrix",
        f"    bind {bind}",
        "    acl hs_replication path_beg /_synapse/replication/",
        "    acl hs_metrics path /_synapse/metrics",
        "    http-request deny deny_status 404 if hs_replication or hs_metrics",
    ]
    for index, (pattern, entries) in enumerate(route_groups(deployment)):
        acl = f"hs_route{index}"
        lines.append(f"    acl {acl} path_reg {_haproxy_regex(pattern)}")
        for methods, pool in entries:
            lines.append(f"    use_backend hs_{pool.name} if {acl} METH_{methods[0]}" if len(methods) == 1
                         else f"    use_backend hs_{pool.name} if {acl} {{ method {' '.join(methods)} }}")
    lines += ["    default_backend hs_main", ""]
    for pool in all_pools(deployment):
        lines.append(f"backend hs_{pool.name}")
        if pool.balance == "room":
            lines += ["    balance uri depth 5", "    hash-type consistent"]
        elif pool.balance == "access_token":
            lines += ["    balance hdr(Authorization)", "    hash-type consistent"]
        else:
            lines.append("    balance roundrobin")
        for name, host, port in _servers(pool):
            lines.append(f"    server {name} {host}:{port}")
        lines.append("")
    return "\n".join(lines)


def _haproxy_regex(pattern: str) -> str:
    """haproxy reads a regex as one word: escape spaces (none today) and drop group names."""
    return re.sub(r"\(\?P<[^>]+>", "(", pattern).replace(" ", "\\ ")
