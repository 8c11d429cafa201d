#!/usr/bin/env bash
# profile.sh: where herald's time goes under one load, with perf (not part of run.sh).
#
#   bench/profile.sh track|batch|send|flow [extra herald serve flags...]
#
# track / batch: wrk -t2 -c64 for 12 s against /v1/track or /v1/batch; perf samples
#   herald for 8 s in the middle.
# send: wrk POSTs /send for 5 s (webhook provider to bench/sink.c), then perf samples
#   herald for 5 s while it drains the backlog (routing and delivering only).
# flow: flow.sh's setup (two automations of one send step linked to track/Flow Event,
#   webhook provider to the sink); wrk POSTs the event for 5 s, then perf samples herald
#   for 5 s while it drains (events job, steps, routes, deliveries).
# send / flow with PROFILE_UNDER_LOAD=1: wrk runs 14 s and perf samples 8 s in its middle
#   (accepting and processing at once; for when the backlog drains too fast to sample).
# Prints wrk's summary, herald's store transactions and commits, CPU per herald thread
# (by name: h-sql-writer, h-worker, h-completer, h-transport, MHD's own; see docs/PERFORMANCE.md),
# the busiest thread's states (sampled from /proc every 10 ms, and its schedstat), and
# perf's top functions by self time and by inclusive time (DWARF call graphs).
# Needs perf (Debian: linux-perf) and kernel.perf_event_paranoid <= 2 for own processes.
# shellcheck source=bench/lib.sh disable=SC2154
source "$(dirname "$0")/lib.sh"
need wrk curl node perf

mode=${1:?usage: bench/profile.sh track|batch|send|flow [herald flags]}
shift
PERF_FREQ=${PERF_FREQ:-299}

thread_ticks() {
    local t f
    for t in /proc/"$HERALD_PID"/task/*; do
        f=$(cat "$t/stat" 2>/dev/null) || continue
        f=${f##*) }
        # shellcheck disable=SC2086
        set -- $f
        echo "${t##*/} $((${12} + ${13})) $(tr -c 'A-Za-z0-9_\n-' _ <"$t/comm" 2>/dev/null)"
    done | sort
}

start_herald profile "$@"
tx0=$(metric herald_store_transactions_total)
c0=$(metric herald_store_commits_total)

case $mode in
track | batch)
    (BENCH_MODE=$mode BENCH_AUTH=$WRITE_AUTH BENCH_RUN=p wrk -t2 -c64 -d12s --latency \
        -s "$BENCH_HOME/wrk.lua" "$HERALD_URL/v1/$mode" >"$BENCH_TMP/wrk.out" 2>&1) &
    wrk_pid=$!
    sleep 2
    secs=8
    ;;
send | flow)
    start_sink 0
    if [ "$mode" = send ]; then
        hpost /providers "{\"provider\":\"webhook\",\"settings\":{\"url\":\"$SINK_URL/hook\"}}" >/dev/null
        auth=$ADMIN_AUTH path=/send
    else
        flow_setup "track/Flow Event"
        auth=$WRITE_AUTH path=/v1/track
    fi
    if [ -n "${PROFILE_UNDER_LOAD:-}" ]; then
        # herald keeps up with the load now (the drain is too short to sample): sample
        # 8 s in the middle of 14 s of load instead
        BENCH_MODE=$mode BENCH_AUTH=$auth BENCH_RUN=p wrk -t2 -c64 -d14s --latency \
            -s "$BENCH_HOME/wrk.lua" "$HERALD_URL$path" >"$BENCH_TMP/wrk.out" 2>&1 &
        wrk_pid=$!
        sleep 3
        secs=8
    else
        BENCH_MODE=$mode BENCH_AUTH=$auth BENCH_RUN=p wrk -t2 -c64 -d5s --latency \
            -s "$BENCH_HOME/wrk.lua" "$HERALD_URL$path" >"$BENCH_TMP/wrk.out" 2>&1
        wrk_pid=""
        secs=5
    fi
    echo "queue before: $(hget /admin/queue)"
    d0=$(sink_stats | json - j.count)
    ;;
*) die "mode: track, batch, send or flow" ;;
esac

thread_ticks >"$BENCH_TMP/t0"
m0=$(machine_ticks)
w0=$(date +%s%N)
perf record -F "$PERF_FREQ" --call-graph dwarf,16384 -p "$HERALD_PID" -o "$BENCH_TMP/perf.data" \
    -- sleep "$secs" >/dev/null 2>&1 &
perf_pid=$!
# meanwhile: the state of the busiest thread so far (the writer), every 10 ms
sleep 0.5
top_tid=$(thread_ticks | sort -k2 -n | tail -1 | cut -d' ' -f1)
read -r run0 wait0 sw0 <"/proc/$HERALD_PID/task/$top_tid/schedstat"
st0=$(date +%s%N)
: >"$BENCH_TMP/states"
while kill -0 "$perf_pid" 2>/dev/null; do
    f=$(cat "/proc/$HERALD_PID/task/$top_tid/stat" 2>/dev/null) || break
    f=${f##*) }
    echo "${f%% *}" >>"$BENCH_TMP/states"
    sleep 0.01
done
read -r run1 wait1 sw1 <"/proc/$HERALD_PID/task/$top_tid/schedstat"
st1=$(date +%s%N)
wait "$perf_pid" || true
thread_ticks >"$BENCH_TMP/t1"
m1=$(machine_ticks)
w1=$(date +%s%N)
wall=$(awk -v a="$w0" -v b="$w1" 'BEGIN{printf "%.3f", (b-a)/1e9}')
if [ -n "$wrk_pid" ]; then wait "$wrk_pid"; fi
tx1=$(metric herald_store_transactions_total)
c1=$(metric herald_store_commits_total)

grep '^WRK ' "$BENCH_TMP/wrk.out" || cat "$BENCH_TMP/wrk.out"
if [ "$mode" = send ] || [ "$mode" = flow ]; then
    d1=$(sink_stats | json - j.count)
    echo "delivered while sampled: $((d1 - d0)) in ${secs}s; queue after: $(hget /admin/queue)"
fi
echo "store: $((tx1 - tx0)) transactions, $((c1 - c0)) commits (whole run)"
echo "$m0 $m1" | awk -v s="$wall" -v hz="$CLK_TCK" '{printf "machine busy while sampled: %.2f cores\n", ($3-$1)/hz/s}'
echo "--- herald threads (cores while sampled)"
join "$BENCH_TMP/t0" "$BENCH_TMP/t1" |
    awk -v s="$wall" -v hz="$CLK_TCK" '{c=($4-$2)/hz/s; if (c >= 0.01) printf "tid %s %s %.2f\n", $1, $3, c}' |
    sort -k4 -rn | head -12
echo "--- busiest thread (tid $top_tid): state samples (R running/runnable, S asleep, D disk wait)"
sort "$BENCH_TMP/states" | uniq -c | awk '{printf "%s %d (%.0f%%)\n", $2, $1, 100*$1/n}' n="$(wc -l <"$BENCH_TMP/states")"
awk -v r="$((run1 - run0))" -v w="$((wait1 - wait0))" -v s="$((sw1 - sw0))" -v t="$((st1 - st0))" \
    'BEGIN{printf "schedstat: on CPU %.0f%%, runnable waiting for a CPU %.0f%%, %.0f context switches/s\n", 100*r/t, 100*w/t, s/(t/1e9)}'
echo "--- self time, top 25"
perf report -i "$BENCH_TMP/perf.data" --no-children --sort symbol --stdio -g none 2>/dev/null |
    grep -E '^\s+[0-9.]+%' | head -25 || true
echo "--- inclusive time, top 60 (user-space frames)"
perf report -i "$BENCH_TMP/perf.data" --children --sort symbol --stdio -g none 2>/dev/null |
    grep -E '^\s+[0-9.]+%' | grep -v '\[k\]' | grep -v ' 0x0000' | head -60 || true
echo "--- inclusive time, kernel: scheduling, futex, fsync"
perf report -i "$BENCH_TMP/perf.data" --children --sort symbol --stdio -g none 2>/dev/null |
    grep -E '^\s+[0-9.]+%' | grep -E 'finish_task_switch|__x64_sys_futex|do_fsync|__x64_sys_sendmsg|__x64_sys_pwrite' || true
# PROFILE_KEEP=FILE: keep perf's data (e.g. perf report -i FILE --comms h-sql-writer ...)
if [ -n "${PROFILE_KEEP:-}" ]; then cp "$BENCH_TMP/perf.data" "$PROFILE_KEEP" && echo "perf data kept: $PROFILE_KEEP"; fi
