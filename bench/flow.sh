#!/usr/bin/env bash
# flow.sh: Segment events in -> webhooks out, end to end. herald with a webhook provider
# pointed at the sink (bench/sink.c), a published template whose body is
# "ts:{{data.properties.ts}}", and two automations of one send step each (that template,
# recipient refs.data.userId) linked to track/Flow Event. wrk POSTs /v1/track (BENCH_MODE
# flow: the ~700 B track event named "Flow Event", unique messageIds, properties.ts =
# send time in us, CLOCK_REALTIME as the sink uses); every event must come out as exactly
# two deliveries at the sink.
#
#   nginx.flow       the same POST bodies to nginx (fixed 200)               (baseline)
#   flow.curl.sink   requests/s libcurl gets from the sink (16 in flight)    (baseline)
#   flow.sat         saturating load (wrk -t2 -c64, FLOW_DURATION s): events accepted/s,
#                    then after the queue drains: deliveries/s and events processed end to
#                    end per second (both over first send -> last delivery), event-to-
#                    delivery p50/p90/p99 (mostly the backlog draining)
#   flow.sat.written_kb_per_event  KiB herald wrote to files (/proc/PID/io write_bytes:
#                    WAL frames and checkpoints) per event of the saturating run
#   flow.sat.cpu_us_per_event  herald's CPU time (user + system) per event, same span
#   flow.light       light paced load (wrk -t1 -c2, 40 ms between requests per connection:
#                    at most ~50 events/s, FLOW_LIGHT_DURATION s): latency without a backlog
#   flow.paced       ~1,000 events/s paced (wrk -t2 -c25, 20 ms between requests per
#                    connection: 25 / (20 ms + the answer), 1,000 events/s while answers
#                    take 5 ms, more when faster: the issue-14 latency point;
#                    FLOW_LIGHT_DURATION s): the events/s reached and event to delivery
#                    p50/p99 at that rate
#
# Check per run: deliveries at the sink = 2 x events herald answered 200 for, each with a
# timestamp, and herald's own sent-deliveries count agrees.
#
# Usage: bench/flow.sh   (settings: see bench/lib.sh; FLOW_DURATION (default 10),
#        FLOW_LIGHT_DURATION (10), FLOW_DRAIN_MAX (seconds to wait for the backlog, 900);
#        HERALD_ARGS: extra `herald serve` flags)
# shellcheck source=bench/lib.sh disable=SC2154
source "$(dirname "$0")/lib.sh"
need wrk curl node cc

# lib.sh's metric pipes curl into an awk that exits at the first match: with the
# larger /metrics of this run curl then fails writing (23) and, under pipefail, so does
# the script. Read the whole page first.
metric() {
    local name=$1 labels=${2:-} page
    page=$(curl -fsS --max-time 10 "$HERALD_URL/metrics")
    awk -v n="$name" -v l="$labels" '
        { key = (l == "" ? n : n "{" l "}") }
        $1 == key { print $2; found = 1; exit }
        END { if (!found) print 0 }' <<<"$page"
}

FLOW_DURATION=${FLOW_DURATION:-10}
FLOW_LIGHT_DURATION=${FLOW_LIGHT_DURATION:-10}
FLOW_DRAIN_MAX=${FLOW_DRAIN_MAX:-900}
EVENT="track/Flow Event"

# ---- baselines: nginx with the same bodies, libcurl to the sink ---------------------------
start_nginx
mapfile -t NPIDS < <(nginx_pids)
WRK_DURATION=$FLOW_DURATION run_wrk nginx-flow "$NGINX_URL/v1/track" flow "Basic dGVzdDo=" "${NPIDS[@]}"
record_wrk nginx.flow 1
NGINX_RPS=$W_rps
stop_pid "$NGINX_PID"

bench_tool curl_baseline
start_sink 0

log "curl baseline: 5 s, 16 in flight"
line=$("$BENCH_TMP/curl_baseline" "$SINK_URL/hook" 5 16) || die "curl_baseline failed: $line"
CURL_RPS=$(echo "$line" | sed -n 's/.* rps=\([0-9]*\).*/\1/p')
result flow.curl.sink.rps "$CURL_RPS"
result flow.curl.sink.p50_ms "$(sink_stats | json - '(j.p50_us/1000).toFixed(2)')"
result flow.curl.sink.p99_ms "$(sink_stats | json - '(j.p99_us/1000).toFixed(2)')"
sink_reset

# ---- herald: provider, template, two automations linked to the event -----------------------
# shellcheck disable=SC2086
start_herald herald-flow ${HERALD_ARGS:-}
flow_setup "$EVENT"
log "template $FLOW_TPL, automations flow-a and flow-b linked to $EVENT"

# flow_phase PREFIX ACCEPTED_BEFORE SENT_BEFORE: wait for the queue to drain, then record
# the end-to-end figures for the events since the last sink reset. Sets FLOW_EPS, FLOW_DPS.
flow_phase() {
    local p=$1 before=$2 sent0=$3 waited accepted st delivered with_ts sent span
    waited=$(wait_queue_empty "$FLOW_DRAIN_MAX")
    result "$p.drain_s" "$waited"
    accepted=$(($(metric herald_http_requests_total 'route="segment.v1",status="200"') - before))
    sent=$(($(metric herald_deliveries_total 'outcome="sent"') - sent0))
    st=$(sink_stats)
    delivered=$(echo "$st" | json - j.count)
    with_ts=$(echo "$st" | json - j.with_ts)
    span=$(echo "$st" | json - '((j.last_us - j.min_send_us) / 1e6).toFixed(2)')
    FLOW_ACCEPTED=$accepted
    FLOW_EPS=$(awk -v n="$accepted" -v s="$span" 'BEGIN{printf "%.0f", (s > 0 ? n/s : 0)}')
    FLOW_DPS=$(awk -v n="$delivered" -v s="$span" 'BEGIN{printf "%.0f", (s > 0 ? n/s : 0)}')
    result "$p.accepted" "$accepted"
    result "$p.delivered" "$delivered"
    result "$p.herald_sent" "$sent"
    result "$p.span_s" "$span"
    result "$p.events_ps" "$FLOW_EPS"
    result "$p.deliveries_ps" "$FLOW_DPS"
    result "$p.e2e_p50_ms" "$(echo "$st" | json - '(j.p50_us/1000).toFixed(1)')"
    result "$p.e2e_p90_ms" "$(echo "$st" | json - '(j.p90_us/1000).toFixed(1)')"
    result "$p.e2e_p99_ms" "$(echo "$st" | json - '(j.p99_us/1000).toFixed(1)')"
    if [ "$delivered" = "$((2 * accepted))" ] && [ "$with_ts" = "$delivered" ] && [ "$sent" = "$delivered" ]; then
        result "$p.delivery_check" ok
    else
        result "$p.delivery_check" MISMATCH
    fi
}

# saturating run: events in as fast as herald takes them, the automations follow
tx0=$(metric herald_store_transactions_total)
c0=$(metric herald_store_commits_total)
# bytes herald's threads wrote to files (WAL frames, checkpoints into the database):
# /proc/PID/io write_bytes, counted as page-cache pages are dirtied
io_w() { awk '/^write_bytes:/ { print $2 }' "/proc/$1/io" 2>/dev/null || true; }
w0=$(io_w "$HERALD_PID")
h0=$(proc_ticks "$HERALD_PID")
m0=$(machine_ticks)
t0=$(date +%s.%N)
WRK_DURATION=$FLOW_DURATION BENCH_RUN=sat run_wrk flow-sat "$HERALD_URL/v1/track" flow "$WRITE_AUTH" "$HERALD_PID"
record_wrk flow.sat 1
result flow.sat.ratio_rps "$(awk -v a="$W_rps" -v b="$NGINX_RPS" 'BEGIN{ if (b == 0) print "n/a"; else printf "%.3f", a/b }')"
flow_phase flow.sat 0 0
h1=$(proc_ticks "$HERALD_PID")
m1=$(machine_ticks)
t1=$(date +%s.%N)
tx1=$(metric herald_store_transactions_total)
c1=$(metric herald_store_commits_total)
w1=$(io_w "$HERALD_PID")
result flow.sat.written_kb_per_event "$(awk -v a="$w0" -v b="$w1" -v n="$FLOW_ACCEPTED" 'BEGIN{ if (n == 0 || a == "" || b == "") print "n/a"; else printf "%.1f", (b-a)/1024/n }')"
ratio4() { awk -v a="$1" -v b="$2" 'BEGIN{ if (b == 0) print "n/a"; else printf "%.4f", a/b }'; }
result flow.sat.events_ratio_to_curl "$(ratio4 "$FLOW_EPS" "$CURL_RPS")"
result flow.sat.deliveries_ratio_to_curl "$(ratio4 "$FLOW_DPS" "$CURL_RPS")"
# CPU over accept + drain (wrk ran only the first FLOW_DURATION seconds of it)
result flow.sat.drain_cpu_server "$(awk -v a="$h0" -v b="$h1" -v t0="$t0" -v t1="$t1" -v hz="$CLK_TCK" 'BEGIN{printf "%.2f", (b-a)/hz/(t1-t0)}')"
# herald's CPU time per event answered (user + system, accept and drain): less moved by
# the shared machine than a rate, so an A/B of two builds reads it first
result flow.sat.cpu_us_per_event "$(awk -v a="$h0" -v b="$h1" -v n="$FLOW_ACCEPTED" -v hz="$CLK_TCK" 'BEGIN{ if (n == 0) print "n/a"; else printf "%.0f", (b-a)/hz/n*1e6 }')"
result flow.sat.drain_cpu_machine "$(echo "$m0 $m1" | awk -v t0="$t0" -v t1="$t1" -v hz="$CLK_TCK" '{printf "%.2f", ($3-$1)/hz/(t1-t0)}')"
result flow.sat.drain_wall_s "$(awk -v t0="$t0" -v t1="$t1" 'BEGIN{printf "%.1f", t1-t0}')"
result flow.store_transactions "$((tx1 - tx0))"
result flow.store_commits "$((c1 - c0))"
result flow.tx_per_commit "$(ratio $((tx1 - tx0)) $((c1 - c0)))"

# paced_run NAME THREADS CONNS DELAY_MS: a paced wrk run of FLOW_LIGHT_DURATION s against
# a fresh sink count, then its end-to-end figures under flow.NAME
paced_run() {
    local name=$1 before sent0
    sink_reset
    before=$(metric herald_http_requests_total 'route="segment.v1",status="200"')
    sent0=$(metric herald_deliveries_total 'outcome="sent"')
    WRK_THREADS=$2 WRK_CONNS=$3 WRK_DURATION=$FLOW_LIGHT_DURATION BENCH_DELAY_MS=$4 BENCH_RUN=$name \
        run_wrk "flow-$name" "$HERALD_URL/v1/track" flow "$WRITE_AUTH" "$HERALD_PID"
    record_wrk "flow.$name" 1
    flow_phase "flow.$name" "$before" "$sent0"
}

# light, paced run: latency without a backlog
paced_run light 1 2 40
# ~1,000 events/s, paced: event -> delivery latency at the rate issue 14 names
paced_run paced 2 25 20
stop_pid "$HERALD_PID"
