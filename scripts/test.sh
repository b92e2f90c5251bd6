#!/usr/bin/env bash
# Run the checks and the test suite against real PostgreSQL and Redis (started or installed
# when missing). Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

ensure_venv test
ensure_postgres
ensure_redis
ensure_proxies
.venv/bin/ruff check homeserver tests
.venv/bin/mypy
.venv/bin/python -m pytest -q "$@"
