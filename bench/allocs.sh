#!/usr/bin/env bash
# allocs.sh: allocations and CPU per flow event, counted rather than timed (not part of
# run.sh). herald (release build, jemalloc) runs flow.sh's setup (two automations of one
# send step linked to track/Flow Event, webhook to the sink); bench/flowload.mjs POSTs an
# exact number of events, 16 at once, and the script waits until the sink has every
# delivery. jemalloc's own statistics, printed at exit (MALLOC_CONF=stats_print:true),
# give the allocation requests of the whole process; two runs, of ALLOCS_SMALL and
# ALLOCS_LARGE events after the same 200-event warm-up, are subtracted, so start-up,
# caches and the warm-up cancel out:
#
#   allocs.per_event    (requests(large) - requests(small)) / (large - small)
#   allocs.cpu_us_per_event  herald's CPU (/proc ticks) per event over the large run:
#                       timed, so noisy; compare binaries alternating, several rounds
#
# Every run sends to the same 200 users (ALLOCS_USERS), all made by the warm-up: the
# counted events meet existing profiles, as a running system's mostly do. The script
# waits for the sink's count and then for an empty queue, so every event's work is
# counted. What herald allocates while idle is counted too, in the larger run's longer
# span: a few hundred per second at most (a run of 2,000 events takes 2-5 s), under 1 %
# of the difference.
#
# Usage: HERALD_BIN=/path/herald bench/allocs.sh   (ALLOCS_SMALL 500, ALLOCS_LARGE 2500)
# Needs a herald linked with jemalloc (the release build; not ASan/TSan) and node.
# shellcheck source=bench/lib.sh disable=SC2154
source "$(dirname "$0")/lib.sh"
need curl node

SMALL=${ALLOCS_SMALL:-500}
LARGE=${ALLOCS_LARGE:-2500}
USERS=${ALLOCS_USERS:-200}
[ "$LARGE" -gt "$SMALL" ] || die "ALLOCS_LARGE must be larger than ALLOCS_SMALL"

# load N CONC: N flow events, CONC at once; every one must be answered 200
load() {
    local out
    out=$(node "$BENCH_HOME/flowload.mjs" "$HERALD_URL/v1/track" "$WRITE_AUTH" "$1" "$2" "$USERS")
    [ "$out" = "ok=$1" ] || die "herald accepted $out of $1 events"
}

# one_run N: requests jemalloc counted over a run of N events; sets RUN_REQS, RUN_CPU_US
one_run() {
    local n=$1 name=al$1 want t0 t1
    MALLOC_CONF=stats_print:true start_herald "$name"
    start_sink 0
    flow_setup "track/Flow Event"
    load 200 8
    wait_count 400
    wait_queue_empty 120 >/dev/null
    t0=$(proc_ticks "$HERALD_PID")
    load "$n" 16
    want=$((400 + 2 * n))
    wait_count "$want"
    wait_queue_empty 120 >/dev/null
    t1=$(proc_ticks "$HERALD_PID")
    RUN_CPU_US=$(( (t1 - t0) * 1000000 / CLK_TCK ))
    stop_pid "$HERALD_PID"
    stop_pid "$SINK_PID"
    RUN_REQS=$(awk '/^total:/ {print $7; exit}' "$BENCH_TMP/$name/stderr")
    [ -n "$RUN_REQS" ] || die "no jemalloc statistics in $BENCH_TMP/$name/stderr (a release build?)"
}

wait_count() {
    local want=$1
    for _ in $(seq 1 600); do
        [ "$(sink_stats | json - j.count)" -ge "$want" ] && return 0
        sleep 0.1
    done
    die "the sink got $(sink_stats | json - j.count) of $want deliveries"
}

one_run "$SMALL"
small_reqs=$RUN_REQS
one_run "$LARGE"
result allocs.per_event "$(awk -v a="$RUN_REQS" -v b="$small_reqs" -v n=$((LARGE - SMALL)) \
    'BEGIN {printf "%.1f", (a - b) / n}')"
result allocs.cpu_us_per_event "$(awk -v c="$RUN_CPU_US" -v n="$LARGE" 'BEGIN {printf "%.1f", c / n}')"
