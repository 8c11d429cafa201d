#!/usr/bin/env bash
# run.sh: build herald, run every benchmark, print the markdown tables. `make bench` is
# `bench/run.sh --write-docs` (after building herald and the bench tools).
#
#   bench/run.sh [--write-docs] [--quick] [--only ingest|send|flow|peer|slow|fanout|backlog|pg|growth]
#                [--no-build] [--rev REV] [--out FILE]
#
#   --write-docs  also rewrite the generated section of docs/PERFORMANCE.md (between the
#                 <!-- bench:results:begin/end --> markers; the prose around is kept)
#   --quick       (or BENCH_QUICK=1) 3 s runs instead of 10 s, and the growth bench on
#                 100,000 profiles / 200,000 messages: a smoke test of the scripts, not figures
#   --only X      run only bench/X.sh (repeatable, or a comma list: --only peer,slow,fanout)
#   (peer.sh: BullMQ on redis-server, the peer baseline; slow.sh: /send to a sink that
#   answers after 100 ms, herald and BullMQ; fanout.sh: one announcement to 100,000
#   recipients; backlog.sh: herald's memory under 1,000,000 pending messages, ~2.5 min;
#   peer.sh and slow.sh's BullMQ part need redis-server and bench/node_modules:
#   scripts/deps.sh bench, which `make bench` runs)
#   (pg.sh: 1-3 herald nodes on a throwaway PostgreSQL cluster, ~6 minutes; in the default
#   set when /usr/lib/postgresql/*/bin/pg_ctl exists, else skipped with a loud line)
#   (growth.sh: the ingest and send figures on an empty store and on one seeded with
#   1,000,000 profiles and 10,000,000 messages with their history; see bench/README.md)
#   --no-build    use ./herald (or $HERALD_BIN) as it is (default: `make herald` first)
#   --rev REV     benchmark commit REV exactly: `git archive REV` into a temp dir and
#                 build there (the working tree's uncommitted changes are left out)
#   --out FILE    keep the raw key=value results in FILE (default: a temp file)
#
# Takes about 13 minutes with the defaults without growth (pg: ~6; flow: ~4.5, most of it
# herald draining the saturating run's backlog), plus about 6-9 for peer (~1.5), slow
# (~2: two 60 s windows) and fanout (100,000 deliveries at herald's rate, 2-5 today),
# plus growth.sh (seeding the 10M-message store dominates it; the report gives the time
# of every part). Needs wrk, nginx, curl, node, cc, libcurl's headers, redis-server and
# bench/node_modules (scripts/deps.sh bench installs them all).
set -euo pipefail
cd "$(dirname "$0")/.."

write_docs=0 build=1 only="" out="" rev=""
while [ $# -gt 0 ]; do
    case $1 in
    --write-docs) write_docs=1 ;;
    --quick) BENCH_QUICK=1 ;;
    --only) only="$only ${2//,/ }"; shift ;;
    --no-build) build=0 ;;
    --rev) rev=$2; shift ;;
    --out) out=$2; shift ;;
    -h | --help) sed -n '2,31p' "$0"; exit 0 ;;
    *) echo "run.sh: unknown option $1" >&2; exit 2 ;;
    esac
    shift
done

for b in $only; do
    case $b in
    ingest | send | flow | peer | slow | fanout | backlog | pg | growth) ;;
    *) echo "run.sh: unknown bench $b for --only (ingest send flow peer slow fanout backlog pg growth)" >&2; exit 2 ;;
    esac
done

if [ "${BENCH_QUICK:-0}" = 1 ]; then
    export PG_DURATION=3 SEND_PG_DURATION=2 BENCH_DURATION=3 SEND_DURATION=3 LIGHT_DURATION=3 \
        FLOW_DURATION=2 FLOW_LIGHT_DURATION=3 PEER_DURATION=3 PEER_LIGHT_DURATION=3 \
        SLOW_DURATION=2 SLOW_WINDOW=15
    export FANOUT_N=${FANOUT_N:-10000}
    export GROWTH_PROFILES=${GROWTH_PROFILES:-100000} GROWTH_MESSAGES=${GROWTH_MESSAGES:-200000}
fi
started=$(date +%s)

tmp_out="" rev_dir=""
trap 'rm -rf ${tmp_out:+"$tmp_out"} ${rev_dir:+"$rev_dir"}' EXIT
if [ -n "$rev" ]; then
    rev_dir=$(mktemp -d "${TMPDIR:-/tmp}/herald-bench-rev.XXXXXX")
    git archive "$rev" | tar -x -C "$rev_dir"
    make -C "$rev_dir" herald >&2
    export HERALD_BIN=$rev_dir/herald
    commit=$(git rev-parse --short "$rev") dirty=0
else
    if [ "$build" = 1 ]; then make herald >&2; fi
    commit=$(git rev-parse --short HEAD 2>/dev/null || echo '?')
    dirty=$(git status --porcelain --untracked-files=no 2>/dev/null | wc -l)
fi

if [ -z "$out" ]; then
    tmp_out=$(mktemp "${TMPDIR:-/tmp}/herald-bench-results.XXXXXX")
    out=$tmp_out
fi
: >"$out"
export BENCH_OUT=$out
{
    echo "run.date=$(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo "run.loadavg=$(cut -d' ' -f1-3 /proc/loadavg)"
    echo "run.commit=$commit"
    echo "run.dirty=$dirty"
    echo "run.threads=${BENCH_THREADS:-2}"
    echo "run.conns=${BENCH_CONNS:-64}"
    echo "run.duration=${BENCH_DURATION:-10}"
    echo "run.send_duration=${SEND_DURATION:-10}"
    echo "run.flow_duration=${FLOW_DURATION:-10}"
    echo "run.flow_light_duration=${FLOW_LIGHT_DURATION:-10}"
    echo "run.peer_duration=${PEER_DURATION:-10}"
    echo "run.peer_light_duration=${PEER_LIGHT_DURATION:-10}"
    echo "run.slow_duration=${SLOW_DURATION:-5}"
    echo "run.quick=${BENCH_QUICK:-0}"
    # the machine: the report prints these beside the figures
    echo "run.cpu_model=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)"
    echo "run.cpus=$(nproc)"
    echo "run.mem_gib=$(awk '/^MemTotal:/ {printf "%.1f", $2 / 1048576}' /proc/meminfo)"
    echo "run.kernel=$(uname -r)"
    echo "run.os=$(. /etc/os-release 2>/dev/null && echo "${PRETTY_NAME:-?}") (debian_version $(cat /etc/debian_version 2>/dev/null || echo ?))"
    # where the benches' fresh SQLite stores live (lib.sh: mktemp under TMPDIR)
    echo "run.store_fs=$(df -PT "${TMPDIR:-/tmp}" | awk 'NR == 2 {print $2 " on " $1}') (${TMPDIR:-/tmp})"
} >>"$out"

pg_here=0
if ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1; then pg_here=1; fi
for b in ingest send flow peer slow fanout backlog pg growth; do
    if [ -z "$only" ] || [[ " $only " == *" $b "* ]]; then
        if [ "$b" = pg ] && [ "$pg_here" = 0 ]; then
            echo "########## bench/pg.sh SKIPPED: no PostgreSQL server binaries (/usr/lib/postgresql/*/bin/pg_ctl); scripts/deps.sh test installs them ##########" >&2
            echo "pg.skipped=1" >>"$out"
            continue
        fi
        echo "== bench/$b.sh ($(date -u +%H:%M:%S))" >&2
        t0=$(date +%s)
        bash "bench/$b.sh" >/dev/null
        echo "run.$b.elapsed_s=$(($(date +%s) - t0))" >>"$out"
    fi
done
echo "run.elapsed_s=$(($(date +%s) - started))" >>"$out"

if [ "$write_docs" = 1 ]; then
    node bench/report.mjs "$out" --docs docs/PERFORMANCE.md
else
    node bench/report.mjs "$out"
fi
