#!/usr/bin/env bash
# run-e2e.sh: run the black-box suites (tests/e2e/*.test.mjs) with Node's test
# runner, one file at a time, against the binary named by HERALD_BIN (required):
# first on SQLite, then again on PostgreSQL (HERALD_TEST_STORE=postgres; each server
# gets a fresh database on the cluster at HERALD_TEST_PG_DSN). Fails when either pass
# fails. Without HERALD_TEST_PG_DSN the PostgreSQL pass cannot run: that is said loudly
# and is a failure, unless HERALD_E2E_SQLITE_ONLY=1 asks for the SQLite pass alone.
set -euo pipefail

if [ -z "${HERALD_BIN:-}" ]; then
    echo "run-e2e: HERALD_BIN is not set (the herald binary to test, e.g. HERALD_BIN=\$PWD/build/rel/herald)" >&2
    exit 2
fi
if [ ! -f "$HERALD_BIN" ] || [ ! -x "$HERALD_BIN" ]; then
    echo "run-e2e: HERALD_BIN=$HERALD_BIN is not an executable file" >&2
    exit 2
fi
# absolute, before we change directory
HERALD_BIN="$(cd "$(dirname "$HERALD_BIN")" && pwd)/$(basename "$HERALD_BIN")"
export HERALD_BIN

cd "$(dirname "$0")/.."

shopt -s nullglob
files=(tests/e2e/*.test.mjs)
# HERALD_E2E_ONLY="a b c": only tests/e2e/{a,b,c}.test.mjs (the TSan pass of `make test`
# runs a subset; see TSAN_E2E in the Makefile). A name without its file is an error.
if [ -n "${HERALD_E2E_ONLY:-}" ]; then
    files=()
    for n in $HERALD_E2E_ONLY; do
        if [ ! -f "tests/e2e/$n.test.mjs" ]; then
            echo "run-e2e: HERALD_E2E_ONLY names $n, but tests/e2e/$n.test.mjs does not exist" >&2
            exit 2
        fi
        files+=("tests/e2e/$n.test.mjs")
    done
fi
if [ ${#files[@]} -eq 0 ]; then
    echo "run-e2e: no tests/e2e/*.test.mjs files" >&2
    exit 1
fi

header() {
    echo
    echo "================================================================================"
    echo "run-e2e: $1"
    echo "================================================================================"
}

sqlite_rc=0
pg_rc=0
header "pass 1/2: SQLite store ($HERALD_BIN, ${#files[@]} file(s))"
HERALD_TEST_STORE=sqlite node --test --test-concurrency=1 "${files[@]}" || sqlite_rc=$?

if [ -n "${HERALD_TEST_PG_DSN:-}" ]; then
    header "pass 2/2: PostgreSQL store at $HERALD_TEST_PG_DSN ($HERALD_BIN, ${#files[@]} file(s))"
    HERALD_TEST_STORE=postgres node --test --test-concurrency=1 "${files[@]}" || pg_rc=$?
else
    header "pass 2/2: PostgreSQL"
    echo "!!! run-e2e: PostgreSQL not available (HERALD_TEST_PG_DSN is not set): e2e suites NOT run against PostgreSQL !!!" >&2
    if [ "${HERALD_E2E_SQLITE_ONLY:-}" = 1 ]; then
        echo "run-e2e: HERALD_E2E_SQLITE_ONLY=1: only the SQLite pass was asked for" >&2
    else
        echo "run-e2e: failing; start a cluster (HERALD_TEST_PG_DSN=\$(scripts/pg-test.sh start)) or set HERALD_E2E_SQLITE_ONLY=1" >&2
        pg_rc=1
    fi
fi

echo
echo "run-e2e: SQLite pass: $([ $sqlite_rc -eq 0 ] && echo passed || echo "FAILED (exit $sqlite_rc)")"
if [ -n "${HERALD_TEST_PG_DSN:-}" ]; then
    echo "run-e2e: PostgreSQL pass: $([ $pg_rc -eq 0 ] && echo passed || echo "FAILED (exit $pg_rc)")"
else
    echo "run-e2e: PostgreSQL pass: NOT RUN (PostgreSQL not available: HERALD_TEST_PG_DSN is not set)"
fi
[ $sqlite_rc -eq 0 ] && [ $pg_rc -eq 0 ]
