#!/usr/bin/env bash
# ingest.sh: events in. wrk against nginx (a fixed 200: the baselines) and against
# herald's Segment tracking API, then a durability check through the event catalog.
#
#   nginx.get     GET / on nginx                  (reference: DESIGN.md section 7's baseline)
#   nginx.track   POST of the track body to nginx (baseline for herald.track: same wrk script)
#   nginx.batch   POST of the batch body to nginx (baseline for herald.batch)
#   herald.track  POST /v1/track, one ~700 B event per request, unique messageIds
#   herald.batch  POST /v1/batch, 100 such events per request
#
# Each herald run uses a fresh store (default flags, --log-level warn). After the run the
# events queue is drained and the catalog count of the run's event name must equal
# the number of events in the 2xx answers herald gave (its own /metrics count: wrk
# stops with up to BENCH_CONNS requests in flight, which herald still commits and
# answers; wrk's own 2xx count is reported next to it).
#
# Usage: bench/ingest.sh    (settings: see bench/lib.sh; BENCH_BATCH=100; HERALD_ARGS:
#        extra `herald serve` flags, e.g. "--workers 8", for what-if runs)
# shellcheck source=bench/lib.sh disable=SC2154
source "$(dirname "$0")/lib.sh"
need wrk curl node

BATCH=${BENCH_BATCH:-100}
export BENCH_BATCH=$BATCH

# ---- baselines: nginx ------------------------------------------------------------------
start_nginx
mapfile -t NPIDS < <(nginx_pids)

run_wrk nginx-get "$NGINX_URL/" get "" "${NPIDS[@]}"
record_wrk nginx.get
run_wrk nginx-track "$NGINX_URL/v1/track" track "Basic dGVzdDo=" "${NPIDS[@]}"
record_wrk nginx.track 1
NGINX_TRACK_RPS=$W_rps
run_wrk nginx-batch "$NGINX_URL/v1/batch" batch "Basic dGVzdDo=" "${NPIDS[@]}"
record_wrk nginx.batch "$BATCH"
NGINX_BATCH_RPS=$W_rps
stop_pid "$NGINX_PID"

# ---- herald ------------------------------------------------------------------------------
# herald_case NAME MODE EVENT_NAME PER_REQUEST BASELINE_RPS
herald_case() {
    local name=$1 mode=$2 ev=$3 per=$4 base=$5 tx0 c0 tx1 c1 ok_answers waited count wrk_ok
    # shellcheck disable=SC2086
    start_herald "$name" ${HERALD_ARGS:-}
    tx0=$(metric herald_store_transactions_total)
    c0=$(metric herald_store_commits_total)
    run_wrk "$name" "$HERALD_URL/v1/$mode" "$mode" "$WRITE_AUTH" "$HERALD_PID"
    # transactions and commits during the run (the events jobs run alongside)
    tx1=$(metric herald_store_transactions_total)
    c1=$(metric herald_store_commits_total)
    record_wrk "herald.$mode" "$per"
    result "herald.$mode.ratio_rps" "$(ratio "$W_rps" "$base")"
    result "herald.$mode.store_transactions" "$((tx1 - tx0))"
    result "herald.$mode.store_commits" "$((c1 - c0))"
    result "herald.$mode.tx_per_commit" "$(ratio $((tx1 - tx0)) $((c1 - c0)))"
    # after the drain every request in flight when wrk stopped has been answered too
    waited=$(wait_queue_empty 180)
    result "herald.$mode.drain_s" "$waited"
    ok_answers=$(metric herald_http_requests_total 'route="segment.v1",status="200"')
    count=$(hget "/catalog/events?search=Bench" |
        json - "(j.items.find(x => x.name === 'track/$ev') || {count: 0}).count")
    wrk_ok=$((W_requests - W_bad_status))
    result "herald.$mode.wrk_2xx_events" "$((wrk_ok * per))"
    result "herald.$mode.herald_2xx_events" "$((ok_answers * per))"
    result "herald.$mode.catalog_events" "$count"
    if [ "$count" = "$((ok_answers * per))" ] && [ "$wrk_ok" -le "$ok_answers" ] &&
        [ "$((ok_answers - wrk_ok))" -le "$BENCH_CONNS" ]; then
        result "herald.$mode.durable_check" ok
    else
        result "herald.$mode.durable_check" MISMATCH
    fi
    stop_pid "$HERALD_PID"
}

herald_case herald-track track "Bench Track" 1 "$NGINX_TRACK_RPS"
herald_case herald-batch batch "Bench Batch" "$BATCH" "$NGINX_BATCH_RPS"
