#!/usr/bin/env bash
# check-debian-chroot.sh [DIR]: the README's quick start on a really fresh Debian 12, by
# hand (not part of make test or CI: it needs root, network access to Debian's mirror
# and mmdebstrap, and takes a few minutes). Builds a minimal bookworm chroot in DIR
# (default: a temp dir; removed at the end unless DIR was given), copies the committed
# tree (git archive HEAD) into it, installs make as the README says, then runs `make run`
# there with HERALD_LISTEN on a free port: it must install the packages, build, print the
# two keys and answer /healthz; then the server is stopped with SIGTERM and must exit 0.
# scripts/check-fresh-make.sh is the quick, package-free check of the same ordering that
# make test runs.
set -euo pipefail

[ "$(id -u)" -eq 0 ] || { echo "check-debian-chroot: must run as root (mmdebstrap --mode=root, chroot)" >&2; exit 2; }
command -v mmdebstrap >/dev/null || { echo "check-debian-chroot: needs mmdebstrap (apt-get install mmdebstrap)" >&2; exit 2; }

root="$(cd "$(dirname "$0")/.." && pwd)"
keep=${1:+yes}
dir="${1:-$(mktemp -d "${TMPDIR:-/tmp}/herald-deb12.XXXXXX")}"
port=$(( 30000 + RANDOM % 20000 ))
mounted=()
cleanup() {
    for m in "${mounted[@]}"; do umount "$m" 2>/dev/null || true; done
    [ -n "$keep" ] || rm -rf "$dir"
}
trap cleanup EXIT

if [ ! -x "$dir/bin/bash" ]; then
    rm -rf "$dir"
    mmdebstrap --mode=root --variant=apt bookworm "$dir"
fi
cp /etc/resolv.conf "$dir/etc/resolv.conf"
for m in proc dev; do mount --bind "/$m" "$dir/$m"; mounted+=("$dir/$m"); done
rm -rf "$dir/root/herald"
mkdir -p "$dir/root/herald"
git -C "$root" archive HEAD | tar -x -C "$dir/root/herald"

cat > "$dir/root/quickstart.sh" <<EOF
#!/bin/bash
# inside the chroot: the README's quick start, stopped once the server answers
set -u
apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq make >/dev/null || exit 1
cd /root/herald
export HERALD_LISTEN=127.0.0.1:$port
make run > /root/run.log 2>&1 &
pid=\$!
ok=0
for i in \$(seq 1 1200); do
    if grep -q '^HERALD_WRITE_KEY=' /root/run.log && grep -q '^HERALD_ADMIN_KEY=' /root/run.log &&
       { exec 3<>/dev/tcp/127.0.0.1/$port; } 2>/dev/null; then
        printf 'GET /healthz HTTP/1.0\r\n\r\n' >&3
        grep -q '"status":"ok"' <&3 && ok=1
        exec 3>&-
        break
    fi
    kill -0 \$pid 2>/dev/null || break
    sleep 1
done
# stop the server this make started: ./herald in /root/herald listening on our port
for p in /proc/[0-9]*; do
    [ "\$(cat \$p/comm 2>/dev/null)" = herald ] && [ "\$(readlink \$p/cwd)" = /root/herald ] &&
        tr '\0' '\n' < \$p/environ 2>/dev/null | grep -qx "HERALD_LISTEN=127.0.0.1:$port" &&
        kill -TERM "\${p#/proc/}"
done
wait \$pid; rc=\$?
echo "quickstart: healthz_ok=\$ok make_run_exit=\$rc"
[ \$ok = 1 ] && [ \$rc = 0 ]
EOF
chmod +x "$dir/root/quickstart.sh"
if chroot "$dir" /root/quickstart.sh; then
    echo "check-debian-chroot: ok: make run installed, built and served on a fresh Debian 12 ($dir)"
else
    echo "check-debian-chroot: FAIL; the log:" >&2
    tail -n 30 "$dir/root/run.log" >&2
    exit 1
fi
