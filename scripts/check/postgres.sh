#!/usr/bin/env bash
# A throw-away PostgreSQL for the tests of the PostgreSQL run store (docs/distributed.md).
#
#   scripts/check/postgres.sh start        starts a server and prints two shell assignments:
#                                          AMALGAM_TEST_POSTGRES=postgres://amalgam@127.0.0.1:PORT/amalgam_test
#                                          AMALGAM_TEST_POSTGRES_DIR=/tmp/amalgam-postgres.XXXX
#   scripts/check/postgres.sh stop DIR     stops the server of that folder and deletes the folder
#   scripts/check/postgres.sh run CMD…     starts one, runs CMD with both variables exported, stops it
#                                          (also when CMD fails or is interrupted) and exits with CMD's status
#
# The server runs as the `postgres` user (initdb refuses root) in a temporary data folder, listens on
# 127.0.0.1 only (the first free port from 55432 on), trusts local logins, and has fsync off: it is for
# tests, nothing in it is kept. The role `amalgam` owns the database `amalgam_test`; the role
# `amalgam_refused` exists but pg_hba.conf rejects its logins (the tests of a refused login use it).
# Needs Debian's `postgresql` package (scripts/setup-system.sh installs it).
set -euo pipefail

bin_dir() {
    local d
    d=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
    if [ -z "$d" ] || [ ! -x "$d/initdb" ]; then
        echo "error: no PostgreSQL server binaries under /usr/lib/postgresql/*/bin; run scripts/setup-system.sh (installs Debian's postgresql)" >&2
        exit 1
    fi
    echo "$d"
}

as_postgres() {
    if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

start() {
    local bin dir port
    bin=$(bin_dir)
    dir=$(mktemp -d /tmp/amalgam-postgres.XXXXXX)
    mkdir "$dir/sock"
    [ "$(id -u)" -eq 0 ] && chown -R postgres: "$dir"
    as_postgres "$bin/initdb" -D "$dir/data" -U postgres --auth=trust -E UTF8 --locale=C >"$dir/initdb.log" 2>&1 || {
        cat "$dir/initdb.log" >&2; rm -rf "$dir"; echo "error: initdb failed" >&2; exit 1; }
    # Rejected before the trust lines: a role whose login the server refuses.
    { echo "host all amalgam_refused 127.0.0.1/32 reject"; cat "$dir/data/pg_hba.conf"; } >"$dir/hba" && \
        cat "$dir/hba" >"$dir/data/pg_hba.conf" && rm "$dir/hba"
    for port in $(seq 55432 55531); do
        # A port something already listens on is skipped; a race with another starter makes pg_ctl fail: next port.
        (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && continue
        if as_postgres "$bin/pg_ctl" -D "$dir/data" -l "$dir/log" -w -t 30 \
            -o "-c listen_addresses=127.0.0.1 -p $port -k $dir/sock -c fsync=off -c max_connections=200" start >/dev/null 2>&1; then
            "$bin/psql" -q -h "$dir/sock" -p "$port" -U postgres -d postgres -v ON_ERROR_STOP=1 \
                -c "CREATE ROLE amalgam LOGIN" -c "CREATE ROLE amalgam_refused LOGIN" \
                -c "CREATE DATABASE amalgam_test OWNER amalgam" >/dev/null
            echo "$port" >"$dir/port"
            echo "AMALGAM_TEST_POSTGRES=postgres://amalgam@127.0.0.1:$port/amalgam_test"
            echo "AMALGAM_TEST_POSTGRES_DIR=$dir"
            return 0
        fi
    done
    cat "$dir/log" >&2 2>/dev/null || true
    rm -rf "$dir"
    echo "error: could not start PostgreSQL on any port from 55432 to 55531" >&2
    exit 1
}

stop() {
    local dir=$1 bin
    case "$dir" in /tmp/amalgam-postgres.*) ;; *) echo "error: $dir is not a folder made by '$0 start'" >&2; exit 1 ;; esac
    [ -d "$dir" ] || return 0
    bin=$(bin_dir)
    if [ -f "$dir/data/postmaster.pid" ]; then
        as_postgres "$bin/pg_ctl" -D "$dir/data" -m immediate -w -t 30 stop >/dev/null 2>&1 || true
    fi
    rm -rf "$dir"
}

case "${1:-}" in
    start) start ;;
    stop) [ $# -eq 2 ] || { echo "usage: $0 stop DIR" >&2; exit 2; }; stop "$2" ;;
    run)
        shift
        [ $# -ge 1 ] || { echo "usage: $0 run COMMAND…" >&2; exit 2; }
        eval "$(start)"
        export AMALGAM_TEST_POSTGRES AMALGAM_TEST_POSTGRES_DIR
        trap 'stop "$AMALGAM_TEST_POSTGRES_DIR"' EXIT
        trap 'exit 130' INT TERM
        echo "PostgreSQL for the tests: $AMALGAM_TEST_POSTGRES" >&2
        status=0
        "$@" || status=$?
        exit "$status"
        ;;
    *) echo "usage: $0 start | stop DIR | run COMMAND…" >&2; exit 2 ;;
esac
