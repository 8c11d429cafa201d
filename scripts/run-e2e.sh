#!/usr/bin/env bash
# run-e2e.sh: run the black-box suites (tests/e2e/*.test.mjs) with Node's test
# runner, one file at a time, against the binary named by HERALD_BIN (required).
# The runner's exit code passes through.
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
if [ ${#files[@]} -eq 0 ]; then
    echo "run-e2e: no tests/e2e/*.test.mjs files" >&2
    exit 1
fi

echo "run-e2e: $HERALD_BIN, ${#files[@]} file(s)"
exec node --test --test-concurrency=1 "${files[@]}"
