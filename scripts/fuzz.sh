#!/usr/bin/env bash
# The long fuzzing run (docs/fuzzing.md): every Client-Server operation the server implements,
# driven with requests generated from the Matrix spec's OpenAPI files, many examples each and
# new inputs every run. HS_FUZZ_EXAMPLES (default 500) sets the examples per operation; extra
# arguments go to pytest (`bash scripts/fuzz.sh -k room_keys`).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

ensure_venv test
ensure_postgres
ensure_redis
ensure_proxies  # the regression tests also run in the `workers` shape (nginx)
HS_FUZZ_EXAMPLES="${HS_FUZZ_EXAMPLES:-500}" HS_FUZZ_RANDOM="${HS_FUZZ_RANDOM:-1}" \
  .venv/bin/python -m pytest -q -p no:cacheprovider tests/fuzz "$@"
