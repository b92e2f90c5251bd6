# Shared setup steps for scripts/start.sh and scripts/test.sh: each installs what is missing.
# Sourced, not run.

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
    echo "need root to run: $*" >&2; return 1; fi
}

apt_install() {
  echo "Installing with apt: $*"
  as_root apt-get update -qq
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq "$@" >/dev/null
}

# A Python >= 3.11 with venv support, and .venv with the project installed (extras in $1).
ensure_venv() {
  local extras="${1:-}"
  local py="${PYTHON:-python3}"
  if ! command -v "$py" >/dev/null; then apt_install python3 python3-venv python3-pip; fi
  if ! "$py" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
    echo "Python 3.11 or newer is needed; $py is $("$py" --version)" >&2; exit 1
  fi
  if [ ! -x .venv/bin/python ]; then
    if ! "$py" -m venv .venv 2>/dev/null; then
      rm -rf .venv
      apt_install "python3-venv" || apt_install "python$("$py" -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')-venv"
      "$py" -m venv .venv
    fi
  fi
  local stamp=".venv/.installed${extras:+-$extras}"
  if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
    .venv/bin/python -m pip install -q --upgrade pip
    .venv/bin/python -m pip install -q -e ".${extras:+[$extras]}"
    touch "$stamp"
  fi
}

pg_host="${HS_TEST_PG_HOST:-127.0.0.1}"
pg_port="${HS_TEST_PG_PORT:-5432}"
pg_user="${HS_TEST_PG_USER:-postgres}"

pg_ready() {
  .venv/bin/python - "$pg_host" "$pg_port" "$pg_user" <<'PY' 2>/dev/null
import sys, psycopg2
psycopg2.connect(host=sys.argv[1], port=int(sys.argv[2]), user=sys.argv[3], dbname="postgres", connect_timeout=3).close()
PY
}

# PostgreSQL reachable on $pg_host:$pg_port as $pg_user without a password.
ensure_postgres() {
  pg_ready && return 0
  if ! ls /etc/postgresql/*/main >/dev/null 2>&1; then
    apt_install postgresql
  fi
  local version; version=$(ls /etc/postgresql | sort -V | tail -n 1)
  local hba="/etc/postgresql/$version/main/pg_hba.conf"
  if ! grep -q "homeserver-dev" "$hba"; then
    # A development machine: let local TCP clients in as any user without a password.
    as_root sed -i '1i host all all 127.0.0.1/32 trust # homeserver-dev\nhost all all ::1/128 trust # homeserver-dev' "$hba"
    as_root pg_ctlcluster --skip-systemctl-redirect "$version" main reload 2>/dev/null || true
  fi
  as_root pg_ctlcluster --skip-systemctl-redirect "$version" main start 2>/dev/null || true
  for _ in $(seq 1 30); do pg_ready && return 0; sleep 1; done
  echo "PostgreSQL is not reachable on $pg_host:$pg_port as $pg_user" >&2; exit 1
}

redis_host="${HS_TEST_REDIS_HOST:-127.0.0.1}"
redis_port="${HS_TEST_REDIS_PORT:-6379}"

redis_ready() {
  .venv/bin/python - "$redis_host" "$redis_port" <<'PY' 2>/dev/null
import socket, sys
s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=3)
s.sendall(b"PING\r\n"); assert s.recv(16).startswith(b"+PONG")
PY
}

ensure_redis() {
  redis_ready && return 0
  command -v redis-server >/dev/null || apt_install redis-server
  as_root mkdir -p /var/lib/redis /var/log/redis
  as_root redis-server --daemonize yes --bind 127.0.0.1 -::1 --port "$redis_port" --save "" \
    --appendonly no --dir /var/lib/redis --logfile /var/log/redis/homeserver-dev.log
  for _ in $(seq 1 30); do redis_ready && return 0; sleep 1; done
  echo "Redis is not reachable on $redis_host:$redis_port" >&2; exit 1
}

# nginx and haproxy (for the routing tests and the local deployment); installed, not started.
ensure_proxies() {
  command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || apt_install nginx
  command -v haproxy >/dev/null || [ -x /usr/sbin/haproxy ] || apt_install haproxy
}
