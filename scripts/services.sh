# Sourced by scripts/test.sh: make sure a PostgreSQL and a Redis answer, and export their URLs.
# Uses the servers on 127.0.0.1 when they answer (or the URLs already in the environment);
# otherwise starts private ones from the installed binaries in a temporary directory and stops
# them on exit; otherwise says exactly what to install.
set -euo pipefail

SERVICES_DIR=""
PRIVATE_PIDS=()

stop_private_services() {
  # Keeps the script's exit status: the trap must not turn a pass into a failure.
  local status=$?
  if [ -n "${PG_PRIVATE_DATA:-}" ]; then
    run_as_pg "$PG_CTL" -D "$PG_PRIVATE_DATA" -m immediate stop >/dev/null 2>&1 || true
  fi
  for pid in "${PRIVATE_PIDS[@]:-}"; do
    if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; fi
  done
  if [ -n "$SERVICES_DIR" ]; then rm -rf "$SERVICES_DIR"; fi
  exit "$status"
}
trap stop_private_services EXIT

free_port() { python -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

services_dir() {
  if [ -z "$SERVICES_DIR" ]; then SERVICES_DIR="$(mktemp -d /tmp/harvester-services.XXXXXX)"; chmod 755 "$SERVICES_DIR"; fi
}

pg_answers() {
  python - "$1" <<'PY' >/dev/null 2>&1
import sys, psycopg
from sqlalchemy.engine import make_url
u = make_url(sys.argv[1])
psycopg.connect(host=u.host or "127.0.0.1", port=u.port or 5432, user=u.username or "postgres",
                password=u.password, dbname=u.database or "postgres", connect_timeout=3).close()
PY
}

find_pg_bin() {
  local name="$1"
  if command -v "$name" >/dev/null 2>&1; then command -v "$name"; return 0; fi
  ls -1d /usr/lib/postgresql/*/bin/"$name" 2>/dev/null | sort -V | tail -1
}

run_as_pg() {
  # initdb and postgres refuse to run as root: use an unprivileged account when we are root.
  if [ "$(id -u)" = 0 ]; then
    local user=postgres
    id "$user" >/dev/null 2>&1 || user=nobody
    runuser -u "$user" -- "$@"
  else
    "$@"
  fi
}

ensure_postgres() {
  local url="${HARVESTER_TEST_POSTGRES_URL:-postgresql://postgres@127.0.0.1:5432/test}"
  if pg_answers "$url"; then
    export HARVESTER_TEST_POSTGRES_URL="$url"; echo "services: PostgreSQL at $url" >&2; return 0
  fi
  local initdb pg_ctl_bin
  initdb="$(find_pg_bin initdb)"; pg_ctl_bin="$(find_pg_bin pg_ctl)"
  if [ -z "$initdb" ] || [ -z "$pg_ctl_bin" ]; then
    echo "error: no PostgreSQL answers at $url and initdb/pg_ctl are not installed." >&2
    echo "       install them (apt-get install postgresql) or set HARVESTER_TEST_POSTGRES_URL." >&2
    exit 1
  fi
  services_dir
  PG_CTL="$pg_ctl_bin"
  PG_PRIVATE_DATA="$SERVICES_DIR/pg"
  local port; port="$(free_port)"
  mkdir -p "$PG_PRIVATE_DATA"
  [ "$(id -u)" = 0 ] && chown -R "$(id -u postgres 2>/dev/null || id -u nobody)" "$SERVICES_DIR"
  run_as_pg "$initdb" -D "$PG_PRIVATE_DATA" -U postgres -A trust >/dev/null
  run_as_pg "$PG_CTL" -D "$PG_PRIVATE_DATA" -l "$SERVICES_DIR/pg.log" -w \
    -o "-p $port -k $SERVICES_DIR -c listen_addresses=127.0.0.1 -c fsync=off" start >/dev/null
  export HARVESTER_TEST_POSTGRES_URL="postgresql://postgres@127.0.0.1:$port/postgres"
  echo "services: started a private PostgreSQL on port $port" >&2
}

redis_answers() {
  python - "$1" <<'PY' >/dev/null 2>&1
import sys, redis
redis.Redis.from_url(sys.argv[1], socket_connect_timeout=3).ping()
PY
}

ensure_redis() {
  local url="${HARVESTER_TEST_REDIS_URL:-redis://127.0.0.1:6379/9}"
  if redis_answers "$url"; then
    export HARVESTER_TEST_REDIS_URL="$url"; echo "services: Redis at $url" >&2; return 0
  fi
  if ! command -v redis-server >/dev/null 2>&1; then
    echo "error: no Redis answers at $url and redis-server is not installed." >&2
    echo "       install it (apt-get install redis-server) or set HARVESTER_TEST_REDIS_URL." >&2
    exit 1
  fi
  services_dir
  local port; port="$(free_port)"
  redis-server --port "$port" --bind 127.0.0.1 --save "" --appendonly no --dir "$SERVICES_DIR" \
    --logfile "$SERVICES_DIR/redis.log" &
  PRIVATE_PIDS+=("$!")
  export HARVESTER_TEST_REDIS_URL="redis://127.0.0.1:$port/9"
  for _ in $(seq 1 100); do redis_answers "$HARVESTER_TEST_REDIS_URL" && break; sleep 0.1; done
  redis_answers "$HARVESTER_TEST_REDIS_URL" || { echo "error: private Redis did not start" >&2; exit 1; }
  echo "services: started a private Redis on port $port" >&2
}

# Tools some tests use: Chromium for the browser tests, promtool for the alert rules. Installed
# from Debian's packages when missing and we may; otherwise the tests say they skipped and why.
ensure_tool() {
  local binary="$1" package="$2"
  if command -v "$binary" >/dev/null 2>&1 || [ -x "/usr/bin/$binary" ]; then return 0; fi
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "services: installing $package (for $binary)" >&2
    if [ -z "${APT_UPDATED:-}" ]; then apt-get update -qq >/dev/null 2>&1 || true; APT_UPDATED=1; fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$package" >/dev/null 2>&1 ||
      echo "services: could not install $package: the tests that need $binary will skip" >&2
  else
    echo "services: $binary is missing (apt-get install $package): the tests that need it will skip" >&2
  fi
}
