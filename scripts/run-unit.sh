#!/usr/bin/env bash
# run-unit.sh BIN...: run each unit test binary (cmocka prints its own per-test
# lines), then one summary line `unit: N passed, M failed` (N, M count binaries).
# Exits 1 if any binary failed.
set -euo pipefail

passed=0
failed=0
failed_names=()
for bin in "$@"; do
    echo "=== $bin"
    rc=0
    "$bin" || rc=$?
    if [ "$rc" -eq 0 ]; then
        passed=$((passed + 1))
    else
        failed=$((failed + 1))
        if [ "$rc" -gt 128 ]; then
            failed_names+=("$bin (killed by signal $((rc - 128)))")
        else
            failed_names+=("$bin (exit $rc)")
        fi
    fi
done

for f in ${failed_names[@]+"${failed_names[@]}"}; do
    echo "FAILED: $f"
done
echo "unit: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
