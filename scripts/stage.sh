#!/usr/bin/env bash
# stage.sh NAME CMD [ARG...]: run CMD as one timed stage of `make test`: prints
# "stage NAME: N s (ok|FAILED)" when it ends and appends that line to $STAGE_LOG
# (when set), so the caller can print every stage's time at the end, passed or not.
# Exits with CMD's status.
set -u
[ $# -ge 2 ] || { echo "usage: scripts/stage.sh NAME CMD [ARG...]" >&2; exit 2; }
name=$1; shift
start=$(date +%s)
echo "stage $name: started $(date -u +%H:%M:%S)"
"$@"; rc=$?
line="stage $name: $(( $(date +%s) - start )) s ($([ $rc -eq 0 ] && echo ok || echo "FAILED, exit $rc"))"
echo "$line"
if [ -n "${STAGE_LOG:-}" ]; then echo "$line" >> "$STAGE_LOG"; fi
exit $rc
