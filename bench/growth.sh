#!/usr/bin/env bash
# growth.sh: how cost grows with stored data. The same ingest and send figures twice in
# one run: on an empty SQLite store, then on a store seeded (`herald seed`) with
# GROWTH_PROFILES profiles and GROWTH_MESSAGES SENT messages, each with its 5 history
# rows, as herald writes them for a webhook send. Both stores live in GROWTH_DIR (the
# same filesystem); the seeded one is deleted at the end unless GROWTH_KEEP=1.
# GROWTH_STORES="sqlite postgres" does the same on PostgreSQL afterwards (a throwaway
# cluster, scripts/pg-test.sh, databases growth_empty and growth_seeded, dropped at the
# end); not in the default set: that half took 24 minutes in its one full run (11 seeding).
#
#   growth.seed              seconds to seed profiles and messages, rows/s, store size
#   growth.<s>.track         POST /v1/track (wrk -t2 -c64, BENCH_DURATION s); s = empty|seeded
#                            (PostgreSQL: growth.pg.seed, growth.pg.<s>.*)
#   growth.<s>.batch         POST /v1/batch, BENCH_BATCH events per request
#   growth.<s>.send          POST /send to the sink for SEND_DURATION s, then the drain:
#                            accepted/s and delivered/s (first send to last delivery)
#   growth.<s>.light         /send at a light paced load (wrk -t1 -c4, 20 ms pauses,
#                            LIGHT_DURATION s): send-to-delivery latency without a backlog
#   growth.<s>.read          before the load: GROWTH_READS (50) sequential reads each of a
#                            profile, a recipient's messages and a message's history: p50, max
#
# One herald per store runs the reads, then four cases in turn (track, batch, send, light), each
# checked as in ingest.sh / send.sh: catalog count = events in herald's 2xx answers,
# sink count = herald's 202 answers. The seeded profiles are u0..u(N-1): the ingest
# events' userIds (u0..u9999) hit existing profiles, as returning users do.
#
# The seeded store is written just before the runs, so the pages they touch (the ends of
# the indexes, the profiles) are likely in the page cache: warm-cache figures, the usual
# state of a busy server, not those of a cold start.
#
# Usage: bench/growth.sh   (settings: bench/lib.sh; GROWTH_PROFILES (1000000),
#        GROWTH_MESSAGES (10000000), GROWTH_DIR (build/bench-growth), GROWTH_KEEP=1,
#        GROWTH_STORES ("sqlite"; "sqlite postgres", "postgres"),
#        SEND_DURATION (10), LIGHT_DURATION (5), HERALD_ARGS)
# shellcheck source=bench/lib.sh disable=SC2154
source "$(dirname "$0")/lib.sh"
need wrk curl node cc

GROWTH_PROFILES=${GROWTH_PROFILES:-1000000}
GROWTH_MESSAGES=${GROWTH_MESSAGES:-10000000}
GROWTH_DIR=${GROWTH_DIR:-$REPO_ROOT/build/bench-growth}
SEND_DURATION=${SEND_DURATION:-10}
LIGHT_DURATION=${LIGHT_DURATION:-5}
GROWTH_READS=${GROWTH_READS:-50}
BATCH=${BENCH_BATCH:-100}
export BENCH_BATCH=$BATCH

mkdir -p "$GROWTH_DIR"
GROWTH_STORES=${GROWTH_STORES:-sqlite}
rm -f "$GROWTH_DIR"/empty.db* "$GROWTH_DIR"/seeded.db*
PG_BASE="" PG_USER_PID=$$
cleanup_growth() {
    bench_cleanup
    rm -f "$GROWTH_DIR"/empty.db*
    if [ "${GROWTH_KEEP:-0}" = 1 ]; then
        echo "growth: kept $GROWTH_DIR/seeded.db (and the PostgreSQL database growth_seeded)" >&2
    else
        rm -f "$GROWTH_DIR"/seeded.db*
        if [ -n "$PG_BASE" ]; then
            psql "$PG_BASE/postgres" -qc "DROP DATABASE IF EXISTS growth_seeded" >/dev/null 2>&1 || true
        fi
    fi
    if [ -n "$PG_BASE" ]; then
        psql "$PG_BASE/postgres" -qc "DROP DATABASE IF EXISTS growth_empty" >/dev/null 2>&1 || true
        "$REPO_ROOT/scripts/pg-test.sh" stop "$PG_USER_PID" || true
    fi
}
trap cleanup_growth EXIT

result growth.profiles "$GROWTH_PROFILES"
result growth.messages "$GROWTH_MESSAGES"
result growth.reads "$GROWTH_READS"
result growth.store_fs "$(df -PT "$GROWTH_DIR" | awk 'NR == 2 {print $2 " on " $1}')"

# ---- disk: ~2.6 KB per message with its history and indexes, ~0.5 KB per profile ---------
need_kb=$(((GROWTH_MESSAGES * 27 / 10 + GROWTH_PROFILES / 2) * 12 / 10 + 1048576))
avail_kb=$(df -Pk "$GROWTH_DIR" | awk 'NR == 2 {print $4}')
if [ "$avail_kb" -lt "$need_kb" ]; then
    echo "########## bench/growth.sh SKIPPED: $GROWTH_DIR has $((avail_kb / 1048576)) GiB free, the seeded store needs about $((need_kb / 1048576)) GiB ##########" >&2
    result growth.skipped "disk: $((avail_kb / 1048576)) GiB free, about $((need_kb / 1048576)) GiB needed"
    exit 0
fi

# ---- the sink --------------------------------------------------------------------------
start_sink 0

# ---- one store: four cases on one herald ------------------------------------------------
# ingest_case PREFIX MODE EVENT_NAME PER_REQUEST
ingest_case() {
    local p=$1 mode=$2 ev=$3 per=$4 ok0 ok1 count
    ok0=$(metric herald_http_requests_total 'route="segment.v1",status="200"')
    run_wrk "$p" "$HERALD_URL/v1/$mode" "$mode" "$WRITE_AUTH" "$HERALD_PID"
    record_wrk "$p" "$per"
    result "$p.drain_s" "$(wait_queue_empty 300)"
    ok1=$(metric herald_http_requests_total 'route="segment.v1",status="200"')
    count=$(hget "/catalog/events?search=Bench" |
        json - "(j.items.find(x => x.name === 'track/$ev') || {count: 0}).count")
    result "$p.catalog_events" "$count"
    result "$p.herald_2xx_events" "$(((ok1 - ok0) * per))"
    if [ "$count" = "$(((ok1 - ok0) * per))" ]; then result "$p.check" ok; else result "$p.check" MISMATCH; fi
}

# send_case PREFIX [wrk overrides are in the environment]
send_case() {
    local p=$1 before st accepted delivered
    sink_reset
    before=$(metric herald_http_requests_total 'route="send",status="202"')
    run_wrk "$p" "$HERALD_URL/send" send "$ADMIN_AUTH" "$HERALD_PID"
    record_wrk "$p"
    result "$p.drain_s" "$(wait_queue_empty 600)"
    accepted=$(($(metric herald_http_requests_total 'route="send",status="202"') - before))
    st=$(sink_stats)
    delivered=$(echo "$st" | json - j.count)
    result "$p.accepted" "$accepted"
    result "$p.delivered" "$delivered"
    result "$p.delivered_ps" "$(echo "$st" | json - '(j.count / ((j.last_us - j.min_send_us) / 1e6)).toFixed(0)')"
    result "$p.e2e_p50_ms" "$(echo "$st" | json - '(j.p50_us/1000).toFixed(1)')"
    result "$p.e2e_p99_ms" "$(echo "$st" | json - '(j.p99_us/1000).toFixed(1)')"
    if [ "$accepted" = "$delivered" ]; then result "$p.check" ok; else result "$p.check" MISMATCH; fi
}

# read_case PREFIX: the reads an operator (or the admin UI's Profiles and Messages pages)
# makes, GROWTH_READS times each, one at a time, users drawn from the seeded ids:
# GET /profiles/u<n>, GET /messages?recipient=u<n>&limit=10, GET /messages/<id>/history of
# u<n>'s newest message (or the newest of all when u<n> has none). p50 and max in ms.
read_case() {
    local p=$1 what path u times id
    for what in profile recipient history; do
        times=()
        for _ in $(seq 1 "$GROWTH_READS"); do
            u=$(( (RANDOM * 32768 + RANDOM) % (GROWTH_PROFILES > 0 ? GROWTH_PROFILES : 1) ))
            case $what in
            profile) path="/profiles/u$u" ;;
            recipient) path="/messages?recipient=u$u&limit=10" ;;
            history)
                id=$(hget "/messages?limit=1&recipient=u$u" | json - '(j.results[0] || {id: ""}).id')
                [ -n "$id" ] || id=$(hget "/messages?limit=1" | json - '(j.results[0] || {id: "none"}).id')
                path="/messages/$id/history" ;;
            esac
            times+=("$(curl -s -o /dev/null -w '%{time_total}' --max-time 120 \
                -H "Authorization: $ADMIN_AUTH" "$HERALD_URL$path")")
        done
        result "$p.$what.p50_ms" "$(printf '%s\n' "${times[@]}" | sort -g | awk '{a[NR]=$1} END {printf "%.2f", a[int((NR+1)/2)]*1000}')"
        result "$p.$what.max_ms" "$(printf '%s\n' "${times[@]}" | sort -g | awk 'END {printf "%.2f", $1*1000}')"
    done
}

# store_cases PREFIX DSN: herald on DSN, the four cases, stop.
store_cases() {
    local p=$1 dsn=$2 t0
    t0=$(date +%s.%N)
    # shellcheck disable=SC2086
    HERALD_STORE_DSN=$dsn start_herald "${p//./-}" ${HERALD_ARGS:-}
    result "$p.start_s" "$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f", b-a}')"
    hpost /providers "{\"provider\":\"webhook\",\"settings\":{\"url\":\"$SINK_URL/hook\"}}" >/dev/null
    read_case "$p.read"
    ingest_case "$p.track" track "Bench Track" 1
    ingest_case "$p.batch" batch "Bench Batch" "$BATCH"
    WRK_DURATION=$SEND_DURATION send_case "$p.send"
    WRK_THREADS=1 WRK_CONNS=4 WRK_DURATION=$LIGHT_DURATION BENCH_DELAY_MS=20 BENCH_RUN=light \
        send_case "$p.light"
    stop_pid "$HERALD_PID"
    result "$p.store_mb" "$(store_mb "$dsn")"
}

# store_mb DSN: the store's size on disk in MB (files, or the PostgreSQL database)
store_mb() {
    case $1 in
    sqlite:*) du -cm "${1#sqlite:}"* | awk 'END {print $1}' ;;
    *) psql "$PG_BASE/postgres" -tAc "SELECT pg_database_size('${1##*/}') / 1048576" ;;
    esac
}

# seed PREFIX DSN: herald seed into DSN, timed.
seed() {
    local p=$1 dsn=$2 t0 t1 line kv
    log "growth: seeding $GROWTH_PROFILES profiles and $GROWTH_MESSAGES messages into ${dsn%%:*}"
    t0=$(date +%s.%N)
    line=$("$HERALD_BIN" seed --store "$dsn" --profiles "$GROWTH_PROFILES" \
        --messages "$GROWTH_MESSAGES") || die "herald seed failed"
    t1=$(date +%s.%N)
    for kv in $line; do result "$p.${kv%%=*}" "${kv#*=}"; done
    result "$p.total_s" "$(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.1f", b-a}')"
    result "$p.rows_ps" "$(awk -v a="$t0" -v b="$t1" -v n="$((GROWTH_PROFILES + GROWTH_MESSAGES * 6))" 'BEGIN{printf "%.0f", n/(b-a)}')"
    result "$p.store_mb" "$(store_mb "$dsn")"
    log "growth: seeded in $(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.0f", b-a}') s"
}

for store in $GROWTH_STORES; do
    case $store in
    sqlite)
        log "growth: SQLite, empty store"
        store_cases growth.empty "sqlite:$GROWTH_DIR/empty.db"
        rm -f "$GROWTH_DIR"/empty.db*
        seed growth.seed "sqlite:$GROWTH_DIR/seeded.db"
        store_cases growth.seeded "sqlite:$GROWTH_DIR/seeded.db"
        if [ "${GROWTH_KEEP:-0}" != 1 ]; then rm -f "$GROWTH_DIR"/seeded.db*; fi
        ;;
    postgres)
        if ! ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1; then
            echo "########## bench/growth.sh: PostgreSQL SKIPPED: no server binaries (/usr/lib/postgresql/*/bin/pg_ctl) ##########" >&2
            result growth.pg.skipped 1
            continue
        fi
        need psql
        PG_DSN=$("$REPO_ROOT/scripts/pg-test.sh" start "$PG_USER_PID") || die "cannot start the PostgreSQL cluster"
        PG_BASE=${PG_DSN%/*}
        result growth.pg.store_fs "$(df -PT "$REPO_ROOT/build/pg" | awk 'NR == 2 {print $2 " on " $1}')"
        result growth.pg.version "$(psql "$PG_BASE/postgres" -tAc 'SHOW server_version' | cut -d' ' -f1)"
        for db in growth_empty growth_seeded; do
            psql "$PG_BASE/postgres" -qc "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db" >/dev/null
        done
        log "growth: PostgreSQL, empty database"
        store_cases growth.pg.empty "$PG_BASE/growth_empty"
        seed growth.pg.seed "$PG_BASE/growth_seeded"
        store_cases growth.pg.seeded "$PG_BASE/growth_seeded"
        ;;
    *) die "GROWTH_STORES: unknown store $store (sqlite, postgres)" ;;
    esac
done
