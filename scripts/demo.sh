#!/usr/bin/env bash
# The main job on the embedded default (SQLite in a local data directory, no services):
# apply the example inventory and list its sources.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/bootstrap.sh
export HARVESTER_DATA_DIR="${HARVESTER_DATA_DIR:-$PWD/.demo}"
export HARVESTER_EXAMPLE_EXTERNAL_ID="${HARVESTER_EXAMPLE_EXTERNAL_ID:-demo-external-id}"
echo "== data directory: $HARVESTER_DATA_DIR" >&2
harvester db upgrade
harvester inventory apply -f examples/inventory.yaml
harvester sources list
