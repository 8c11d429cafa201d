# shellcheck shell=bash disable=SC2034,SC2154
# lib.sh: helpers shared by the benchmark scripts (sourced, not run).
#
# Every process started here is recorded and stopped by its pid on exit (trap), and the
# temp dir is removed (BENCH_KEEP=1 keeps it). Results are printed as `key=value` lines
# and, when BENCH_OUT names a file, appended to it (bench/run.sh reads them).
#
# Settings (environment):
#   HERALD_BIN      the herald binary (default: ./herald at the repo root)
#   BENCH_DURATION  seconds per wrk run (default 10)
#   BENCH_THREADS   wrk threads (default 2)
#   BENCH_CONNS     wrk connections (default 64)
#   BENCH_OUT       file to append key=value results to
#   BENCH_KEEP=1    keep the temp dir (logs, stores, wrk output)

set -euo pipefail

BENCH_HOME=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=$(cd "$BENCH_HOME/.." && pwd)
HERALD_BIN=${HERALD_BIN:-$REPO_ROOT/herald}
BENCH_DURATION=${BENCH_DURATION:-10}
BENCH_THREADS=${BENCH_THREADS:-2}
BENCH_CONNS=${BENCH_CONNS:-64}
BENCH_OUT=${BENCH_OUT:-}
CLK_TCK=$(getconf CLK_TCK)

BENCH_PIDS=()
BENCH_TMP=$(mktemp -d "${TMPDIR:-/tmp}/herald-bench.XXXXXX")

bench_cleanup() {
    local pid
    for pid in "${BENCH_PIDS[@]}"; do
        kill -TERM "$pid" 2>/dev/null || true
    done
    for pid in "${BENCH_PIDS[@]}"; do
        # wait up to 10 s each, then SIGKILL
        for _ in $(seq 1 100); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    BENCH_PIDS=()
    if [ "${BENCH_KEEP:-0}" = 1 ]; then
        echo "bench: kept $BENCH_TMP" >&2
    else
        rm -rf "$BENCH_TMP"
    fi
}
trap bench_cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

die() {
    echo "bench: $*" >&2
    exit 1
}

log() { echo "# $*" >&2; }

need() {
    local c
    for c in "$@"; do
        command -v "$c" >/dev/null 2>&1 ||
            die "$c not found (Debian: apt-get install -y wrk nginx-light curl nodejs libcurl4-openssl-dev)"
    done
}

# bench_tool NAME: $BENCH_TMP/NAME built from bench/NAME.c: a copy of build/bench/NAME
# when `make bench` built it from the current source, else compiled here.
bench_tool() {
    local name=$1 pre=$REPO_ROOT/build/bench/$1 libs=""
    if [ "$name" = curl_baseline ]; then libs=-lcurl; fi
    if [ -x "$pre" ] && [ "$pre" -nt "$BENCH_HOME/$name.c" ]; then
        cp "$pre" "$BENCH_TMP/$name"
    else
        # shellcheck disable=SC2086
        cc -O2 -o "$BENCH_TMP/$name" "$BENCH_HOME/$name.c" $libs ||
            die "cannot build bench/$name.c (apt-get install -y libcurl4-openssl-dev)"
    fi
}

# result KEY VALUE: print and record one figure.
result() {
    echo "$1=$2"
    if [ -n "$BENCH_OUT" ]; then echo "$1=$2" >>"$BENCH_OUT"; fi
}

# stop_pid PID: SIGTERM, wait (10 s, then SIGKILL), forget it.
stop_pid() {
    local pid=$1
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 100); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    forget_pid "$pid"
}

# forget_pid PID: drop PID from the processes stopped on exit (it ended and was waited for).
forget_pid() {
    local pid=$1 keep=() p
    for p in "${BENCH_PIDS[@]}"; do [ "$p" = "$pid" ] || keep+=("$p"); done
    BENCH_PIDS=("${keep[@]+"${keep[@]}"}")
}

free_port() {
    node -e 'const s=require("net").createServer();s.listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})'
}

# wait_http URL [SECONDS]: until URL answers 2xx.
wait_http() {
    local url=$1 t=${2:-15} i
    for i in $(seq 1 $((t * 20))); do
        curl -fsS -o /dev/null --max-time 1 "$url" 2>/dev/null && return 0
        sleep 0.05
    done
    die "$url did not answer within ${t}s"
}

# json FILE|- 'JS expression over j': evaluate with node, print the result.
json() {
    local src=$1 expr=$2
    if [ "$src" = - ]; then src=/dev/stdin; fi
    node -e "const j=JSON.parse(require('fs').readFileSync('$src','utf8')); const r=($expr); console.log(typeof r==='object'?JSON.stringify(r):r)"
}

# ---- CPU accounting ------------------------------------------------------------------

# proc_ticks PID...: utime+stime (clock ticks, all threads) summed over the pids.
proc_ticks() {
    local sum=0 pid f
    for pid in "$@"; do
        f=$(cat "/proc/$pid/stat" 2>/dev/null) || continue
        f=${f##*) }                       # fields from 3 on (the name may hold spaces)
        # shellcheck disable=SC2086 # split into fields on purpose
        set -- $f
        sum=$((sum + ${12} + ${13}))      # fields 14 and 15: utime, stime
    done
    echo "$sum"
}

# machine_ticks: "busy total" clock ticks of all CPUs from /proc/stat.
machine_ticks() {
    awk '/^cpu /{t=0; for(i=2;i<=NF;i++) t+=$i; print t-$5-$6, t}' /proc/stat
}

# ---- herald ----------------------------------------------------------------------------

# start_herald NAME [extra serve flags...]: a fresh store in $BENCH_TMP/NAME (or the store
# HERALD_STORE_DSN names, e.g. a seeded one), on a free port. Sets HERALD_PID, HERALD_URL, ADMIN_KEY, WRITE_KEY, WRITE_AUTH, ADMIN_AUTH.
start_herald() {
    local name=$1 dir port
    shift
    [ -x "$HERALD_BIN" ] || die "no herald binary at $HERALD_BIN (run make)"
    dir=$BENCH_TMP/$name
    mkdir -p "$dir"
    port=$(free_port)
    (cd "$dir" && exec "$HERALD_BIN" serve --listen "127.0.0.1:$port" --store "${HERALD_STORE_DSN:-sqlite:$dir/herald.db}" \
        --log-level warn --egress-allow 127.0.0.0/8 "$@" >"$dir/stdout" 2>"$dir/stderr") &
    HERALD_PID=$!
    BENCH_PIDS+=("$HERALD_PID")
    HERALD_URL=http://127.0.0.1:$port
    wait_http "$HERALD_URL/healthz" 60
    for _ in $(seq 1 100); do
        grep -q '^HERALD_WRITE_KEY=' "$dir/stdout" && break
        sleep 0.05
    done
    ADMIN_KEY=$(sed -n 's/^HERALD_ADMIN_KEY=//p' "$dir/stdout")
    WRITE_KEY=$(sed -n 's/^HERALD_WRITE_KEY=//p' "$dir/stdout")
    if [ -z "$ADMIN_KEY" ] || [ -z "$WRITE_KEY" ]; then die "herald printed no keys ($dir/stdout)"; fi
    ADMIN_AUTH="Bearer $ADMIN_KEY"
    WRITE_AUTH="Basic $(printf '%s:' "$WRITE_KEY" | base64 -w0)"
    log "herald $name: pid $HERALD_PID at $HERALD_URL, store ${HERALD_STORE_DSN:-$dir}"
}

# hget PATH: GET with the admin key, body on stdout.
hget() {
    curl -fsS --max-time 30 -H "Authorization: $ADMIN_AUTH" "$HERALD_URL$1"
}

# hpost PATH JSON: POST with the admin key.
hpost() {
    curl -fsS --max-time 30 -H "Authorization: $ADMIN_AUTH" -H 'Content-Type: application/json' \
        -d "$2" "$HERALD_URL$1"
}

# metric NAME [LABELS]: the value of one sample of /metrics (LABELS: the exact text
# inside the braces, e.g. 'route="send",status="202"'); 0 when absent.
metric() {
    local name=$1 labels=${2:-}
    local page
    # read the whole page first: an awk that exits early would make curl fail (exit 23)
    page=$(curl -fsS --max-time 10 "$HERALD_URL/metrics") || page=""
    printf '%s\n' "$page" | awk -v n="$name" -v l="$labels" '
        { key = (l == "" ? n : n "{" l "}") }
        $1 == key && !found { print $2; found = 1 }
        END { if (!found) print 0 }'
}

# queue_pending: jobs queued or leased (not dead), from /admin/queue.
queue_pending() {
    hget /admin/queue | json - 'j.jobs.filter(x => x.state !== "dead").reduce((a, x) => a + x.count, 0)'
}

# wait_queue_empty [SECONDS]: until no job is pending; prints the seconds waited.
wait_queue_empty() {
    local t=${1:-120} start now n
    start=$(date +%s.%N)
    while :; do
        n=$(queue_pending)
        [ "$n" = 0 ] && break
        now=$(date +%s.%N)
        if awk -v a="$start" -v b="$now" -v t="$t" 'BEGIN{exit !(b-a > t)}'; then
            log "queue still has $n pending jobs after ${t}s"
            break
        fi
        sleep 0.2
    done
    awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f\n", b-a}'
}

# ---- nginx ------------------------------------------------------------------------------

# start_nginx: nginx answering 200 "ok" to everything on a free port, 2 workers.
# Sets NGINX_PID, NGINX_URL.
start_nginx() {
    local dir=$BENCH_TMP/nginx port nginx_bin
    nginx_bin=$(command -v nginx || echo /usr/sbin/nginx)
    [ -x "$nginx_bin" ] || die "nginx not found (apt-get install -y nginx-light)"
    mkdir -p "$dir/tmp"
    port=$(free_port)
    cat >"$dir/nginx.conf" <<EOF
worker_processes 2;
daemon off;
master_process on;
pid $dir/nginx.pid;
error_log $dir/error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    keepalive_requests 1000000;
    keepalive_timeout 65s;
    client_body_temp_path $dir/tmp/body;
    proxy_temp_path $dir/tmp/proxy;
    fastcgi_temp_path $dir/tmp/fastcgi;
    uwsgi_temp_path $dir/tmp/uwsgi;
    scgi_temp_path $dir/tmp/scgi;
    server {
        listen 127.0.0.1:$port;
        location / {
            default_type text/plain;
            return 200 "ok";
        }
    }
}
EOF
    "$nginx_bin" -p "$dir" -c "$dir/nginx.conf" -e "$dir/error.log" 2>"$dir/stderr" &
    NGINX_PID=$!
    BENCH_PIDS+=("$NGINX_PID")
    NGINX_URL=http://127.0.0.1:$port
    wait_http "$NGINX_URL/" 10
    log "nginx: pid $NGINX_PID at $NGINX_URL"
}

# nginx_pids: the master and its workers.
nginx_pids() {
    echo "$NGINX_PID"
    cat /proc/"$NGINX_PID"/task/*/children 2>/dev/null | tr ' ' '\n' | grep . || true
}

# ---- wrk ---------------------------------------------------------------------------------

# run_wrk NAME URL MODE AUTH [SERVER_PIDS...]: one wrk run with bench/wrk.lua. Sets
#   W_requests W_duration_us W_bad_status W_connect W_read W_write W_timeout
#   W_p50_us W_p90_us W_p99_us W_max_us W_rps
#   W_cpu_server W_cpu_wrk W_cpu_busy  (cores used on average: server pids, wrk, machine)
# Extra wrk environment: BENCH_BATCH, BENCH_RUN, BENCH_DELAY_MS, and WRK_THREADS /
# WRK_CONNS / WRK_DURATION to override the defaults for one run.
run_wrk() {
    local name=$1 url=$2 mode=$3 auth=$4 out line
    out=$BENCH_TMP/$name.wrk
    shift 4
    local t=${WRK_THREADS:-$BENCH_THREADS} c=${WRK_CONNS:-$BENCH_CONNS} d=${WRK_DURATION:-$BENCH_DURATION}
    local s0 s1 m0 m1 kv
    s0=$(proc_ticks "$@")
    m0=$(machine_ticks)
    log "wrk $name: -t$t -c$c -d${d}s $mode $url"
    (
        BENCH_MODE=$mode BENCH_AUTH=$auth BENCH_RUN=${BENCH_RUN:-$name} \
            wrk -t"$t" -c"$c" -d"${d}s" --latency --timeout 10s -s "$BENCH_HOME/wrk.lua" "$url" >"$out" 2>&1
        times >"$out.times" # second line: the children's (wrk's) user and system time
    )
    s1=$(proc_ticks "$@")
    m1=$(machine_ticks)
    line=$(grep '^WRK ' "$out") || { cat "$out" >&2; die "wrk $name failed"; }
    for kv in ${line#WRK }; do
        eval "W_${kv%%=*}=${kv#*=}"
    done
    W_rps=$(awk -v n="$W_requests" -v d="$W_duration_us" 'BEGIN{printf "%.0f", n/(d/1e6)}')
    W_cpu_server=$(awk -v a="$s0" -v b="$s1" -v d="$W_duration_us" -v hz="$CLK_TCK" 'BEGIN{printf "%.2f", (b-a)/hz/(d/1e6)}')
    W_cpu_wrk=$(awk -v d="$W_duration_us" '
        function sec(s,  m) { m = s; sub(/m.*/, "", m); sub(/^[0-9]+m/, "", s); sub(/s$/, "", s); return m*60 + s }
        NR == 2 { printf "%.2f", (sec($1) + sec($2)) / (d/1e6) }' "$out.times")
    W_cpu_busy=$(echo "$m0 $m1" | awk -v d="$W_duration_us" -v hz="$CLK_TCK" '{printf "%.2f", ($3-$1)/hz/(d/1e6)}')
    log "wrk $name: $W_requests requests, $W_rps/s, p50 ${W_p50_us}us p99 ${W_p99_us}us, bad status $W_bad_status, socket errors $((W_connect + W_read + W_write + W_timeout)); cpu: server $W_cpu_server wrk $W_cpu_wrk machine $W_cpu_busy (cores)"
}

# record_wrk PREFIX [EVENTS_PER_REQUEST]: result lines for the last run_wrk.
record_wrk() {
    local p=$1 per=${2:-0}
    result "$p.requests" "$W_requests"
    result "$p.rps" "$W_rps"
    result "$p.p50_ms" "$(awk -v x="$W_p50_us" 'BEGIN{printf "%.2f", x/1000}')"
    result "$p.p99_ms" "$(awk -v x="$W_p99_us" 'BEGIN{printf "%.2f", x/1000}')"
    result "$p.bad_status" "$W_bad_status"
    result "$p.socket_errors" "$((W_connect + W_read + W_write + W_timeout))"
    result "$p.cpu_server" "$W_cpu_server"
    result "$p.cpu_wrk" "$W_cpu_wrk"
    result "$p.cpu_machine" "$W_cpu_busy"
    if [ "$per" != 0 ]; then
        result "$p.eps" "$(awk -v r="$W_rps" -v n="$per" 'BEGIN{printf "%.0f", r*n}')"
    fi
}

# ratio A B: A/B with 2 decimals.
ratio() { awk -v a="$1" -v b="$2" 'BEGIN{ if (b == 0) print "n/a"; else printf "%.2f", a/b }'; }

# flow_setup EVENT: the flow bench's definitions on the running herald: the webhook
# provider to the sink, a published template with body "ts:{{data.properties.ts}}", and
# two automations (flow-a, flow-b) of one send step each linked to EVENT. Sets FLOW_TPL.
flow_setup() {
    local event=$1 a
    hpost /providers "{\"provider\":\"webhook\",\"settings\":{\"url\":\"$SINK_URL/hook\"}}" >/dev/null
    FLOW_TPL=$(hpost /notifications '{"notification":{"name":"Flow","content":{"title":"Flow event","body":"ts:{{data.properties.ts}}"}}}' |
        json - j.id)
    hpost "/notifications/$FLOW_TPL/publish" '{}' >/dev/null
    for a in flow-a flow-b; do
        curl -fsS --max-time 30 -X PUT -H "Authorization: $ADMIN_AUTH" -H 'Content-Type: application/json' \
            "$HERALD_URL/automations/$a" \
            -d "{\"name\":\"$a\",\"steps\":[{\"action\":\"send\",\"template\":\"$FLOW_TPL\",\"recipient\":\"refs.data.userId\"}]}" >/dev/null
        hpost /links "{\"event\":\"$event\",\"automation_id\":\"$a\"}" >/dev/null
    done
}

# ---- the sink ----------------------------------------------------------------------------

# start_sink [DELAY_MS]: bench/sink.c on a free port (answering each request DELAY_MS ms
# after it arrived when given). Sets SINK_PID, SINK_URL; sink_stats / sink_reset use it.
start_sink() {
    local delay=${1:-0} port
    bench_tool sink
    port=$(free_port)
    if [ "$delay" -gt 0 ]; then
        "$BENCH_TMP/sink" --delay-ms "$delay" "$port" &
    else
        "$BENCH_TMP/sink" "$port" &
    fi
    SINK_PID=$!
    BENCH_PIDS+=("$SINK_PID")
    SINK_URL=http://127.0.0.1:$port
    wait_http "$SINK_URL/stats" 10
    log "sink: pid $SINK_PID at $SINK_URL (answers after ${delay} ms)"
}
sink_stats() { curl -fsS --max-time 30 "$SINK_URL/stats"; }
sink_reset() { curl -fsS --max-time 10 -X POST "$SINK_URL/reset" >/dev/null; }

# ---- the peer baseline: BullMQ on redis-server ----------------------------------------------

# bullmq_missing: empty when redis-server and bench/node_modules (bullmq, ioredis) are
# there, else what is missing and how to get it.
bullmq_missing() {
    local m=""
    command -v redis-server >/dev/null 2>&1 || m="redis-server (apt-get install -y redis-server)"
    if [ ! -f "$BENCH_HOME/node_modules/bullmq/package.json" ] || [ ! -f "$BENCH_HOME/node_modules/ioredis/package.json" ]; then
        m="${m:+$m; }bullmq (npm ci in bench/)"
    fi
    echo "$m"
}

# start_redis NAME [redis-server options...]: a redis-server of our own on a free loopback
# port, its files in $BENCH_TMP/NAME, no RDB snapshots (never the system's service).
# Sets REDIS_PID, REDIS_PORT.
start_redis() {
    local name=$1 dir
    shift
    dir=$BENCH_TMP/$name
    mkdir -p "$dir"
    REDIS_PORT=$(free_port)
    redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --dir "$dir" --save "" \
        --daemonize no --logfile "$dir/redis.log" --maxmemory-policy noeviction "$@" &
    REDIS_PID=$!
    BENCH_PIDS+=("$REDIS_PID")
    for _ in $(seq 1 100); do
        redis-cli -p "$REDIS_PORT" ping 2>/dev/null | grep -q PONG && break
        sleep 0.1
    done
    redis-cli -p "$REDIS_PORT" ping 2>/dev/null | grep -q PONG || die "redis-server did not start ($dir/redis.log)"
    log "redis $name: pid $REDIS_PID on 127.0.0.1:$REDIS_PORT $*"
}

# run_bullmq PREFIX [bench/bullmq.mjs options...]: BullMQ against $REDIS_PORT, POSTing to
# the sink (reset first); records PREFIX.* (bullmq.mjs's figures, the sink's count and
# enqueue-to-POST latency, CPU of redis and of the machine). Sets BULL_JOBS_PS.
run_bullmq() {
    local p=$1 out kv st r0 r1 m0 m1 t0 t1
    shift
    out=$BENCH_TMP/$p.out
    sink_reset
    r0=$(proc_ticks "$REDIS_PID")
    m0=$(machine_ticks)
    t0=$(date +%s.%N)
    log "bullmq $p: $*"
    node "$BENCH_HOME/bullmq.mjs" --redis "$REDIS_PORT" --sink "$SINK_URL/hook" "$@" >"$out" ||
        die "bench/bullmq.mjs failed ($out)"
    t1=$(date +%s.%N)
    r1=$(proc_ticks "$REDIS_PID")
    m1=$(machine_ticks)
    while IFS= read -r kv; do
        case $kv in *=*) result "$p.${kv%%=*}" "${kv#*=}" ;; esac
    done <"$out"
    BULL_JOBS_PS=$(sed -n 's/^jobs_ps=//p' "$out")
    st=$(sink_stats)
    result "$p.delivered" "$(echo "$st" | json - j.count)"
    result "$p.e2e_p50_ms" "$(echo "$st" | json - '(j.p50_us/1000).toFixed(2)')"
    result "$p.e2e_p99_ms" "$(echo "$st" | json - '(j.p99_us/1000).toFixed(2)')"
    result "$p.cpu_redis" "$(awk -v a="$r0" -v b="$r1" -v t0="$t0" -v t1="$t1" -v hz="$CLK_TCK" 'BEGIN{printf "%.2f", (b-a)/hz/(t1-t0)}')"
    result "$p.cpu_machine" "$(echo "$m0 $m1" | awk -v t0="$t0" -v t1="$t1" -v hz="$CLK_TCK" '{printf "%.2f", ($3-$1)/hz/(t1-t0)}')"
    # every completed job POSTed once (a POST whose answer came after the wait counts at
    # the sink only), none failed
    if [ "$(sed -n 's/^failed=//p' "$out")" = 0 ] &&
        [ "$(echo "$st" | json - j.count)" -ge "$(sed -n 's/^completed=//p' "$out")" ]; then
        result "$p.check" ok
    else
        result "$p.check" MISMATCH
    fi
}
