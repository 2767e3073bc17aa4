#!/usr/bin/env bash
# Starts a throwaway PostgreSQL server for the test suite, from Debian's
# packages, on a free port in a temporary directory.
#
#   scripts/postgres.sh start DIR   prints the server's URL on stdout
#   scripts/postgres.sh stop DIR    stops it and removes DIR
#   scripts/postgres.sh down DIR    stops it, keeping its data (fault tests)
#   scripts/postgres.sh up DIR      starts it again, on the same port
set -euo pipefail

cmd="${1:?start|stop|down|up}"
dir="${2:?directory}"

pg_bin() {
  local bin
  bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
  if [[ -z "$bin" ]]; then
    echo "error: PostgreSQL server binaries not found; install them with: apt-get install -y postgresql" >&2
    exit 2
  fi
  echo "$bin"
}

# PostgreSQL refuses to run as root; use its own system user then.
as_pg() {
  if [[ $(id -u) -eq 0 ]]; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

start_server() { # bin port
  as_pg "$1/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
    -o "-p $2 -k $dir -c listen_addresses=127.0.0.1 -c fsync=off -c full_page_writes=off -c max_connections=300" \
    start >/dev/null || { cat "$dir/server.log" >&2; exit 1; }
}

case "$cmd" in
  start)
    bin=$(pg_bin)
    mkdir -p "$dir"
    if [[ $(id -u) -eq 0 ]]; then chown postgres:postgres "$dir"; fi
    as_pg "$bin/initdb" -D "$dir/data" -U gantry --auth=trust --no-sync -E UTF8 >"$dir/initdb.log" 2>&1 || {
      cat "$dir/initdb.log" >&2; exit 1; }
    port=$(free_port)
    start_server "$bin" "$port"
    echo "$port" > "$dir/port"
    echo "postgres://gantry@127.0.0.1:$port/postgres"
    ;;
  down)
    as_pg "$(pg_bin)/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null
    ;;
  up)
    start_server "$(pg_bin)" "$(cat "$dir/port")"
    ;;
  stop)
    bin=$(pg_bin)
    if [[ -d "$dir/data" ]]; then
      as_pg "$bin/pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null 2>&1 || true
    fi
    rm -rf "$dir"
    ;;
  *)
    echo "usage: $0 start|stop|down|up DIR" >&2; exit 2 ;;
esac
