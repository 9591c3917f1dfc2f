#!/usr/bin/env bash
# The test command: lint, type-check and test on real PostgreSQL, Redis and a moto server.
# Usage: ./scripts/test.sh [pytest arguments]
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/bootstrap.sh
source scripts/services.sh

echo "== ruff" >&2
ruff check .
ruff format --check --quiet . || { echo "error: run 'ruff format .'" >&2; exit 1; }
echo "== mypy (strict: harvester, workers, schedules)" >&2
mypy
ensure_postgres
ensure_redis
ensure_tool chromium chromium
ensure_tool promtool prometheus
ensure_tool prometheus-alertmanager prometheus-alertmanager
echo "== pytest" >&2
pytest "$@"
