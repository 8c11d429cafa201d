#!/usr/bin/env bash
# deps.sh MODE: install the Debian packages herald needs, only those missing.
#   run   build and run the server
#   test  also cmocka, the sqlite3 CLI, PostgreSQL's server (postgresql: the PostgreSQL backend's
#         tests run on a throwaway cluster, scripts/pg-test.sh), clang and its
#         libFuzzer runtime (make fuzz-replay), the openssl CLI (the e2e suites' test
#         certificates), node/npm (only when `node` is not on PATH), Node 20 when the
#         node on PATH is older (Debian 12 ships 18; see below) and the e2e suite's npm
#         packages (npm ci in tests/e2e when needed)
#   bench also wrk, nginx-light, curl, PostgreSQL's server, redis-server (the peer
#         baseline; the bench starts its own, never the system's service), node/npm
#         (when `node` is not on PATH) and bench/'s npm packages (bullmq; npm ci in
#         bench/ when needed): what `make bench` needs
# A second run with everything present is quick: no apt call, no npm call.
set -euo pipefail

usage() { echo "usage: scripts/deps.sh run|test|bench" >&2; exit 2; }
[ $# -eq 1 ] || usage
mode=$1
case "$mode" in run|test|bench) ;; *) usage ;; esac

cd "$(dirname "$0")/.."

pkgs=(build-essential pkg-config libmicrohttpd-dev libcjson-dev libcurl4-openssl-dev
      libsqlite3-dev libpq-dev libssl-dev zlib1g-dev libcmark-dev libjemalloc-dev)
if [ "$mode" = test ]; then
    # sqlite3: the CLI checks a database file after a test (tests/e2e/diskfull.test.mjs)
    pkgs+=(libcmocka-dev clang libclang-rt-14-dev postgresql sqlite3)
    # openssl: tests/e2e/lib/tls.mjs makes the SMTP TLS tests' certificates with the CLI
    pkgs+=(openssl)
    if ! command -v node >/dev/null 2>&1; then
        pkgs+=(nodejs npm)
    fi
    # the admin UI's browser tests (tests/e2e/ui.test.mjs) drive Debian's chromium;
    # its fonts are only recommended, and screenshots need some
    pkgs+=(chromium fonts-liberation)
fi
if [ "$mode" = bench ]; then
    pkgs+=(wrk nginx-light curl postgresql redis-server)
    if ! command -v node >/dev/null 2>&1; then
        pkgs+=(nodejs npm)
    fi
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

# npm_ci DIR: npm ci in DIR when its node_modules is missing or older than the lock file
npm_ci() {
    local dir=$1
    if ! command -v npm >/dev/null 2>&1; then
        echo "deps: node is on PATH but npm is not; install npm (or a node distribution with npm)" >&2
        exit 1
    fi
    # tests/e2e and bench/ need Node >= 20 (tests/e2e's package.json engines;
    # playwright-core, smtp-server, mailparser and @segment/analytics-node require it) and
    # Debian 12's nodejs is 18: then the npm registry's `node` package (a Node 20 binary)
    # goes into npm's global prefix, /usr/local/bin, which comes before /usr/bin on PATH
    node_major() { node -e 'console.log(process.versions.node.split(".")[0])' 2>/dev/null || echo 0; }
    if [ "$(node_major)" -lt 20 ]; then
        echo "deps: node $(node --version 2>/dev/null || echo none) is older than 20; npm install -g node@20"
        if [ "$(id -u)" -ne 0 ]; then
            echo "deps: not root; install Node 20 or later (e.g. sudo npm install -g node@20)" >&2
            exit 1
        fi
        npm install -g --no-audit --no-fund node@20
        hash -r
        if [ "$(node_major)" -lt 20 ]; then
            echo "deps: node on PATH is still $(node --version); put $(npm prefix -g)/bin before it on PATH" >&2
            exit 1
        fi
        echo "deps: node $(node --version) from $(command -v node)"
    fi
    if [ ! -d "$dir/node_modules" ] || [ "$dir/package-lock.json" -nt "$dir/node_modules" ]; then
        echo "deps: npm ci in $dir"
        (cd "$dir" && npm ci --no-audit --no-fund)
        # npm ci creates no node_modules when there are no dependencies; the
        # directory's mtime is what the check above compares against.
        mkdir -p "$dir/node_modules"
        touch "$dir/node_modules"
    else
        echo "deps: $dir/node_modules up to date"
    fi
}

if [ "$mode" = test ]; then
    npm_ci tests/e2e
fi
if [ "$mode" = bench ]; then
    npm_ci bench
fi
