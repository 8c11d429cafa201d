#!/usr/bin/env bash
# check-fresh-make.sh: the README's two commands, `make run` and `make test`, work the
# first time on a machine where the -dev packages are not installed yet (issue 13: the
# Makefile asked pkg-config when it was read, before scripts/deps.sh installed anything,
# so the first build had no -I/usr/include/postgresql). Runs in a few seconds, needs
# no packages and touches nothing outside a temp dir:
#
#   - a copy of the build inputs (Makefile, src, web, docs/openapi.yaml, scripts, tests
#     unit and fuzz sources) in a temp dir;
#   - on PATH, a fake pkg-config that answers nothing (exit 1, no flags) until a flag
#     file exists, then "-DFAKE_PKG_CFLAGS" / "-lfakepkg";
#   - in the copy, a fake scripts/deps.sh that "installs" (creates the flag file), and
#     fakes of the scripts that start PostgreSQL and run the suites;
#   - CC/FUZZ_CC and ar are fakes: the compiler fails, as the real one did, when a
#     compile lacks pkg-config's cflags or a link its libs, and otherwise writes an
#     empty object or a tiny executable (so `./herald serve` and the test binaries run).
#
# Checked: (1) `make herald` before any install stops with the pkg-check message (the
# fakes do hide the packages); (2) `make run` from a clean copy installs, builds every
# object with the flags and starts `herald serve`; (3) `make test` from a clean copy
# installs and goes through every build and suite step to "all suites passed".
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
tmp="$(mktemp -d "${TMPDIR:-/tmp}/herald-fresh-make.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT
tree="$tmp/tree"
bin="$tmp/bin"
flag="$tmp/installed"
log="$tmp/log"
mkdir -p "$tree/docs" "$tree/tests" "$bin"

fail() {
    echo "check-fresh-make: FAIL: $*" >&2
    if [ -f "$log" ]; then
        echo "--- last output:" >&2
        tail -n 25 "$log" >&2
    fi
    exit 1
}

# ---- the copy -----------------------------------------------------------------------
cd "$root"
cp -R Makefile src web scripts "$tree/"
cp docs/openapi.yaml "$tree/docs/"
cp -R tests/unit tests/fuzz "$tree/tests/"
cp tests/tsan.supp "$tree/tests/" 2>/dev/null || true

# ---- the fakes ----------------------------------------------------------------------
cat > "$bin/pkg-config" <<EOF
#!/bin/sh
# fake pkg-config: knows nothing until "$flag" exists
[ -e "$flag" ] || exit 1
for a in "\$@"; do
    case "\$a" in
    --cflags) echo "-DFAKE_PKG_CFLAGS"; exit 0 ;;
    --libs) echo "-lfakepkg"; exit 0 ;;
    esac
done
exit 0
EOF

cat > "$bin/fakecc" <<'EOF'
#!/bin/sh
# fake compiler: fails like the real one when pkg-config's answers are missing
out="" compile=0 cflags=0 libs=0 src=""
prev=""
for a in "$@"; do
    [ "$prev" = "-o" ] && out="$a"
    case "$a" in
    -c) compile=1 ;;
    -DFAKE_PKG_CFLAGS) cflags=1 ;;
    -lfakepkg) libs=1 ;;
    *.c) src="$a" ;;
    esac
    prev="$a"
done
[ -n "$out" ] || { echo "fakecc: no -o in: $*" >&2; exit 2; }
if [ -n "$src" ] && [ "$cflags" -eq 0 ]; then
    echo "fakecc: $src: compiled without pkg-config's cflags (libpq-fe.h: No such file or directory)" >&2
    exit 1
fi
mkdir -p "$(dirname "$out")"
if [ "$compile" -eq 1 ]; then
    : > "$out"
    exit 0
fi
if [ "$libs" -eq 0 ]; then
    echo "fakecc: $out: linked without pkg-config's libs" >&2
    exit 1
fi
printf '#!/bin/sh\necho "fake %s $*"\nexit 0\n' "$(basename "$out")" > "$out"
chmod +x "$out"
EOF

cat > "$bin/ar" <<'EOF'
#!/bin/sh
# fake ar: the archive is just a file
: > "$2"
EOF

cat > "$tree/scripts/deps.sh" <<EOF
#!/bin/sh
# fake deps.sh: "installs" the packages, i.e. pkg-config knows them from now on
touch "$flag"
echo "deps (fake): installed the \$1 packages"
EOF

cat > "$tree/scripts/pg-test.sh" <<'EOF'
#!/bin/sh
# fake pg-test.sh: a DSN, and nothing to stop
[ "$1" = start ] && echo "postgres://fake@127.0.0.1:1/fake"
exit 0
EOF

for s in run-unit.sh run-e2e.sh check-fresh-make.sh; do
    printf '#!/bin/sh\necho "fake %s ran"\nexit 0\n' "$s" > "$tree/scripts/$s"
done
chmod +x "$bin"/* "$tree"/scripts/*.sh

# a clean environment: no parent make's flags or jobserver, no test cluster
runmake() {
    env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL -u HERALD_TEST_PG_DSN \
        PATH="$bin:$PATH" make -C "$tree" --no-print-directory CC="$bin/fakecc" FUZZ_CC="$bin/fakecc" "$@"
}

fresh() {
    rm -rf "$flag" "$tree/build" "$tree/herald"
}

# ---- (1) the fakes hide the packages: a plain build stops with pkg-check's message ----
fresh
if runmake -j2 herald > "$log" 2>&1; then
    fail "make herald succeeded before any install: the fakes do not hide pkg-config's answers"
fi
grep -q "pkg-config does not find all of" "$log" || fail "make herald before the install did not say what is missing"

# ---- (2) make run: installs, then builds with the flags, then starts the server -----
fresh
runmake -j2 run > "$log" 2>&1 || fail "make run failed on a fresh machine"
grep -q "deps (fake): installed the run packages" "$log" || fail "make run did not install the packages"
grep -q "fake herald serve" "$log" || fail "make run did not start ./herald serve"
[ -x "$tree/herald" ] || fail "make run left no ./herald"
n_run=$(grep -c -- '-c -o build/rel/src/' "$log" || true)
[ "$n_run" -gt 0 ] || fail "make run compiled nothing"

# ---- (3) make test: installs, then every build and suite step ------------------------
fresh
runmake -j2 test > "$log" 2>&1 || fail "make test failed on a fresh machine"
grep -q "deps (fake): installed the test packages" "$log" || fail "make test did not install the packages"
grep -q "make test: all suites passed" "$log" || fail "make test did not reach its end"
for v in rel asan tsan; do
    [ -x "$tree/build/$v/herald" ] || fail "make test did not build build/$v/herald"
done

echo "check-fresh-make: ok (make run: $n_run objects built after the install and herald serve started; make test: every variant built after the install)"
