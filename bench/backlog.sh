#!/usr/bin/env bash
# backlog.sh: herald's memory while a backlog of BACKLOG_N (1,000,000; 100,000 with
# BENCH_QUICK) messages waits for a provider that cannot keep up.
#
# The webhook provider points at the sink answering every request after 1 s
# (sink --delay-ms 1000), with --provider-concurrency 2: herald delivers about 2
# messages/s, so nearly every accepted message is still runnable and pending when the
# last one is accepted. The messages go in as bench/fanout.mjs sends them (`to` arrays of
# 100, 4 requests at once), in 10 steps; after each step the bench records herald's
# resident memory (VmRSS), split into anonymous memory (RssAnon: the heap, SQLite's page
# caches, thread stacks) and file pages (RssFile: the binary, and the store's file mapped
# by SQLite's mmap reads: the kernel's page cache, shared and reclaimable), its peak
# (VmHWM) and the pending jobs (/admin/queue).
#
#   backlog.rss_idle_mb     after start, before any message (also anon_idle_mb)
#   backlog.rss_<k>_mb      after k tenths of BACKLOG_N were accepted (k = 1..10; also
#                           anon_<k>_mb)
#   backlog.rss_mb          after all of them (anon_mb, file_mb); backlog.hwm_mb: the peak
#   backlog.pending         jobs queued or leased at the end (the backlog in the store)
#   backlog.accept_s        the time to accept them
#
# The bound this shows: what herald holds per pending message is on disk; in memory it
# keeps bounded structures only (see docs/PERFORMANCE.md "Memory").
#
# Usage: bench/backlog.sh   (BACKLOG_N; HERALD_ARGS)
# shellcheck source=bench/lib.sh disable=SC2154
source "$(dirname "$0")/lib.sh"
need curl node cc

if [ "${BENCH_QUICK:-0}" = 1 ]; then BACKLOG_N=${BACKLOG_N:-100000}; fi
BACKLOG_N=${BACKLOG_N:-1000000}
result backlog.n "$BACKLOG_N"

rss_kb() { awk -v k="${2:-VmRSS}:" '$1 == k {print $2}' "/proc/$1/status"; }
mb() { awk -v k="$1" 'BEGIN{printf "%.1f", k/1024}'; }

start_sink 1000
# shellcheck disable=SC2086
start_herald herald-backlog --provider-concurrency 2 ${HERALD_ARGS:-}
hpost /providers "{\"provider\":\"webhook\",\"settings\":{\"url\":\"$SINK_URL/hook\"}}" >/dev/null
sleep 2
result backlog.rss_idle_mb "$(mb "$(rss_kb "$HERALD_PID")")"
result backlog.anon_idle_mb "$(mb "$(rss_kb "$HERALD_PID" RssAnon)")"

step=$((BACKLOG_N / 10))
t0=$(date +%s.%N)
for k in $(seq 1 10); do
    n=$step
    if [ "$k" = 10 ]; then n=$((BACKLOG_N - 9 * step)); fi
    out=$(node "$BENCH_HOME/fanout.mjs" "$HERALD_URL" "$ADMIN_KEY" "$n" 100 4)
    bad=$(echo "$out" | sed -n 's/^bad=//p')
    [ "${bad:-0}" = 0 ] || die "fanout.mjs: $bad requests were refused at step $k"
    result "backlog.rss_${k}_mb" "$(mb "$(rss_kb "$HERALD_PID")")"
    result "backlog.anon_${k}_mb" "$(mb "$(rss_kb "$HERALD_PID" RssAnon)")"
    log "backlog: $((k * step)) accepted, rss $(mb "$(rss_kb "$HERALD_PID")") MB, anon $(mb "$(rss_kb "$HERALD_PID" RssAnon)") MB"
done
t1=$(date +%s.%N)
result backlog.accept_s "$(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.1f", b-a}')"
result backlog.rss_mb "$(mb "$(rss_kb "$HERALD_PID")")"
result backlog.anon_mb "$(mb "$(rss_kb "$HERALD_PID" RssAnon)")"
result backlog.file_mb "$(mb "$(rss_kb "$HERALD_PID" RssFile)")"
result backlog.store_mb "$(du -sm "$BENCH_TMP/herald-backlog" | cut -f1)"
result backlog.hwm_mb "$(mb "$(rss_kb "$HERALD_PID" VmHWM)")"
result backlog.pending "$(queue_pending)"
result backlog.delivered "$(sink_stats | json - j.count)"
