#!/usr/bin/env bash
# fanout.sh: one announcement to FANOUT_N (100,000; 10,000 with BENCH_QUICK) recipients,
# webhook provider to the instant sink (bench/sink.c), default flags: how long herald
# takes from the first request to the last delivery.
#
# First, without lists: POST /send with `to` as an array of FANOUT_CHUNK (100) recipients {"user_id": "u<n>"},
# FANOUT_CONC (4) requests at once (bench/fanout.mjs): 1,000 requests, each one
# transaction of 100 messages. Larger arrays accept slower (1,000 per request, herald's
# limit, took 6x longer to accept here: each message copies the whole request, `to`
# array included); one recipient per request pays a request and a transaction per message;
# an automation linked to an event and /v1/batch of 100,000 events goes through the flow
# path that flow.sh measures at about a third of /send's delivery rate.
#
#   fanout.accept_s      first request -> last 202
#   fanout.total_s       first request -> last delivery at the sink: the figure
#   fanout.delivered_ps  deliveries / total_s; send-to-delivery p50/p99 per message
#
# Check: the sink's count = the recipients herald accepted = FANOUT_N.
#
# Then the same N through the streamed fan-out: a list send (fanout.list_*) and a bulk
# job (fanout.bulk_*): setup_s, accept_ms, total_s (the one send / runJob -> last
# delivery) and recipients_ps; check = sink count = N.
#
# Usage: bench/fanout.sh   (FANOUT_N, FANOUT_CHUNK, FANOUT_CONC, FANOUT_DRAIN_MAX (1800 s);
#        HERALD_ARGS)
# shellcheck source=bench/lib.sh disable=SC2154
source "$(dirname "$0")/lib.sh"
need curl node cc

if [ "${BENCH_QUICK:-0}" = 1 ]; then FANOUT_N=${FANOUT_N:-10000}; fi
FANOUT_N=${FANOUT_N:-100000}
FANOUT_CHUNK=${FANOUT_CHUNK:-100}
FANOUT_CONC=${FANOUT_CONC:-4}
FANOUT_DRAIN_MAX=${FANOUT_DRAIN_MAX:-1800}
result fanout.n "$FANOUT_N"
result fanout.chunk "$FANOUT_CHUNK"

start_sink 0
# shellcheck disable=SC2086
start_herald herald-fanout ${HERALD_ARGS:-}
hpost /providers "{\"provider\":\"webhook\",\"settings\":{\"url\":\"$SINK_URL/hook\"}}" >/dev/null

h0=$(proc_ticks "$HERALD_PID")
m0=$(machine_ticks)
t0=$(date +%s.%N)
log "fanout: $FANOUT_N recipients, $FANOUT_CHUNK per /send, $FANOUT_CONC at once"
node "$BENCH_HOME/fanout.mjs" "$HERALD_URL" "$ADMIN_KEY" "$FANOUT_N" "$FANOUT_CHUNK" "$FANOUT_CONC" >"$BENCH_TMP/fanout.out" ||
    die "bench/fanout.mjs failed"
while IFS= read -r kv; do
    case $kv in *=*) result "fanout.${kv%%=*}" "${kv#*=}" ;; esac
done <"$BENCH_TMP/fanout.out"
accepted=$(sed -n 's/^accepted=//p' "$BENCH_TMP/fanout.out")
result fanout.drain_s "$(wait_queue_empty "$FANOUT_DRAIN_MAX")"
h1=$(proc_ticks "$HERALD_PID")
m1=$(machine_ticks)
t1=$(date +%s.%N)
st=$(sink_stats)
delivered=$(echo "$st" | json - j.count)
result fanout.delivered "$delivered"
result fanout.total_s "$(echo "$st" | json - '((j.last_us - j.min_send_us) / 1e6).toFixed(2)')"
result fanout.delivered_ps "$(echo "$st" | json - '(j.count / ((j.last_us - j.min_send_us) / 1e6)).toFixed(0)')"
result fanout.e2e_p50_ms "$(echo "$st" | json - '(j.p50_us/1000).toFixed(1)')"
result fanout.e2e_p99_ms "$(echo "$st" | json - '(j.p99_us/1000).toFixed(1)')"
result fanout.cpu_server "$(awk -v a="$h0" -v b="$h1" -v t0="$t0" -v t1="$t1" -v hz="$CLK_TCK" 'BEGIN{printf "%.2f", (b-a)/hz/(t1-t0)}')"
result fanout.cpu_machine "$(echo "$m0 $m1" | awk -v t0="$t0" -v t1="$t1" -v hz="$CLK_TCK" '{printf "%.2f", ($3-$1)/hz/(t1-t0)}')"
if [ "$delivered" = "$accepted" ] && [ "$accepted" = "$FANOUT_N" ]; then
    result fanout.check ok
else
    result fanout.check MISMATCH
fi

# The same N recipients through the streamed fan-out (src/engine/fanout.h): a list of N
# members and ONE /send to.list_id, then a bulk job of N users and runJob
# (bench/listsend.mjs). Setup (subscribing, adding users) is timed apart; the figure is
# first send -> last delivery, recipients/s beside the array sends' deliveries/s above.
for mode in list bulk; do
    sink_reset
    log "fanout: $FANOUT_N recipients through one $mode send"
    node "$BENCH_HOME/listsend.mjs" "$HERALD_URL" "$ADMIN_KEY" "$FANOUT_N" "$mode" "$FANOUT_CONC" >"$BENCH_TMP/listsend.out" ||
        die "bench/listsend.mjs failed"
    while IFS= read -r kv; do
        case $kv in send_us=*) ;; *=*) result "fanout.${mode}_${kv%%=*}" "${kv#*=}" ;; esac
    done <"$BENCH_TMP/listsend.out"
    result "fanout.${mode}_drain_s" "$(wait_queue_empty "$FANOUT_DRAIN_MAX")"
    st=$(sink_stats)
    send_us=$(sed -n 's/^send_us=//p' "$BENCH_TMP/listsend.out")
    result "fanout.${mode}_delivered" "$(echo "$st" | json - j.count)"
    result "fanout.${mode}_total_s" "$(echo "$st" | json - "((j.last_us - $send_us) / 1e6).toFixed(2)")"
    result "fanout.${mode}_recipients_ps" "$(echo "$st" | json - "(j.count / ((j.last_us - $send_us) / 1e6)).toFixed(0)")"
    if [ "$(echo "$st" | json - j.count)" = "$FANOUT_N" ]; then
        result "fanout.${mode}_check" ok
    else
        result "fanout.${mode}_check" MISMATCH
    fi
done
stop_pid "$HERALD_PID"
