#!/usr/bin/env bash
# A complete local multi-process deployment, with its own PostgreSQL cluster and Redis:
# the main process, two generic workers, an event persister, a stream writer and nginx in
# front with the generated routing.
#
#   bash scripts/deploy.sh up       # install what is missing, configure (first run), start
#   bash scripts/deploy.sh status   # what is running
#   bash scripts/deploy.sh down     # stop everything it started
#
# Everything lives in data/deployment/ (override with DEPLOY_DIR). Ports on 127.0.0.1, all
# below the kernel's ephemeral range so that no outgoing connection can hold them:
# nginx 8008 (override with DEPLOY_PORT; the URL for clients), PostgreSQL 15432, Redis 16379,
# processes 18008-18085 and replication 19093-19095. Running `up` again is harmless.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

action="${1:-up}"
dir="$(pwd)/${DEPLOY_DIR:-data/deployment}"
public_port="${DEPLOY_PORT:-8008}"
server_name="${DEPLOY_SERVER_NAME:-localhost}"
db_port=15432
redis_port_private=16379

say() { echo "==> $*"; }

pg_bin() {
  local version; version=$(ls /usr/lib/postgresql | sort -V | tail -n 1)
  echo "/usr/lib/postgresql/$version/bin/$1"
}

# Run a PostgreSQL server binary as the `postgres` user when we are root (it refuses root).
as_pg() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

install_packages() {
  ensure_venv
  ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || apt_install postgresql
  command -v redis-server >/dev/null || apt_install redis-server
  ensure_proxies
}

start_postgres() {
  local data="$dir/postgres"
  if [ ! -f "$data/PG_VERSION" ]; then
    say "Creating a private PostgreSQL cluster in $data"
    mkdir -p "$data"
    [ "$(id -u)" = 0 ] && chown postgres: "$data" && chmod 700 "$data"
    as_pg "$(pg_bin initdb)" -D "$data" -U postgres --auth=trust --encoding=UTF8 --locale=C >/dev/null
  fi
  if as_pg "$(pg_bin pg_ctl)" -D "$data" status >/dev/null 2>&1; then
    say "PostgreSQL already running on 127.0.0.1:$db_port"
  else
    say "Starting PostgreSQL on 127.0.0.1:$db_port"
    if ! as_pg "$(pg_bin pg_ctl)" -D "$data" -l "$data/server.log" -w \
      -o "-p $db_port -k $data -c listen_addresses=127.0.0.1" start >/dev/null; then
      echo "PostgreSQL did not start; the end of $data/server.log:" >&2
      tail -n 5 "$data/server.log" >&2
      exit 1
    fi
  fi
  .venv/bin/python - "$db_port" <<'PY'
import sys, psycopg2
conn = psycopg2.connect(host="127.0.0.1", port=int(sys.argv[1]), user="postgres", dbname="postgres")
conn.autocommit = True
with conn.cursor() as cur:
    cur.execute("SELECT 1 FROM pg_database WHERE datname = 'homeserver'")
    if cur.fetchone() is None:
        cur.execute("CREATE DATABASE homeserver ENCODING 'UTF8' LC_COLLATE 'C' LC_CTYPE 'C' TEMPLATE template0")
PY
}

start_redis() {
  if [ -f "$dir/redis.pid" ] && kill -0 "$(cat "$dir/redis.pid")" 2>/dev/null; then
    say "Redis already running on 127.0.0.1:$redis_port_private"
    return
  fi
  say "Starting Redis on 127.0.0.1:$redis_port_private"
  redis-server --daemonize yes --bind 127.0.0.1 --port "$redis_port_private" --save "" --appendonly no \
    --dir "$dir" --pidfile "$dir/redis.pid" --logfile "$dir/redis.log"
  for _ in $(seq 1 50); do [ -f "$dir/redis.pid" ] && return; sleep 0.1; done
}

write_configs() {
  [ -f "$dir/homeserver.yaml" ] && return
  say "Writing the deployment's configuration to $dir"
  mkdir -p "$dir/workers" "$dir/logs"
  .venv/bin/python -m homeserver.app.homeserver --generate-config --server-name "$server_name" \
    --port 18008 --open-registration --data-directory "$dir" -c "$dir/homeserver.yaml" \
    --postgres "host=127.0.0.1 port=$db_port user=postgres dbname=homeserver" >/dev/null
  .venv/bin/python - "$dir" "$redis_port_private" "$public_port" <<'PY'
import os, secrets, sys, yaml
directory, redis_port, public_port = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
path = os.path.join(directory, "homeserver.yaml")
with open(path) as f:
    config = yaml.safe_load(f)

def log_config(name):
    """A logging config writing the process's log to logs/NAME.log."""
    log_path = os.path.join(directory, "logs", f"{name}.log.yaml")
    with open(log_path, "w") as f:
        yaml.safe_dump({
            "version": 1,
            "formatters": {"plain": {"format": "%(asctime)s - %(name)s - %(levelname)s - %(request)s - %(message)s"}},
            "handlers": {"file": {"class": "logging.handlers.WatchedFileHandler", "formatter": "plain",
                                  "filename": os.path.join(directory, "logs", f"{name}.log")}},
            "root": {"level": "INFO", "handlers": ["file"]},
            "disable_existing_loggers": False,
        }, f, sort_keys=False)
    return log_path

def listener(port, *names):
    return {"port": port, "type": "http", "bind_addresses": ["127.0.0.1"], "x_forwarded": True,
            "resources": [{"names": list(names)}]}

config.update({
    "public_baseurl": f"http://localhost:{public_port}/",
    "pid_file": os.path.join(directory, "main.pid"),
    "log_config": log_config("main"),
    "listeners": [listener(18008, "client", "metrics"), listener(19093, "replication")],
    "redis": {"enabled": True, "host": "127.0.0.1", "port": redis_port},
    "worker_replication_secret": secrets.token_urlsafe(32),
    "instance_map": {"main": {"host": "127.0.0.1", "port": 19093},
                     "persister1": {"host": "127.0.0.1", "port": 19094},
                     "writer1": {"host": "127.0.0.1", "port": 19095}},
    "stream_writers": {"events": ["persister1"], "typing": "writer1", "to_device": "writer1",
                       "account_data": "writer1", "receipts": "writer1", "presence": "writer1"},
    "run_background_tasks_on": "main",
})
# It holds the registration and replication secrets: readable by its owner only, from the start.
with os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as f:
    yaml.safe_dump(config, f, sort_keys=False)
os.chmod(path, 0o600)
workers = {
    "worker1": [listener(18081, "client", "metrics")],
    "worker2": [listener(18082, "client", "metrics")],
    "persister1": [listener(19094, "replication")],
    "writer1": [listener(18085, "client", "metrics"), listener(19095, "replication")],
}
for name, listeners in workers.items():
    with open(os.path.join(directory, "workers", f"{name}.yaml"), "w") as f:
        yaml.safe_dump({"worker_app": "synapse.app.generic_worker", "worker_name": name,
                        "worker_listeners": listeners,
                        "worker_pid_file": os.path.join(directory, f"{name}.pid"),
                        "worker_log_config": log_config(name)}, f, sort_keys=False)
PY
}

start_homeserver() {
  say "Checking the configuration"
  .venv/bin/homeserver check-config -c "$dir/homeserver.yaml" -a "$dir/workers" >/dev/null
  say "Starting the main process and the workers"
  (cd "$dir" && "$OLDPWD/.venv/bin/synctl" start -a "$dir/workers" "$dir/homeserver.yaml")
}

start_nginx() {
  mkdir -p "$dir/nginx"
  .venv/bin/homeserver routes --format nginx -c "$dir/homeserver.yaml" -a "$dir/workers" \
    --listen "127.0.0.1:$public_port" -o "$dir/nginx/matrix.conf"
  cat > "$dir/nginx/nginx.conf" <<EOF
pid $dir/nginx/nginx.pid;
error_log $dir/nginx/error.log;
events {}
http {
    client_body_temp_path $dir/nginx/body;
    proxy_temp_path $dir/nginx/proxy;
    fastcgi_temp_path $dir/nginx/fastcgi;
    uwsgi_temp_path $dir/nginx/uwsgi;
    scgi_temp_path $dir/nginx/scgi;
    include $dir/nginx/matrix.conf;
    access_log $dir/nginx/access.log hs_redacted;
}
EOF
  local nginx; nginx=$(command -v nginx || echo /usr/sbin/nginx)
  "$nginx" -t -q -c "$dir/nginx/nginx.conf"
  if [ -f "$dir/nginx/nginx.pid" ] && kill -0 "$(cat "$dir/nginx/nginx.pid")" 2>/dev/null; then
    say "Reloading nginx with the generated routing"
    "$nginx" -c "$dir/nginx/nginx.conf" -s reload
  else
    say "Starting nginx on 127.0.0.1:$public_port with the generated routing"
    "$nginx" -c "$dir/nginx/nginx.conf"
  fi
}

stop_pid_file() {  # name, pid file
  if [ -f "$2" ] && kill -0 "$(cat "$2")" 2>/dev/null; then
    say "Stopping $1"
    kill "$(cat "$2")"
    for _ in $(seq 1 100); do kill -0 "$(cat "$2" 2>/dev/null || echo 0)" 2>/dev/null || break; sleep 0.1; done
  fi
  rm -f "$2"
}

case "$action" in
  up)
    install_packages
    mkdir -p "$dir"
    chmod o+x "$dir"  # the postgres user reaches its cluster directory inside
    start_postgres
    start_redis
    write_configs
    start_homeserver
    start_nginx
    say "Ready: point clients at http://localhost:$public_port (registration is open); logs in $dir/logs"
    ;;
  status)
    .venv/bin/synctl status -a "$dir/workers" "$dir/homeserver.yaml" || true
    ;;
  down)
    stop_pid_file nginx "$dir/nginx/nginx.pid"
    if [ -f "$dir/homeserver.yaml" ]; then
      say "Stopping the workers and the main process"
      .venv/bin/synctl stop -a "$dir/workers" "$dir/homeserver.yaml" || true
    fi
    stop_pid_file Redis "$dir/redis.pid"
    if [ -f "$dir/postgres/PG_VERSION" ] && as_pg "$(pg_bin pg_ctl)" -D "$dir/postgres" status >/dev/null 2>&1; then
      say "Stopping PostgreSQL"
      as_pg "$(pg_bin pg_ctl)" -D "$dir/postgres" -m fast stop >/dev/null
    fi
    say "Stopped"
    ;;
  *)
    echo "usage: bash scripts/deploy.sh [up|status|down]" >&2
    exit 2
    ;;
esac
