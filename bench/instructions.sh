#!/usr/bin/env bash
# instructions.sh: instructions per flow event, per herald thread, counted rather than
# timed (not part of run.sh). herald (any build; the release one for figures) runs under
# valgrind's callgrind with flow.sh's setup (two automations of one send step linked to
# track/Flow Event, webhook to the sink); bench/flowload.mjs POSTs a 200-event warm-up,
# callgrind's counters are zeroed (callgrind_control -z), then INSTR_EVENTS events are
# POSTed (16 at once, to 200 users made by the warm-up) and the script waits until the
# sink has every delivery and the queue is empty, and dumps the counters:
#
#   instr.per_event            instructions herald executed per event (all threads)
#   instr.<thread>.per_event   the same per thread, by what the thread runs: writer
#                              (writer_main), workers (worker_main, summed), transport
#                              (transport_main), completer, checkpointer, http (MHD's
#                              threads, summed), other
#
# Instructions do not move with the machine's load, as times do: an A/B of two builds
# reads within a few percent, where flow.sh's CPU per event moves by 10-20 % between
# runs of one build. They are not time (a cache miss costs more than an add; system
# calls and waits are not counted), and valgrind runs one thread at a time, so commit
# groups are smaller than at full speed: compare builds with this, and confirm with the
# timed benches. INSTR_KEEP=DIR keeps callgrind's files (one per thread) for
# callgrind_annotate (--inclusive=yes) to break a thread's count down by function.
#
# Usage: HERALD_BIN=/path/herald bench/instructions.sh   (INSTR_EVENTS 600, INSTR_KEEP)
# Needs valgrind (Debian: valgrind) and node.
# shellcheck source=bench/lib.sh disable=SC2154
source "$(dirname "$0")/lib.sh"
need curl node valgrind callgrind_control

N=${INSTR_EVENTS:-600}
USERS=200
REAL=$HERALD_BIN
[ -x "$REAL" ] || die "no herald binary at $REAL (run make)"
CG=$BENCH_TMP/cg
mkdir -p "$CG"
# start_herald runs $HERALD_BIN: a wrapper that runs the real one under callgrind
cat >"$BENCH_TMP/vg.sh" <<EOF
#!/bin/sh
exec valgrind --tool=callgrind --separate-threads=yes --callgrind-out-file=$CG/cg.%p \
    --dump-instr=no "$REAL" "\$@"
EOF
chmod +x "$BENCH_TMP/vg.sh"
HERALD_BIN=$BENCH_TMP/vg.sh
start_herald instr --header-timeout 3600 --body-timeout 3600
VG_PID=$HERALD_PID
start_sink 0
flow_setup "track/Flow Event"

load() {
    local out
    out=$(node "$BENCH_HOME/flowload.mjs" "$HERALD_URL/v1/track" "$WRITE_AUTH" "$1" "$2" "$USERS")
    [ "$out" = "ok=$1" ] || die "herald accepted $out of $1 events"
}
wait_count() {
    for _ in $(seq 1 3000); do
        [ "$(sink_stats | json - j.count)" -ge "$1" ] && return 0
        sleep 0.2
    done
    die "the sink got $(sink_stats | json - j.count) of $1 deliveries"
}

load 200 8
wait_count 400
wait_queue_empty 300 >/dev/null
callgrind_control -z "$VG_PID" >/dev/null
load "$N" 16
wait_count $((400 + 2 * N))
wait_queue_empty 300 >/dev/null
callgrind_control -d "$VG_PID" >/dev/null
sleep 1

# one file per thread (cg.PID.1-TT) after the dump; the thread's role from its costliest
# function of herald's (callgrind_annotate --inclusive)
total=0
declare -A by
for f in "$CG"/cg."$VG_PID".*-*; do
    [ -f "$f" ] || continue
    ir=$(awk '/^(summary|totals):/ { print $2; exit }' "$f")
    [ -n "$ir" ] || continue
    fns=$(callgrind_annotate --inclusive=yes --threshold=100 "$f" 2>/dev/null || true)
    case "$fns" in
        *:writer_main*) role=writer ;;
        *:worker_main*) role=workers ;;
        *:transport_main*) role=transport ;;
        *:completer_main*) role=completer ;;
        *:ckpt_main*) role=checkpointer ;;
        *libmicrohttpd*) role=http ;;
        *) role=other ;;
    esac
    by[$role]=$(( ${by[$role]:-0} + ir ))
    total=$((total + ir))
done
[ "$total" -gt 0 ] || die "no callgrind counts in $CG"
result instr.events "$N"
result instr.per_event "$((total / N))"
for role in writer workers transport completer checkpointer http other; do
    result "instr.$role.per_event" "$(( ${by[$role]:-0} / N ))"
done
if [ -n "${INSTR_KEEP:-}" ]; then
    mkdir -p "$INSTR_KEEP" && cp "$CG"/cg."$VG_PID".* "$INSTR_KEEP"/ && log "callgrind files kept in $INSTR_KEEP"
fi
