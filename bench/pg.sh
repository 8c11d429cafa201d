#!/usr/bin/env bash
# pg.sh: the PostgreSQL store. Ingest and send throughput with 1, 2 and 3 herald nodes on
# one database (a throwaway cluster of its own: scripts/pg-test.sh under
# build/pg-bench-fsync-$PG_FSYNC; PG_FSYNC=on, the default, runs it durable as users do:
# fsync, synchronous_commit and full_page_writes on; PG_FSYNC=off all three off, the old
# figures), beside the single-node SQLite figure and the nginx / libcurl baselines
# measured by this same script with the same load shape.
#
# Load shape (every case, SQLite included, so the ratios compare like with like): N wrk
# processes at once, one per node, each -t1 -c(BENCH_CONNS/N) -d PG_DURATION, results
# summed. With N=1 that is one wrk -t1 -c64 (the other benches use -t2: figures differ).
# The N wrk processes start 10,000/N apart in the user ids (BENCH_USER_OFFSET), as users
# spread over nodes do; PG_SAME_USERS=1 sends every node the same user at the same moment
# (the shape before 2026-12-05: on a fresh database that is N nodes creating the same
# profile at once, each waiting for the other's commit).
#
#   pg.nginx.track|batch    nginx fixed 200, same bodies                  (baselines)
#   pg.curl.sink            libcurl multi, 16 in flight, to the sink      (baseline)
#   pg.<store>.track        POST /v1/track; store = sqlite (1 node) | n1 | n2 | n3
#   pg.<store>.batch        POST /v1/batch, BENCH_BATCH events per request
#   pg.<store>.send         POST /send (webhook to bench/sink.c) for SEND_PG_DURATION s,
#                           then drain: delivered/s = sink count / (last delivery - first send)
#
# Checks: ingest: catalog count of the run's event = events in the 2xx answers all nodes
# gave (their /metrics); send: sink count = 202s all nodes gave (the sink counts requests,
# it does not keep Idempotency-Keys: a duplicate would show only if it did not cancel a loss).
# Limits: CPU (cores) of herald (all nodes), postgres (the run database's backends plus the
# cluster's background processes: the cluster is shared with `make test`), wrk, the
# machine; pg_stat_database xact_commit/s of the run's database; pg_stat_activity wait
# events of its active backends sampled every 0.5 s during the run (pg_lock_stmts: the
# statements the samples in Lock waits were running, most frequent first).
#
# Each (store, case) gets a fresh database. Without PostgreSQL server binaries
# (/usr/lib/postgresql/*/bin/pg_ctl) it prints a loud skip line and exits 0.
#
# Usage: bench/pg.sh   (settings: bench/lib.sh; PG_DURATION (6), SEND_PG_DURATION (4),
#        PG_NODES ("1 2 3"), PG_DRAIN_MAX (120 s per drain), PG_FSYNC (on | off),
#        PG_SAME_USERS (0 | 1))
# shellcheck source=bench/lib.sh disable=SC2154
source "$(dirname "$0")/lib.sh"

if ! ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1; then
    echo "########## bench/pg.sh SKIPPED: no PostgreSQL server binaries (/usr/lib/postgresql/*/bin/pg_ctl); scripts/deps.sh test installs them ##########" >&2
    result pg.skipped 1
    exit 0
fi
need wrk curl node cc psql

PG_DURATION=${PG_DURATION:-6}
SEND_PG_DURATION=${SEND_PG_DURATION:-4}
PG_NODES=${PG_NODES:-1 2 3}
PG_DRAIN_MAX=${PG_DRAIN_MAX:-120}
PG_FSYNC=${PG_FSYNC:-on}
PG_SAME_USERS=${PG_SAME_USERS:-0}
case $PG_FSYNC in on | off) ;; *) die "PG_FSYNC must be on or off, not $PG_FSYNC" ;; esac
BATCH=${BENCH_BATCH:-100}
export BENCH_BATCH=$BATCH
result pg.duration "$PG_DURATION"
result pg.send_duration "$SEND_PG_DURATION"
result pg.fsync "$PG_FSYNC"
result pg.same_users "$PG_SAME_USERS"

# ---- the cluster (stopped on exit, after the herald nodes) -----------------------------
PG_USER_PID=$$
# not the tests' cluster (build/pg, fsync off): one of the bench's own per durability
export PG_TEST_ROOT=$REPO_ROOT/build/pg-bench-fsync-$PG_FSYNC PG_TEST_FSYNC=$PG_FSYNC
PG_DSN=$("$REPO_ROOT/scripts/pg-test.sh" start "$PG_USER_PID") || die "cannot start the PostgreSQL cluster"
PG_BASE=${PG_DSN%/*}                       # postgres://postgres@127.0.0.1:PORT
trap 'bench_cleanup; "$REPO_ROOT/scripts/pg-test.sh" stop "$PG_USER_PID" || true' EXIT
PG_MAIN=$(head -1 "$PG_TEST_ROOT/data/postmaster.pid")
log "postgres: $PG_BASE, postmaster pid $PG_MAIN, fsync $(psql "$PG_BASE/postgres" -tAc 'SHOW fsync')"
result pg.version "$(psql "$PG_BASE/postgres" -tAc 'SHOW server_version' | cut -d' ' -f1)"
psql_q() { PGOPTIONS="-c client_min_messages=warning" psql "$PG_BASE/postgres" -qtAc "$1"; }

# pg_pids: the postmaster and its children (backends, walwriter, checkpointer, ...)
pg_pids() {
    echo "$PG_MAIN"
    cat /proc/"$PG_MAIN"/task/*/children 2>/dev/null | tr ' ' '\n' | grep . || true
}

# ---- nodes ---------------------------------------------------------------------------------
NODE_PIDS=() NODE_URLS=()
# start_nodes NAME N STORE: N herald nodes on STORE (the first creates the workspace and
# prints the keys). Sets NODE_PIDS, NODE_URLS, ADMIN_AUTH, WRITE_AUTH, HERALD_URL (node 1).
start_nodes() {
    local name=$1 n=$2 store=$3 i dir port pid
    NODE_PIDS=() NODE_URLS=()
    for i in $(seq 1 "$n"); do
        dir=$BENCH_TMP/$name-$i
        mkdir -p "$dir"
        port=$(free_port)
        (cd "$dir" && exec "$HERALD_BIN" serve --listen "127.0.0.1:$port" --store "$store" \
            --log-level warn --egress-allow 127.0.0.0/8 >"$dir/stdout" 2>"$dir/stderr") &
        pid=$!
        BENCH_PIDS+=("$pid")
        NODE_PIDS+=("$pid")
        NODE_URLS+=("http://127.0.0.1:$port")
        wait_http "http://127.0.0.1:$port/healthz" 30
        if [ "$i" = 1 ]; then
            for _ in $(seq 1 100); do
                grep -q '^HERALD_WRITE_KEY=' "$dir/stdout" && break
                sleep 0.05
            done
            ADMIN_KEY=$(sed -n 's/^HERALD_ADMIN_KEY=//p' "$dir/stdout")
            WRITE_KEY=$(sed -n 's/^HERALD_WRITE_KEY=//p' "$dir/stdout")
            if [ -z "$ADMIN_KEY" ] || [ -z "$WRITE_KEY" ]; then die "herald printed no keys ($dir/stdout)"; fi
            ADMIN_AUTH="Bearer $ADMIN_KEY"
            WRITE_AUTH="Basic $(printf '%s:' "$WRITE_KEY" | base64 -w0)"
        fi
    done
    HERALD_URL=${NODE_URLS[0]}
    log "$name: $n node(s) ${NODE_URLS[*]} on $store"
}
stop_nodes() {
    local pid
    for pid in "${NODE_PIDS[@]}"; do stop_pid "$pid"; done
    NODE_PIDS=() NODE_URLS=()
}
# sum_metric NAME [LABELS]: the sample summed over the nodes
sum_metric() {
    local s=0 u v
    for u in "${NODE_URLS[@]}"; do
        v=$(HERALD_URL=$u metric "$@")
        s=$((s + ${v%.*}))
    done
    echo "$s"
}

# fresh_db NAME: drop and create database NAME, print its DSN
fresh_db() {
    psql_q "DROP DATABASE IF EXISTS $1" >/dev/null
    psql_q "CREATE DATABASE $1" >/dev/null
    echo "$PG_BASE/$1"
}

# ---- parallel wrk ----------------------------------------------------------------------------
# par_wrk NAME MODE AUTH DURATION PATH URL... : one wrk -t1 -c(BENCH_CONNS/n) per URL, at
# once, results summed. Server CPU: the pids in SRV_PIDS; postgres CPU: pg_pids when DB is
# set, plus xact_commit and wait-event samples of database DB. Sets
#   P_requests P_bad P_sock P_rps P_p50_ms P_p99_ms (worst of the wrks)
#   P_cpu_server P_cpu_pg P_cpu_wrk P_cpu_machine P_commits_ps P_waits
par_wrk() {
    local name=$1 mode=$2 auth=$3 d=$4 path=$5
    shift 5
    local urls=("$@") n=$# c i s0 s1 g0 g1 m0 m1 x0 x1 t0 t1 out line kv sampler
    c=$((BENCH_CONNS / n))
    s0=$(proc_ticks "${SRV_PIDS[@]}")
    g0=0; x0=0
    if [ -n "${DB:-}" ]; then
        declare -gA PGT0=()
        for i in $(pg_pids); do PGT0[$i]=$(proc_ticks "$i"); done
        x0=$(psql_q "SELECT xact_commit FROM pg_stat_database WHERE datname = '$DB'")
        ( while :; do
            # one line per active backend: its wait (or CPU), and for a Lock wait the
            # start of its statement (whitespace squeezed), after a tab
            psql_q "SELECT coalesce(wait_event_type || ':' || wait_event, 'CPU') ||
                           CASE WHEN wait_event_type = 'Lock' THEN E'\t' ||
                                left(regexp_replace(query, '\s+', ' ', 'g'), 70) ELSE '' END
                    FROM pg_stat_activity
                    WHERE datname = '$DB' AND state = 'active' AND pid <> pg_backend_pid()" 2>/dev/null
            sleep 0.5
          done >"$BENCH_TMP/$name.waits" ) &
        sampler=$!
    fi
    m0=$(machine_ticks)
    t0=$(date +%s.%N)
    log "wrk $name: $n x (-t1 -c$c -d${d}s) $mode"
    for i in $(seq 0 $((n - 1))); do
        out=$BENCH_TMP/$name.$i.wrk
        (
            BENCH_MODE=$mode BENCH_AUTH=$auth BENCH_RUN=$name-$i \
                BENCH_USER_OFFSET=$(( PG_SAME_USERS == 1 ? 0 : i * 10000 / n )) \
                wrk -t1 -c"$c" -d"${d}s" --latency --timeout 10s -s "$BENCH_HOME/wrk.lua" \
                "${urls[$i]}$path" >"$out" 2>&1
            times >"$out.times"
        ) &
        PAR[i]=$!
    done
    for i in $(seq 0 $((n - 1))); do wait "${PAR[i]}" || true; done
    t1=$(date +%s.%N)
    m1=$(machine_ticks)
    s1=$(proc_ticks "${SRV_PIDS[@]}")
    P_cpu_pg=0 P_commits_ps=0 P_waits="" P_lock_pct=0 P_lock_stmts=""
    if [ -n "${DB:-}" ]; then
        kill "$sampler" 2>/dev/null; wait "$sampler" 2>/dev/null || true
        x1=$(psql_q "SELECT xact_commit FROM pg_stat_database WHERE datname = '$DB'")
        # the run's backends (herald connects lazily: most start during the run) and the
        # shared background processes; not the other databases' backends (shared cluster)
        g1=0
        for i in $(psql_q "SELECT pid FROM pg_stat_activity WHERE datname = '$DB' AND pid <> pg_backend_pid()
                           OR backend_type NOT IN ('client backend', 'autovacuum worker')"); do
            g1=$((g1 + $(proc_ticks "$i") - ${PGT0[$i]:-0}))
        done
        P_cpu_pg=$(awk -v a="$g0" -v b="$g1" -v t0="$t0" -v t1="$t1" -v hz="$CLK_TCK" 'BEGIN{printf "%.2f", (b-a)/hz/(t1-t0)}')
        P_commits_ps=$(awk -v a="$x0" -v b="$x1" -v t0="$t0" -v t1="$t1" 'BEGIN{printf "%.0f", (b-a)/(t1-t0)}')
        # top wait events: share of samples of active backends
        P_waits=$(cut -f1 "$BENCH_TMP/$name.waits" | sort | uniq -c | sort -rn | head -4 |
            awk -v t="$(wc -l <"$BENCH_TMP/$name.waits")" '{a[NR]=$2; c[NR]=$1} END{for(i=1;i<=NR;i++) printf "%s%s %d%%", (i>1?", ":""), a[i], 100*c[i]/t}')
        # share of all samples in Lock waits, and the statements behind them
        P_lock_pct=$(awk -F'\t' '{t++} /^Lock:/{l++} END{printf "%d", t ? 100*l/t : 0}' "$BENCH_TMP/$name.waits")
        P_lock_stmts=$({ grep '^Lock:' "$BENCH_TMP/$name.waits" || true; } | sort | uniq -c | sort -rn | head -3 |
            awk -v t="$(wc -l <"$BENCH_TMP/$name.waits")" '{c=$1; $1=""; sub(/^ /, ""); gsub(/"/, "'"'"'"); printf "%s%d%% %s", (NR>1?" | ":""), 100*c/t, $0}')
    fi
    P_requests=0 P_bad=0 P_sock=0 P_rps=0 P_p50_ms=0 P_p99_ms=0 P_cpu_wrk=0
    for i in $(seq 0 $((n - 1))); do
        out=$BENCH_TMP/$name.$i.wrk
        line=$(grep '^WRK ' "$out") || { cat "$out" >&2; die "wrk $name.$i failed"; }
        for kv in ${line#WRK }; do eval "W_${kv%%=*}=${kv#*=}"; done
        P_requests=$((P_requests + W_requests))
        P_bad=$((P_bad + W_bad_status))
        P_sock=$((P_sock + W_connect + W_read + W_write + W_timeout))
        P_rps=$(awk -v a="$P_rps" -v n="$W_requests" -v d="$W_duration_us" 'BEGIN{printf "%.0f", a + n/(d/1e6)}')
        P_p50_ms=$(awk -v a="$P_p50_ms" -v x="$W_p50_us" 'BEGIN{x/=1000; printf "%.2f", (x>a?x:a)}')
        P_p99_ms=$(awk -v a="$P_p99_ms" -v x="$W_p99_us" 'BEGIN{x/=1000; printf "%.2f", (x>a?x:a)}')
        P_cpu_wrk=$(awk -v a="$P_cpu_wrk" -v d="$d" '
            function sec(s,  m) { m = s; sub(/m.*/, "", m); sub(/^[0-9]+m/, "", s); sub(/s$/, "", s); return m*60 + s }
            NR == 2 { printf "%.2f", a + (sec($1) + sec($2)) / d }' "$out.times")
    done
    P_cpu_server=$(awk -v a="$s0" -v b="$s1" -v t0="$t0" -v t1="$t1" -v hz="$CLK_TCK" 'BEGIN{printf "%.2f", (b-a)/hz/(t1-t0)}')
    P_cpu_machine=$(echo "$m0 $m1" | awk -v t0="$t0" -v t1="$t1" -v hz="$CLK_TCK" '{printf "%.2f", ($3-$1)/hz/(t1-t0)}')
    log "wrk $name: $P_requests requests, $P_rps/s, p50 ${P_p50_ms}ms p99 ${P_p99_ms}ms, bad $P_bad, socket errors $P_sock; cpu: herald $P_cpu_server postgres $P_cpu_pg wrk $P_cpu_wrk machine $P_cpu_machine; commits/s $P_commits_ps; waits: $P_waits; in Lock waits: $P_lock_pct% ($P_lock_stmts)"
}

# record_par PREFIX
record_par() {
    local p=$1
    result "$p.requests" "$P_requests"
    result "$p.rps" "$P_rps"
    result "$p.p50_ms" "$P_p50_ms"
    result "$p.p99_ms" "$P_p99_ms"
    result "$p.bad_status" "$P_bad"
    result "$p.socket_errors" "$P_sock"
    result "$p.cpu_server" "$P_cpu_server"
    result "$p.cpu_pg" "$P_cpu_pg"
    result "$p.cpu_wrk" "$P_cpu_wrk"
    result "$p.cpu_machine" "$P_cpu_machine"
    result "$p.pg_commits_ps" "$P_commits_ps"
    result "$p.pg_waits" "\"$P_waits\""
    result "$p.pg_lock_pct" "$P_lock_pct"
    result "$p.pg_lock_stmts" "\"$P_lock_stmts\""
}

# ---- baselines ------------------------------------------------------------------------------
start_nginx
mapfile -t SRV_PIDS < <(nginx_pids)
DB=""
par_wrk pg-nginx-track track "Basic dGVzdDo=" "$PG_DURATION" /v1/track "$NGINX_URL"
record_par pg.nginx.track
par_wrk pg-nginx-batch batch "Basic dGVzdDo=" "$PG_DURATION" /v1/batch "$NGINX_URL"
record_par pg.nginx.batch
result pg.nginx.batch.eps "$((P_rps * BATCH))"
stop_pid "$NGINX_PID"

bench_tool curl_baseline
start_sink 0
line=$("$BENCH_TMP/curl_baseline" "$SINK_URL/hook" 4 16) || die "curl_baseline failed: $line"
result pg.curl.sink.rps "$(echo "$line" | sed -n 's/.* rps=\([0-9]*\).*/\1/p')"
sink_reset

# ---- cases ------------------------------------------------------------------------------------
# ingest_case STORE_KEY N STORE MODE EVENT PER
ingest_case() {
    local key=$1 n=$2 store=$3 mode=$4 ev=$5 per=$6 p ok count waited
    p=pg.$key.$mode
    start_nodes "$key-$mode" "$n" "$store"
    SRV_PIDS=("${NODE_PIDS[@]}")
    par_wrk "$key-$mode" "$mode" "$WRITE_AUTH" "$PG_DURATION" "/v1/$mode" "${NODE_URLS[@]}"
    record_par "$p"
    result "$p.eps" "$((P_rps * per))"
    waited=$(wait_queue_empty "$PG_DRAIN_MAX")
    result "$p.drain_s" "$waited"
    ok=$(sum_metric herald_http_requests_total 'route="segment.v1",status="200"')
    count=$(hget "/catalog/events?search=Bench" |
        json - "(j.items.find(x => x.name === 'track/$ev') || {count: 0}).count")
    result "$p.herald_2xx_events" "$((ok * per))"
    result "$p.catalog_events" "$count"
    if [ "$count" = "$((ok * per))" ] && [ "$ok" -ge "$((P_requests - P_bad))" ]; then
        result "$p.check" ok
    else
        result "$p.check" MISMATCH
    fi
    stop_nodes
}

# send_case STORE_KEY N STORE
send_case() {
    local key=$1 n=$2 store=$3 p=pg.$1.send accepted st delivered waited
    start_nodes "$key-send" "$n" "$store"
    SRV_PIDS=("${NODE_PIDS[@]}")
    hpost /providers "{\"provider\":\"webhook\",\"settings\":{\"url\":\"$SINK_URL/hook\"}}" >/dev/null
    sink_reset
    par_wrk "$key-send" send "$ADMIN_AUTH" "$SEND_PG_DURATION" /send "${NODE_URLS[@]}"
    record_par "$p"
    waited=$(wait_queue_empty "$PG_DRAIN_MAX")
    result "$p.drain_s" "$waited"
    accepted=$(sum_metric herald_http_requests_total 'route="send",status="202"')
    st=$(sink_stats)
    delivered=$(echo "$st" | json - j.count)
    result "$p.accepted" "$accepted"
    result "$p.delivered" "$delivered"
    result "$p.delivered_ps" "$(echo "$st" | json - '(j.count / ((j.last_us - j.min_send_us) / 1e6)).toFixed(0)')"
    if [ "$accepted" = "$delivered" ]; then result "$p.check" ok; else result "$p.check" MISMATCH; fi
    stop_nodes
}

DB=""
ingest_case sqlite 1 "sqlite:$BENCH_TMP/sqlite-track.db" track "Bench Track" 1
ingest_case sqlite 1 "sqlite:$BENCH_TMP/sqlite-batch.db" batch "Bench Batch" "$BATCH"
send_case sqlite 1 "sqlite:$BENCH_TMP/sqlite-send.db"
for n in $PG_NODES; do
    DB=bench_n${n}_track; ingest_case "n$n" "$n" "$(fresh_db "$DB")" track "Bench Track" 1
    DB=bench_n${n}_batch; ingest_case "n$n" "$n" "$(fresh_db "$DB")" batch "Bench Batch" "$BATCH"
    DB=bench_n${n}_send;  send_case "n$n" "$n" "$(fresh_db "$DB")"
done
DB=""
for n in $PG_NODES; do
    for c in track batch send; do psql_q "DROP DATABASE IF EXISTS bench_n${n}_$c" >/dev/null || true; done
done
