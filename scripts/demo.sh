#!/usr/bin/env bash
# The main job on the embedded default (SQLite, in-process pipeline, no services): a local
# moto S3 is seeded with two weeks of a generated organization's CloudTrail and EKS audit
# logs with attacks injected, then harvested and scored; the sources and findings are printed.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/bootstrap.sh
export HARVESTER_DATA_DIR="${HARVESTER_DATA_DIR:-$PWD/.demo}"
echo "== data directory: $HARVESTER_DATA_DIR" >&2
harvester demo "$@"
