#!/usr/bin/env bash
# slow.sh: a provider that answers in SLOW_DELAY_MS (100) ms, a normal API latency.
# bench/sink.c --delay-ms answers every request that long after it arrived, any number
# at once (a queue in its epoll loop, no thread blocked per request), so the sink is not
# the bound; what bounds the rate is how many calls the sender keeps in flight.
#
#   slow.herald    herald, default flags (+ HERALD_ARGS), one webhook provider to the slow
#                  sink: wrk -t2 -c64 POSTs /send (as send.sh) for SLOW_DURATION (5) s,
#                  then the script waits until every accepted send was delivered or
#                  SLOW_WINDOW (60) s have passed since the first send, whichever comes
#                  first. delivered/s = sink count / (last delivery - first send); when
#                  the backlog did not drain (drained=0) the sink count at the end of the
#                  window is used: a rate over a window where a backlog waited throughout.
#                  herald is then stopped with its backlog (its temp store is removed).
#   slow.bullmq    the same for BullMQ (no persistence, worker concurrency
#                  PEER_CONCURRENCY, 64; 64 producers for SLOW_DURATION s; at most
#                  SLOW_WINDOW s in all), for reference: 64 calls in flight at 100 ms give
#                  at most 640 jobs/s. Skipped (slow.bullmq.skipped) without redis-server
#                  or bench/node_modules.
#
# Usage: bench/slow.sh   (SLOW_DELAY_MS, SLOW_DURATION, SLOW_WINDOW; HERALD_ARGS)
# shellcheck source=bench/lib.sh disable=SC2154
source "$(dirname "$0")/lib.sh"
need wrk curl node cc

SLOW_DELAY_MS=${SLOW_DELAY_MS:-100}
SLOW_DURATION=${SLOW_DURATION:-5}
SLOW_WINDOW=${SLOW_WINDOW:-60}
PEER_CONCURRENCY=${PEER_CONCURRENCY:-64}
result slow.delay_ms "$SLOW_DELAY_MS"
result slow.window_s "$SLOW_WINDOW"

start_sink "$SLOW_DELAY_MS"

# ---- herald -------------------------------------------------------------------------------
# shellcheck disable=SC2086
start_herald herald-slow ${HERALD_ARGS:-}
hpost /providers "{\"provider\":\"webhook\",\"settings\":{\"url\":\"$SINK_URL/hook\"}}" >/dev/null
t0=$(date +%s.%N)
tx0=$(metric herald_store_transactions_total)
WRK_DURATION=$SLOW_DURATION run_wrk slow-accept "$HERALD_URL/send" send "$ADMIN_AUTH" "$HERALD_PID"
record_wrk slow.herald.accept
accepted=$(metric herald_http_requests_total 'route="send",status="202"')
drained=0
while :; do
    # requests wrk left in flight are still answered 202 after it exits: count them too
    accepted=$(metric herald_http_requests_total 'route="send",status="202"')
    delivered=$(sink_stats | json - j.count)
    if [ "$delivered" -ge "$accepted" ]; then drained=1; break; fi
    if awk -v a="$t0" -v b="$(date +%s.%N)" -v w="$SLOW_WINDOW" 'BEGIN{exit !(b-a >= w)}'; then break; fi
    sleep 0.5
done
st=$(sink_stats)
end_us=$(date +%s%6N)
delivered=$(echo "$st" | json - j.count)
result slow.herald.accepted "$accepted"
result slow.herald.delivered "$delivered"
result slow.herald.drained "$drained"
# drained: first send -> last delivery; else first send -> end of the window
result slow.herald.span_s "$(echo "$st" | json - "((($drained ? j.last_us : $end_us) - j.min_send_us) / 1e6).toFixed(2)")"
result slow.herald.delivered_ps "$(echo "$st" | json - "(j.count / ((($drained ? j.last_us : $end_us) - j.min_send_us) / 1e6)).toFixed(0)")"
result slow.herald.e2e_p50_ms "$(echo "$st" | json - '(j.p50_us/1000).toFixed(1)')"
result slow.herald.e2e_p99_ms "$(echo "$st" | json - '(j.p99_us/1000).toFixed(1)')"
# deliveries put off at the provider's concurrency cap, and of those kept in memory
# (parked, woken by a freed slot: no store write) rather than queued in the store again
# write transactions from the first send to the drain (accepts, routes, deliveries,
# and deferrals that went back to the store)
result slow.herald.store_transactions "$(($(metric herald_store_transactions_total) - tx0))"
result slow.herald.deferred "$(metric herald_provider_deferred_total 'limit="concurrency"')"
result slow.herald.parked "$(metric herald_queue_parked_total 'wait="slot"')"
result slow.herald.unparked "$(metric herald_queue_unparked_total 'wait="slot"')"
# at most the accepted sends arrive; all of them when drained
if [ "$delivered" -le "$accepted" ] && { [ "$drained" = 0 ] || [ "$delivered" = "$accepted" ]; }; then
    result slow.herald.check ok
else
    result slow.herald.check MISMATCH
fi
stop_pid "$HERALD_PID"

# ---- BullMQ, for reference ----------------------------------------------------------------
missing=$(bullmq_missing)
if [ -n "$missing" ]; then
    echo "########## bench/slow.sh: BullMQ part SKIPPED: missing $missing; scripts/deps.sh bench installs them ##########" >&2
    result slow.bullmq.skipped "\"missing $missing\""
    exit 0
fi
start_redis redis-slow --appendonly no
run_bullmq slow.bullmq --duration "$SLOW_DURATION" --producers 64 --concurrency "$PEER_CONCURRENCY" \
    --wait "$(awk -v w="$SLOW_WINDOW" -v d="$SLOW_DURATION" 'BEGIN{print (w > d ? w - d : 1)}')"
stop_pid "$REDIS_PID"
