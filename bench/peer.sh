#!/usr/bin/env bash
# peer.sh: the peer baseline. BullMQ (npm bullmq, the queue Novu runs on) on Debian's
# redis-server, worker concurrency 64, each job POSTed to the same sink (bench/sink.c) as
# herald's send and flow benchmarks: jobs/s enqueue -> worker -> HTTP POST -> completed,
# and the enqueue-to-POST latency the sink measures. Twice, on a fresh redis-server of
# its own each time (free loopback port, files in the temp dir, stopped after):
#
#   peer.nofsync   no persistence (no AOF, no RDB): Redis as BullMQ users mostly run it
#   peer.fsync     appendonly yes, appendfsync always: every write on disk before the
#                  answer, herald's durability (SQLite synchronous=FULL)
#
# The producer (bench/bullmq.mjs) is a closed loop of PEER_PRODUCERS (64) concurrent
# Queue.add calls for PEER_DURATION (10) s, like wrk -c64 on herald; then it waits for
# the worker to complete every job (at most PEER_WAIT, 600 s). Under that load the
# latency is mostly the backlog draining, as with herald's flow.sat, so each mode also
# has a light paced run (peer.MODE.light: 2 producers pausing 40 ms after each add, at
# most ~50 jobs/s, PEER_LIGHT_DURATION (10) s, as flow.sh's light run): the latency
# without a backlog. bench/report.mjs prints
# herald's flow deliveries/s over these jobs/s when flow.sh ran in the same run.
#
# Needs redis-server and bench/node_modules (scripts/deps.sh bench; `make bench` runs
# it); without them it prints a loud SKIPPED line and peer.skipped=<what is missing>.
#
# Usage: bench/peer.sh   (PEER_DURATION, PEER_LIGHT_DURATION, PEER_PRODUCERS,
#        PEER_CONCURRENCY (64), PEER_WAIT)
# shellcheck source=bench/lib.sh disable=SC2154
source "$(dirname "$0")/lib.sh"
need curl node cc

PEER_DURATION=${PEER_DURATION:-10}
PEER_PRODUCERS=${PEER_PRODUCERS:-64}
PEER_CONCURRENCY=${PEER_CONCURRENCY:-64}
PEER_WAIT=${PEER_WAIT:-600}
PEER_LIGHT_DURATION=${PEER_LIGHT_DURATION:-10}

missing=$(bullmq_missing)
if [ -n "$missing" ]; then
    echo "########## bench/peer.sh SKIPPED: missing $missing; scripts/deps.sh bench installs them ##########" >&2
    result peer.skipped "\"missing $missing\""
    exit 0
fi
result peer.redis_version "$(redis-server --version | sed -n 's/.* v=\([^ ]*\).*/\1/p')"
result peer.bullmq_version "$(json "$BENCH_HOME/node_modules/bullmq/package.json" j.version)"
result peer.concurrency "$PEER_CONCURRENCY"

start_sink 0
for mode in nofsync fsync; do
    if [ "$mode" = fsync ]; then
        start_redis "redis-$mode" --appendonly yes --appendfsync always
    else
        start_redis "redis-$mode" --appendonly no
    fi
    run_bullmq "peer.$mode" --duration "$PEER_DURATION" --producers "$PEER_PRODUCERS" \
        --concurrency "$PEER_CONCURRENCY" --wait "$PEER_WAIT"
    run_bullmq "peer.$mode.light" --duration "$PEER_LIGHT_DURATION" --producers 2 --pace-ms 40 \
        --concurrency "$PEER_CONCURRENCY" --wait "$PEER_WAIT"
    stop_pid "$REDIS_PID"
done
