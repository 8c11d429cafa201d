#!/usr/bin/env bash
# run-unit.sh BIN...: run each unit test binary (cmocka prints its own per-test
# lines), then one summary line `unit: N passed, M failed` (N, M count binaries).
# Exits 1 if any binary failed. For a ThreadSanitizer build, TSAN_OPTIONS (unless set)
# reports every race, makes the binary exit 66 if there was one, and reads the
# suppressions in tests/tsan.supp; other builds ignore it.
set -euo pipefail

supp="$(cd "$(dirname "$0")/.." && pwd)/tests/tsan.supp"
export TSAN_OPTIONS="${TSAN_OPTIONS:-halt_on_error=0:exitcode=66:second_deadlock_stack=1:history_size=4:suppressions=$supp}"

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
