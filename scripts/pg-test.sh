#!/usr/bin/env bash
# pg-test.sh start|stop|dsn [USER_PID]: a throwaway PostgreSQL cluster for the tests,
# under build/pg (Debian's postgresql package; initdb and postgres run as the
# `postgres` OS user when we are root, since root cannot run postgres).
#   start  create the cluster if needed, start it if it is not running (unix socket in
#          build/pg/run, TCP on a free 127.0.0.1 port), create database herald_test,
#          print the DSN. Idempotent. USER_PID (default: the parent's pid) registers a
#          user of the cluster.
#   stop   unregister USER_PID; stop the cluster when no live user is left.
#   dsn    print the DSN of the running cluster (exit 1 when it is not running).
# Several `make test` runs in one tree share the cluster: each registers its pid, and
# the last one to stop shuts it down.
# Environment: PG_TEST_ROOT (default build/pg) puts the cluster elsewhere (bench/pg.sh
# uses its own); PG_TEST_FSYNC=on starts it durable (fsync, synchronous_commit and
# full_page_writes on, as users run PostgreSQL); the default, off, is for tests.
set -euo pipefail

usage() { echo "usage: scripts/pg-test.sh start|stop|dsn [USER_PID]" >&2; exit 2; }
[ $# -ge 1 ] && [ $# -le 2 ] || usage
cmd=$1
user_pid=${2:-$PPID}

cd "$(dirname "$0")/.."
root=${PG_TEST_ROOT:-$(pwd)/build/pg}
data=$root/data
run=$root/run
users=$root/users
portfile=$root/port
log=$root/postgres.log
db=herald_test

pgbin=""
for d in /usr/lib/postgresql/*/bin; do
    [ -x "$d/pg_ctl" ] && pgbin=$d
done
if [ -z "$pgbin" ]; then
    echo "pg-test: PostgreSQL server binaries not found (install Debian's postgresql package:" \
         "scripts/deps.sh test)" >&2
    exit 1
fi

# as_pg CMD...: run CMD as the cluster's owner (postgres when we are root)
as_pg() {
    if [ "$(id -u)" -eq 0 ]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

running() {
    [ -f "$data/postmaster.pid" ] && as_pg "$pgbin/pg_ctl" -D "$data" status >/dev/null 2>&1
}

dsn() { echo "postgres://postgres@127.0.0.1:$(cat "$portfile")/$db"; }

free_port() {
    python3 - <<'EOF' 2>/dev/null || echo $(( 20000 + RANDOM % 20000 ))
import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])
s.close()
EOF
}

# prune: drop registrations whose process is gone
prune() {
    mkdir -p "$users"
    for f in "$users"/*; do
        [ -e "$f" ] || continue
        kill -0 "$(basename "$f")" 2>/dev/null || rm -f "$f"
    done
}

start() {
    mkdir -p "$root" "$run" "$users"
    exec 9>"$root/lock"
    flock 9
    if [ ! -f "$data/PG_VERSION" ]; then
        rm -rf "$data"
        mkdir -p "$data"
        [ "$(id -u)" -eq 0 ] && chown -R postgres:postgres "$root"
        as_pg "$pgbin/initdb" -D "$data" -U postgres -A trust -E UTF8 --locale=C.UTF-8 \
            >"$root/initdb.log" 2>&1 || {
            echo "pg-test: initdb failed:" >&2; cat "$root/initdb.log" >&2; exit 1; }
    fi
    [ "$(id -u)" -eq 0 ] && chown -R postgres:postgres "$root"
    if ! running; then
        durability="-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        [ "${PG_TEST_FSYNC:-off}" = on ] &&
            durability="-c fsync=on -c synchronous_commit=on -c full_page_writes=on"
        port=$(free_port)
        echo "$port" >"$portfile"
        [ "$(id -u)" -eq 0 ] && chown postgres:postgres "$portfile"
        # 9>&-: the server must not inherit (and hold forever) the lock on fd 9
        as_pg "$pgbin/pg_ctl" -D "$data" -l "$log" -w -t 60 9>&- -o \
            "-c listen_addresses=127.0.0.1 -p $port -c unix_socket_directories=$run $durability -c max_connections=300" \
            start >/dev/null || {
            echo "pg-test: the cluster did not start; tail of $log:" >&2
            tail -20 "$log" >&2; exit 1; }
    fi
    port=$(cat "$portfile")
    if ! as_pg psql -h "$run" -p "$port" -U postgres -d postgres -tAc \
            "SELECT 1 FROM pg_database WHERE datname = '$db'" | grep -q 1; then
        as_pg psql -h "$run" -p "$port" -U postgres -d postgres -qc "CREATE DATABASE $db" >/dev/null
    fi
    prune
    : >"$users/$user_pid"
    dsn
}

stop() {
    mkdir -p "$root" "$users"
    exec 9>"$root/lock"
    flock 9
    rm -f "$users/$user_pid"
    prune
    if [ -n "$(ls -A "$users" 2>/dev/null)" ]; then
        echo "pg-test: cluster left running for $(ls "$users" | tr '\n' ' ')" >&2
        return 0
    fi
    if running; then
        as_pg "$pgbin/pg_ctl" -D "$data" -m fast -w stop >/dev/null
    fi
}

case "$cmd" in
start) start ;;
stop) stop ;;
dsn) running && [ -f "$portfile" ] || { echo "pg-test: not running" >&2; exit 1; }; dsn ;;
*) usage ;;
esac
