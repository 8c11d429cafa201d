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
# Meanwhile, transactional traffic: from the send (runJob) until the sink has the N
# deliveries, bench/txload.mjs sends single /send requests (one recipient, the same
# provider and sink) at FANOUT_TX_RATE (50) per second, open loop; then the same load alone
# for as long as the list fan-out took (5-60 s, or FANOUT_TX_QUIET_S), the baseline:
#   fanout.{list,bulk,quiet}_tx_answer_p50_ms / _p99_ms   request -> 202 (node's fetch)
#   fanout.{list,bulk,quiet}_tx_e2e_p50_ms / _p99_ms      send -> delivery at the sink
#   fanout.{list,bulk}_tx_e2e_p50_ratio / _p99_ratio      during the fan-out / quiet
# (the sink tells them from the fan-out's messages by "tx:" instead of "ts:" in the body).
#
# Usage: bench/fanout.sh   (FANOUT_N, FANOUT_CHUNK, FANOUT_CONC, FANOUT_DRAIN_MAX (1800 s),
#        FANOUT_TX_RATE (50), FANOUT_TX_QUIET_S; HERALD_ARGS)
# shellcheck source=bench/lib.sh disable=SC2154
source "$(dirname "$0")/lib.sh"
need curl node cc

if [ "${BENCH_QUICK:-0}" = 1 ]; then FANOUT_N=${FANOUT_N:-10000}; fi
FANOUT_N=${FANOUT_N:-100000}
FANOUT_CHUNK=${FANOUT_CHUNK:-100}
FANOUT_CONC=${FANOUT_CONC:-4}
FANOUT_DRAIN_MAX=${FANOUT_DRAIN_MAX:-1800}
FANOUT_TX_RATE=${FANOUT_TX_RATE:-50}
result fanout.n "$FANOUT_N"
result fanout.chunk "$FANOUT_CHUNK"
result fanout.tx_rate "$FANOUT_TX_RATE"

# tx_record NAME FILE: the transactional probe's figures (bench/txload.mjs's output in
# FILE) and its deliveries at the sink, once the queue has drained, as fanout.NAME_tx_*.
# Sets TX_P50[NAME], TX_P99[NAME] (send to delivery, ms).
declare -A TX_P50 TX_P99
tx_record() {
    local n=$1 f=$2 p=fanout.$1 kv st
    while IFS= read -r kv; do
        case $kv in *=*) result "${p}_tx_${kv%%=*}" "${kv#*=}" ;; esac
    done <"$f"
    st=$(sink_stats)
    TX_P50[$n]=$(echo "$st" | json - '(j.tx_p50_us/1000).toFixed(1)')
    TX_P99[$n]=$(echo "$st" | json - '(j.tx_p99_us/1000).toFixed(1)')
    result "${p}_tx_delivered" "$(echo "$st" | json - j.tx_count)"
    result "${p}_tx_e2e_p50_ms" "${TX_P50[$n]}"
    result "${p}_tx_e2e_p99_ms" "${TX_P99[$n]}"
    if [ "$(echo "$st" | json - j.tx_count)" = "$(sed -n 's/^accepted=//p' "$f")" ]; then
        result "${p}_tx_check" ok
    else
        result "${p}_tx_check" MISMATCH
    fi
}

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
# The transactional probe (bench/txload.mjs) starts when the send leaves (listsend.mjs
# writes the go file) and stops once the sink has the N fan-out deliveries (or after
# FANOUT_DRAIN_MAX s).
for mode in list bulk; do
    sink_reset
    go=$BENCH_TMP/go.$mode
    node "$BENCH_HOME/txload.mjs" "$HERALD_URL" "$ADMIN_KEY" --rate "$FANOUT_TX_RATE" --seconds "$FANOUT_DRAIN_MAX" \
        --start-file "$go" --until "$SINK_URL" --count "$FANOUT_N" >"$BENCH_TMP/tx.$mode.out" &
    tx_pid=$!
    BENCH_PIDS+=("$tx_pid")
    log "fanout: $FANOUT_N recipients through one $mode send, transactional /send at $FANOUT_TX_RATE/s meanwhile"
    LISTSEND_GO_FILE=$go node "$BENCH_HOME/listsend.mjs" "$HERALD_URL" "$ADMIN_KEY" "$FANOUT_N" "$mode" "$FANOUT_CONC" >"$BENCH_TMP/listsend.out" ||
        die "bench/listsend.mjs failed"
    while IFS= read -r kv; do
        case $kv in send_us=*) ;; *=*) result "fanout.${mode}_${kv%%=*}" "${kv#*=}" ;; esac
    done <"$BENCH_TMP/listsend.out"
    t_answer=$(date +%s.%N)
    wait "$tx_pid" || die "bench/txload.mjs failed"
    forget_pid "$tx_pid"
    wait_queue_empty "$FANOUT_DRAIN_MAX" >/dev/null
    result "fanout.${mode}_drain_s" "$(awk -v a="$t_answer" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f", b-a}')"
    tx_record "$mode" "$BENCH_TMP/tx.$mode.out"
    st=$(sink_stats)
    send_us=$(sed -n 's/^send_us=//p' "$BENCH_TMP/listsend.out")
    result "fanout.${mode}_delivered" "$(echo "$st" | json - j.count)"
    total_s=$(echo "$st" | json - "((j.last_us - $send_us) / 1e6).toFixed(2)")
    result "fanout.${mode}_total_s" "$total_s"
    if [ "$mode" = list ]; then list_total_s=$total_s; fi
    result "fanout.${mode}_recipients_ps" "$(echo "$st" | json - "(j.count / ((j.last_us - $send_us) / 1e6)).toFixed(0)")"
    if [ "$(echo "$st" | json - j.count)" = "$FANOUT_N" ]; then
        result "fanout.${mode}_check" ok
    else
        result "fanout.${mode}_check" MISMATCH
    fi
done

# The baseline: the same transactional load with no fan-out, as long as the list fan-out
# took (at least 5 s, at most 60 s), so both have about as many samples.
quiet_s=${FANOUT_TX_QUIET_S:-$(awk -v t="$list_total_s" 'BEGIN{t = int(t + 0.5); if (t < 5) t = 5; if (t > 60) t = 60; print t}')}
sink_reset
log "fanout: transactional /send at $FANOUT_TX_RATE/s alone"
node "$BENCH_HOME/txload.mjs" "$HERALD_URL" "$ADMIN_KEY" --rate "$FANOUT_TX_RATE" --seconds "$quiet_s" >"$BENCH_TMP/tx.quiet.out" ||
    die "bench/txload.mjs failed"
wait_queue_empty 120 >/dev/null
tx_record quiet "$BENCH_TMP/tx.quiet.out"
for mode in list bulk; do
    result "fanout.${mode}_tx_e2e_p50_ratio" "$(ratio "${TX_P50[$mode]}" "${TX_P50[quiet]}")"
    result "fanout.${mode}_tx_e2e_p99_ratio" "$(ratio "${TX_P99[$mode]}" "${TX_P99[quiet]}")"
done
stop_pid "$HERALD_PID"
