#!/usr/bin/env bash
# The side-by-side benchmark (docs/performance.md): installs what it needs (the project with
# its test extras in .venv, PostgreSQL, Redis, nginx; Synapse into bench/.synapse-venv on its
# first run), then runs bench/run.py with the arguments given (default: both servers, both
# shapes, default sizes) and prints the table and the targets.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

ensure_venv test
ensure_postgres
ensure_redis
ensure_proxies
# Synapse's psycopg2 is built from source against the system libpq.
command -v pg_config >/dev/null || apt_install libpq-dev
command -v cc >/dev/null || apt_install gcc
.venv/bin/python -c 'import os, sys, sysconfig; sys.exit(not os.path.exists(os.path.join(sysconfig.get_paths()["include"], "Python.h")))' \
  || apt_install python3-dev
.venv/bin/python bench/run.py "$@"
