#!/usr/bin/env bash
# check-layers.sh: enforce herald's layering on src/ (docs/internals/conventions.md).
#  1. #include "..." may only point to the same folder, util, or a layer below:
#       util       -> util
#       store      -> util
#       queue      -> store
#       expr       -> util   (pure paths and expressions: engine and render share it)
#       render, route, providers -> expr, util
#       ingest     -> queue, store, render, route, providers, expr   (not engine, api, http)
#       engine     -> queue, store, render, route, providers, expr   (not ingest, api, http)
#       api        -> ingest, engine, queue, store, render, route, providers, expr,
#                     and from http only http/http.h (request/response types)
#       http       -> anything but api, store, queue, ingest, engine
#       admin      -> store
#       src/main.c -> anything
#     A layer is the first folder under src/ (src/store/sqlite/ is store).
#     A new folder under src/ must be added to the table below before use.
#  2. No file under src/ outside src/store/ holds SQL in a string literal.
#  3. Outside src/store/ and src/queue/, nested savepoints use queue_txn_sub, not
#     store_txn_sub (jobs handed over inside a rolled-back savepoint are dropped).
# Prints each violation as file:line and exits 1; prints "check-layers: ok" otherwise.
set -euo pipefail

cd "$(dirname "$0")/.."

fail=0

# --- 1. includes ---------------------------------------------------------------
files=$(find src -type f \( -name '*.c' -o -name '*.h' \) | sort)
if [ -n "$files" ]; then
    # shellcheck disable=SC2086
    awk '
    BEGIN {
        allow["util"]      = " util "
        allow["store"]     = " util "
        allow["queue"]     = " store util "
        allow["expr"]      = " util "
        allow["render"]    = " expr util "
        allow["route"]     = " expr util "
        allow["providers"] = " expr util "
        allow["ingest"]    = " queue store render route providers expr util "
        allow["engine"]    = " queue store render route providers expr util "
        allow["api"]       = " ingest engine queue store render route providers expr util "
        allow["http"]      = " util render route providers expr "
        allow["admin"]     = " store util "
        bad = 0
    }
    # normalize a/b/../c/./d -> a/c/d
    function norm(p,    n, parts, out, k, i, res) {
        n = split(p, parts, "/")
        k = 0
        for (i = 1; i <= n; i++) {
            if (parts[i] == "" || parts[i] == ".") continue
            if (parts[i] == "..") { if (k > 0) k--; else out[++k] = ".."; continue }
            out[++k] = parts[i]
        }
        res = ""
        for (i = 1; i <= k; i++) res = res (i > 1 ? "/" : "") out[i]
        return res
    }
    # layer of a path under src/: first folder, "top" for files directly in src/,
    # "" for paths outside src/
    function layer(p,    n, parts) {
        n = split(p, parts, "/")
        if (parts[1] != "src") return ""
        if (n == 2) return "top"
        return parts[2]
    }
    FNR == 1 {
        file = FILENAME
        dir = file; sub(/\/[^\/]*$/, "", dir)
        from = layer(file)
        if (from != "top" && !(from in allow)) {
            printf "%s: folder src/%s is not a known layer (add it to scripts/check-layers.sh)\n", file, from
            bad = 1
        }
        if (from == "top" && file != "src/main.c") {
            printf "%s: only src/main.c may sit directly in src/\n", file
            bad = 1
        }
    }
    /^[ \t]*#[ \t]*include[ \t]*"/ {
        inc = $0
        sub(/^[ \t]*#[ \t]*include[ \t]*"/, "", inc)
        sub(/".*$/, "", inc)
        target = norm(dir "/" inc)
        to = layer(target)
        if (to == "" || to == from || file == "src/main.c") next
        if (from == "api" && target == "src/http/http.h") next
        if (to == "top" || !(from in allow) || index(allow[from], " " to " ") == 0) {
            printf "%s:%d: layer %s may not include %s (\"%s\")\n", file, FNR, from, target, inc
            bad = 1
        }
    }
    END { exit bad }
    ' $files || fail=1

    # --- 2. SQL only in src/store/ ---------------------------------------------------
    sql='"[^"]*(SELECT[[:space:]].*[[:space:]]FROM\b|INSERT[[:space:]]+INTO\b|UPDATE[[:space:]].*[[:space:]]SET\b|DELETE[[:space:]]+FROM\b|CREATE[[:space:]]+(TABLE|(UNIQUE[[:space:]]+)?INDEX)\b|PRAGMA[[:space:]]+[a-z_]+)|"[[:space:]]*SELECT[[:space:]]'
    others=$(printf '%s\n' $files | grep -v '^src/store/' || true)
    if [ -n "$others" ]; then
        # shellcheck disable=SC2086
        if hits=$(grep -nE "$sql" $others); then
            printf '%s\n' "$hits" | while IFS= read -r h; do
                echo "${h%%:*}:$(echo "$h" | cut -d: -f2): SQL outside src/store/: $(echo "$h" | cut -d: -f3- | sed 's/^[[:space:]]*//')"
            done
            fail=1
        fi
    fi

    # --- 3. nested savepoints below the queue go through queue_txn_sub ----------------
    # (a savepoint rolled back inside a job's commit must drop the jobs it handed over)
    others=$(printf '%s\n' $files | grep -vE '^src/(store|queue)/' || true)
    if [ -n "$others" ]; then
        # shellcheck disable=SC2086
        if hits=$(grep -nE '\bstore_txn_sub\(' $others); then
            printf '%s\n' "$hits" | while IFS= read -r h; do
                echo "${h%%:*}:$(echo "$h" | cut -d: -f2): store_txn_sub outside src/store/ and src/queue/: use queue_txn_sub"
            done
            fail=1
        fi
    fi
fi

if [ "$fail" -ne 0 ]; then
    echo "check-layers: FAILED" >&2
    exit 1
fi
echo "check-layers: ok"
