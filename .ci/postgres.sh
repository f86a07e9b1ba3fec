#!/usr/bin/env bash
# Start a throwaway PostgreSQL server on loopback for the test suite and print its URL.
# Usage: eval "$(bash .ci/postgres.sh start)"; ...; bash .ci/postgres.sh stop
# Installs the Debian package when missing. Runs as the postgres user in a temp directory.
set -euo pipefail
DIR=${HM_PG_DIR:-/tmp/hallmonitor-ci-pg}
PORT=${HM_PG_PORT:-55432}
bin() { ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1; }
case "${1:-start}" in
start)
  if [ -z "$(bin)" ]; then
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql) >&2
  fi
  B=$(bin)
  if [ -f "$DIR/postmaster.pid" ]; then su postgres -c "$B/pg_ctl -D $DIR stop -m fast" >&2 || true; fi
  rm -rf "$DIR"; mkdir -p "$DIR"; chown postgres "$DIR"
  su postgres -c "$B/initdb -D $DIR -A trust -U postgres" >/dev/null
  su postgres -c "$B/pg_ctl -D $DIR -l $DIR/log -o '-c listen_addresses=127.0.0.1 -p $PORT -k $DIR' -w start" >&2
  echo "export HALLMONITOR_TEST_DATABASE_URL=postgresql://postgres@127.0.0.1:$PORT/postgres"
  ;;
stop)
  B=$(bin); [ -n "$B" ] && [ -f "$DIR/postmaster.pid" ] && su postgres -c "$B/pg_ctl -D $DIR stop -m fast" >&2 || true
  ;;
esac
