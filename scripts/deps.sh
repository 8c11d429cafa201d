#!/usr/bin/env bash
# deps.sh MODE: install the Debian packages herald needs, only those missing.
#   run   build and run the server
#   test  also cmocka, the sqlite3 CLI, PostgreSQL's server (postgresql: the PostgreSQL backend's
#         tests run on a throwaway cluster, scripts/pg-test.sh), clang and its
#         libFuzzer runtime (make fuzz-replay), node/npm (only when `node` is not on
#         PATH) and the e2e suite's npm packages (npm ci in tests/e2e when needed)
# A second run with everything present is quick: no apt call, no npm call.
set -euo pipefail

usage() { echo "usage: scripts/deps.sh run|test" >&2; exit 2; }
[ $# -eq 1 ] || usage
mode=$1
case "$mode" in run|test) ;; *) usage ;; esac

cd "$(dirname "$0")/.."

pkgs=(build-essential pkg-config libmicrohttpd-dev libcjson-dev libcurl4-openssl-dev
      libsqlite3-dev libpq-dev libssl-dev zlib1g-dev libcmark-dev)
if [ "$mode" = test ]; then
    # sqlite3: the CLI checks a database file after a test (tests/e2e/diskfull.test.mjs)
    pkgs+=(libcmocka-dev clang libclang-rt-14-dev postgresql sqlite3)
    if ! command -v node >/dev/null 2>&1; then
        pkgs+=(nodejs npm)
    fi
    # the admin UI's browser tests (tests/e2e/ui.test.mjs) drive Debian's chromium;
    # its fonts are only recommended, and screenshots need some
    pkgs+=(chromium fonts-liberation)
fi

missing=()
for p in "${pkgs[@]}"; do
    st=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
    if [ "$st" != "install ok installed" ]; then
        missing+=("$p")
    fi
done

if [ ${#missing[@]} -gt 0 ]; then
    echo "deps: missing Debian packages: ${missing[*]}"
    if [ "$(id -u)" -ne 0 ]; then
        echo "deps: not root; install them with:" >&2
        echo "  sudo apt-get update && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends ${missing[*]}" >&2
        exit 1
    fi
    export DEBIAN_FRONTEND=noninteractive
    apt-get update
    apt-get install -y --no-install-recommends "${missing[@]}"
    echo "deps: installed ${missing[*]}"
else
    echo "deps: all Debian packages present ($mode)"
fi

if [ "$mode" = test ]; then
    if ! command -v npm >/dev/null 2>&1; then
        echo "deps: node is on PATH but npm is not; install npm (or a node distribution with npm)" >&2
        exit 1
    fi
    e2e=tests/e2e
    if [ ! -d "$e2e/node_modules" ] || [ "$e2e/package-lock.json" -nt "$e2e/node_modules" ]; then
        echo "deps: npm ci in $e2e"
        (cd "$e2e" && npm ci --no-audit --no-fund)
        # npm ci creates no node_modules when there are no dependencies; the
        # directory's mtime is what the check above compares against.
        mkdir -p "$e2e/node_modules"
        touch "$e2e/node_modules"
    else
        echo "deps: $e2e/node_modules up to date"
    fi
fi
