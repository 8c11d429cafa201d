#!/usr/bin/env bash
# send.sh: notifications out. POST /send through herald's webhook provider to a local
# sink (bench/sink.c: one thread, epoll, keep-alive, 200 to every POST), against the
# same sink driven directly by libcurl (bench/curl_baseline.c: multi interface, 16 in
# flight) as the baseline.
#
#   curl.sink        requests/s libcurl gets from the sink                 (baseline)
#   send.accept      POST /send (inline content, routing single ["webhook"], to
#                    {"user_id": "u<n>"}) with wrk -t2 -c64: accepted (202) sends/s, p99
#   send.deliver     messages arriving at the sink per second, from the first send to
#                    the last delivery, and request-to-delivery latency (the content body
#                    carries "ts:<send time in us>"; the sink subtracts it from its
#                    arrival time), under that saturating load: this includes queueing
#   send.light       the same at a light, paced load (wrk -t1 -c4, 20 ms between
#                    requests per connection: at most ~200 sends/s): latency without a
#                    backlog
#
# Every accepted send must arrive exactly once: the sink's count is checked against
# herald's count of 202 answers.
#
# Usage: bench/send.sh    (settings: see bench/lib.sh; SEND_DURATION (default 10) for
#        the saturating run; HERALD_ARGS: extra `herald serve` flags)
# shellcheck source=bench/lib.sh disable=SC2154
source "$(dirname "$0")/lib.sh"
need wrk curl node cc

SEND_DURATION=${SEND_DURATION:-10}
LIGHT_DURATION=${LIGHT_DURATION:-5}

# ---- build the sink and the baseline client ------------------------------------------
bench_tool curl_baseline
start_sink 0

# ---- baseline: libcurl multi, 16 in flight -----------------------------------------------
log "curl baseline: 5 s, 16 in flight"
line=$("$BENCH_TMP/curl_baseline" "$SINK_URL/hook" 5 16) || die "curl_baseline failed: $line"
CURL_RPS=$(echo "$line" | sed -n 's/.* rps=\([0-9]*\).*/\1/p')
result curl.sink.rps "$CURL_RPS"
result curl.sink.p50_ms "$(sink_stats | json - '(j.p50_us/1000).toFixed(2)')"
result curl.sink.p99_ms "$(sink_stats | json - '(j.p99_us/1000).toFixed(2)')"
sink_reset

# ---- herald -------------------------------------------------------------------------------
# shellcheck disable=SC2086
start_herald herald-send ${HERALD_ARGS:-}
hpost /providers "{\"provider\":\"webhook\",\"settings\":{\"url\":\"$SINK_URL/hook\"}}" >/dev/null

# deliver_phase PREFIX BEFORE: wait for the queue to drain, then record the delivery
# figures for the sends since the last sink reset (BEFORE: herald's 202 count then).
# Sets DELIVERED_PS.
deliver_phase() {
    local p=$1 before=$2 waited accepted st delivered
    waited=$(wait_queue_empty 240)
    result "$p.drain_s" "$waited"
    accepted=$(( $(metric herald_http_requests_total 'route="send",status="202"') - before ))
    st=$(sink_stats)
    delivered=$(echo "$st" | json - j.count)
    result "$p.accepted" "$accepted"
    result "$p.delivered" "$delivered"
    DELIVERED_PS=$(echo "$st" | json - '(j.count / ((j.last_us - j.min_send_us) / 1e6)).toFixed(0)')
    result "$p.delivered_ps" "$DELIVERED_PS"
    result "$p.e2e_p50_ms" "$(echo "$st" | json - '(j.p50_us/1000).toFixed(1)')"
    result "$p.e2e_p90_ms" "$(echo "$st" | json - '(j.p90_us/1000).toFixed(1)')"
    result "$p.e2e_p99_ms" "$(echo "$st" | json - '(j.p99_us/1000).toFixed(1)')"
    if [ "$accepted" = "$delivered" ]; then
        result "$p.delivery_check" ok
    else
        result "$p.delivery_check" MISMATCH
    fi
}

# saturating run: accepts as fast as herald takes them, deliveries follow
tx0=$(metric herald_store_transactions_total)
c0=$(metric herald_store_commits_total)
h0=$(proc_ticks "$HERALD_PID")
t0=$(date +%s.%N)
WRK_DURATION=$SEND_DURATION run_wrk send-accept "$HERALD_URL/send" send "$ADMIN_AUTH" "$HERALD_PID"
record_wrk send.accept
result send.accept.ratio_to_curl "$(ratio "$W_rps" "$CURL_RPS")"
deliver_phase send.deliver 0
h1=$(proc_ticks "$HERALD_PID")
t1=$(date +%s.%N)
tx1=$(metric herald_store_transactions_total)
c1=$(metric herald_store_commits_total)
result send.deliver.ratio_to_curl "$(ratio "$DELIVERED_PS" "$CURL_RPS")"
result send.deliver.cpu_server "$(awk -v a="$h0" -v b="$h1" -v t0="$t0" -v t1="$t1" -v hz="$CLK_TCK" 'BEGIN{printf "%.2f", (b-a)/hz/(t1-t0)}')"
result send.store_transactions "$((tx1 - tx0))"
result send.store_commits "$((c1 - c0))"
result send.tx_per_commit "$(ratio $((tx1 - tx0)) $((c1 - c0)))"
result send.deliveries_sent "$(metric herald_deliveries_total 'outcome="sent"')"

# light, paced run: latency without a backlog
sink_reset
before=$(metric herald_http_requests_total 'route="send",status="202"')
WRK_THREADS=1 WRK_CONNS=4 WRK_DURATION=$LIGHT_DURATION BENCH_DELAY_MS=20 BENCH_RUN=light \
    run_wrk send-light "$HERALD_URL/send" send "$ADMIN_AUTH" "$HERALD_PID"
record_wrk send.light
deliver_phase send.light "$before"
stop_pid "$HERALD_PID"
