#!/usr/bin/env bash
# The test command: installs what the tests need (PostgreSQL included), lints, type-checks,
# runs pytest. Exits non-zero when any check fails or when no test ran.
set -euo pipefail
cd "$(dirname "$0")/.."
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 OMP_NUM_THREADS=1 MKL_NUM_THREADS=1

need_apt=()
command -v node >/dev/null 2>&1 || need_apt+=(nodejs npm)
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need_apt+=(postgresql)
command -v chromium >/dev/null 2>&1 || need_apt+=(chromium)  # the web page browser test
if [ ${#need_apt[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >/dev/null
  else
    echo "warning: missing ${need_apt[*]} (not root, cannot apt-get install)" >&2
  fi
fi

# A scratch directory everything agrees on (mktemp, Python's tempfile, PostgreSQL, Chromium):
# $TMPDIR, else /tmp. CI machines have been seen with no /tmp at all: make it, or fall back.
scratch_dir() {
  local d
  for d in "${TMPDIR:-}" /tmp /var/tmp /dev/shm; do
    [ -n "$d" ] || continue
    if [ ! -d "$d" ]; then mkdir -p "$d" 2>/dev/null && chmod 1777 "$d" 2>/dev/null || continue; fi
    if [ -w "$d" ]; then echo "$d"; return; fi
  done
  mkdir -p .scratch && chmod 1777 .scratch && echo "$PWD/.scratch"
}
TMPDIR=$(scratch_dir)
export TMPDIR

bash scripts/install.sh "test,postgres"

# A throwaway PostgreSQL on loopback: the suite's second run puts every instance on it.
pg_started=""
as_pg=()
cleanup() {
  if [ -n "$pg_started" ]; then
    "${as_pg[@]}" "$pgbin/pg_ctl" -D "$pgdata" -m fast stop >/dev/null 2>&1 || true
    rm -rf "$pgdata"
  fi
}
if pgbin=$(dirname "$(ls /usr/lib/postgresql/*/bin/initdb 2>/dev/null | sort -V | tail -1)" 2>/dev/null) \
    && [ -x "$pgbin/initdb" ]; then
  pgdata=$(mktemp -d "$TMPDIR/dreamloom-pg.XXXXXX")
  pgport=${DREAMLOOM_PG_PORT:-$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')}
  if [ "$(id -u)" = 0 ]; then chown postgres "$pgdata"; as_pg=(runuser -u postgres --); fi
  "${as_pg[@]}" "$pgbin/initdb" -D "$pgdata" -A trust -U dreamloom >/dev/null
  "${as_pg[@]}" "$pgbin/pg_ctl" -D "$pgdata" -l "$pgdata/log" -w \
      -o "-h 127.0.0.1 -p $pgport -k $pgdata -F" start >/dev/null
  pg_started=1
  trap cleanup EXIT
  export DREAMLOOM_TEST_POSTGRES_URL="postgresql+asyncpg://dreamloom@127.0.0.1:$pgport/postgres"
fi

.venv/bin/ruff check .
.venv/bin/mypy
.venv/bin/lint-imports --no-cache
# The suite twice: every instance on SQLite, then every instance on its own PostgreSQL
# database (tests marked sqlite_only are skipped there). Both must pass and both must run tests.
run_suite() {
  local database=$1 status
  shift
  echo "== pytest on $database ==" >&2
  set +e
  DREAMLOOM_TEST_DATABASE=$database .venv/bin/python -m pytest "$@"
  status=$?
  set -e
  if [ "$status" = 5 ]; then
    echo "no tests ran on $database" >&2
    status=1
  fi
  return "$status"
}
sqlite_status=0
run_suite sqlite "$@" || sqlite_status=$?
if [ -n "${DREAMLOOM_TEST_POSTGRES_URL:-}" ]; then
  pg_status=0
  run_suite postgresql "$@" || pg_status=$?
else
  echo "no PostgreSQL server (initdb not found): the PostgreSQL run cannot happen" >&2
  pg_status=1
fi
echo "pytest on sqlite: exit $sqlite_status; on postgresql: exit $pg_status" >&2
[ "$sqlite_status" = 0 ] && [ "$pg_status" = 0 ]
