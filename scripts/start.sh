#!/usr/bin/env bash
# Set up and start a local homeserver (a single process) in the foreground.
#
#   bash scripts/start.sh [--postgres] [--server-name NAME] [--port PORT]
#
# First run: creates .venv, installs the project, writes data/homeserver.yaml (open registration,
# for local testing) and a signing key. Later runs reuse the config. Ctrl-C stops the server.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

server_name=localhost
port=8008
postgres=0
while [ $# -gt 0 ]; do
  case "$1" in
    --postgres) postgres=1 ;;
    --server-name) server_name="$2"; shift ;;
    --port) port="$2"; shift ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
  shift
done

ensure_venv
config=data/homeserver.yaml
if [ ! -f "$config" ]; then
  mkdir -p data
  args=(--generate-config --server-name "$server_name" --port "$port" --open-registration -c "$config")
  if [ "$postgres" = 1 ]; then
    ensure_postgres
    .venv/bin/python - "$pg_host" "$pg_port" "$pg_user" <<'PY'
import sys, psycopg2
conn = psycopg2.connect(host=sys.argv[1], port=int(sys.argv[2]), user=sys.argv[3], dbname="postgres")
conn.autocommit = True
with conn.cursor() as cur:
    cur.execute("SELECT 1 FROM pg_database WHERE datname = 'homeserver'")
    if cur.fetchone() is None:
        cur.execute("CREATE DATABASE homeserver ENCODING 'UTF8' LC_COLLATE 'C' LC_CTYPE 'C' TEMPLATE template0")
PY
    args+=(--postgres "host=$pg_host port=$pg_port user=$pg_user dbname=homeserver")
  fi
  .venv/bin/python -m homeserver.app.homeserver "${args[@]}"
elif [ "$postgres" = 1 ]; then
  ensure_postgres
fi
exec .venv/bin/python -m homeserver.app.homeserver -c "$config"
