#!/usr/bin/env bash
# scripts/package, then the .deb as an operator meets it: dpkg -i, the files in their FHS
# places, the sluice user, `systemd-analyze verify` on the installed unit, sluiced
# --version, sluicectl --help, the unit's command run by hand as the sluice user (no
# systemd here) answering `status`, then dpkg -r and dpkg -P leaving no file behind.
# Needs root for dpkg (CI is root); exits 77 (skipped) only where root cannot be had.
# Usage: package_test.sh SOURCE_ROOT BUILD_DIR
set -euo pipefail
src=$1 build=$2
if [ "$(id -u)" -ne 0 ]; then
  echo "SKIP: dpkg -i needs root (CI runs as root)"; exit 77
fi
if dpkg-query -W -f='${Status}' sluice 2>/dev/null | grep -q "ok installed"; then
  echo "FAIL: a sluice package is installed on this machine; remove it first (dpkg -r sluice): this test installs and removes its own"
  exit 1
fi
work=$(mktemp -d); pid=""
chmod 0755 "$work" # the sluice user runs sluiced below with its directories in here
cleanup() {
  [ -n "$pid" ] && kill "$pid" 2>/dev/null || true
  dpkg -P sluice >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
fail() { echo "FAIL: $*"; exit 1; }

"$src/scripts/package" "$build" "$work" | tee "$work/package.log"
deb=$(ls "$work"/sluice_*_amd64.deb) || fail "no sluice_VERSION_amd64.deb"
dpkg -i "$deb" > "$work/dpkg-i.log" 2>&1 || { cat "$work/dpkg-i.log"; fail "dpkg -i"; }

for f in /usr/bin/sluiced /usr/bin/sluicectl /usr/bin/sluice-read /usr/bin/sluice-gen \
         /usr/sbin/sluice-hugepages /etc/sluice/sluiced.toml /etc/default/sluiced \
         /usr/lib/systemd/system/sluiced.service \
         /usr/share/bash-completion/completions/sluicectl /usr/share/doc/sluice/DEPLOY.md \
         /usr/share/sluice/grafana/sluice.json \
         /usr/share/man/man1/sluiced.1.gz /usr/share/man/man1/sluicectl.1.gz \
         /usr/share/man/man1/sluice-read.1.gz /usr/share/man/man1/sluice-gen.1.gz; do
  [ -e "$f" ] || fail "$f is not installed"
done
getent passwd sluice >/dev/null || fail "postinst did not create the sluice user"
out=$(systemd-analyze verify /usr/lib/systemd/system/sluiced.service 2>&1) || { echo "$out"; fail "verify"; }
[ -z "$out" ] || { echo "$out"; fail "systemd-analyze verify printed warnings"; }
version=$(/usr/bin/sluiced --version) || fail "sluiced --version"
[[ "$version" == "sluiced "* ]] || fail "sluiced --version printed '$version'"
/usr/bin/sluicectl --help | grep -q "shutdown" || fail "sluicectl --help"
bash -c 'source /usr/share/bash-completion/completions/sluicectl; COMP_WORDS=(sluicectl st); COMP_CWORD=1; _sluicectl; echo "${COMPREPLY[*]}"' |
  grep -q "status stats" || fail "bash completion of 'sluicectl st'"

# The unit's ExecStart, by hand, as the unit's user with its directories (no systemd
# runs here): kernel UDP input, so that no DPDK port or capability is needed.
run=$work/run; state=$work/state
install -d -o sluice -g sluice -m 0750 "$run" "$state"
port=$((20000 + $$ % 20000))
XDG_RUNTIME_DIR=$run runuser -u sluice -- /usr/bin/sluiced -- --config /etc/sluice/sluiced.toml \
  --kernel-udp 127.0.0.1 --udp-port "$port" --data-dir "$state" \
  --control-socket "$run/sluiced.sock" > "$work/sluiced.log" 2>&1 &
pid=$!
deadline=$((SECONDS + 120))
until /usr/bin/sluicectl --socket "$run/sluiced.sock" status > "$work/status" 2>/dev/null; do
  kill -0 "$pid" 2>/dev/null || { cat "$work/sluiced.log"; fail "sluiced as user sluice exited"; }
  [ $SECONDS -lt $deadline ] || { cat "$work/sluiced.log"; fail "no status within 120 s"; }
  sleep 0.1
done
grep -q "memory.mode: no-huge" "$work/status" || { cat "$work/status"; fail "status has no memory mode"; }
# The packaged config serves Prometheus' /metrics on 127.0.0.1:9464 (docs/DEPLOY.md §9).
grep -q "metrics_url: http://127.0.0.1:9464/metrics" "$work/status" ||
  { cat "$work/status"; fail "status has no metrics_url from the packaged config"; }
exec 3<>/dev/tcp/127.0.0.1/9464 || fail "nothing listens on 127.0.0.1:9464"
printf 'GET /metrics HTTP/1.0\r\n\r\n' >&3
grep -q "^sluice_build_info" <&3 || fail "GET /metrics on 127.0.0.1:9464 has no sluice_build_info"
exec 3<&-
/usr/bin/sluicectl --socket "$run/sluiced.sock" shutdown >/dev/null || fail "sluicectl shutdown"
wait "$pid" || { cat "$work/sluiced.log"; fail "sluiced exited $?"; }
pid=""

dpkg -r sluice > "$work/dpkg-r.log" 2>&1 || { cat "$work/dpkg-r.log"; fail "dpkg -r"; }
for f in /usr/bin/sluiced /usr/bin/sluicectl /usr/lib/systemd/system/sluiced.service; do
  [ ! -e "$f" ] || fail "$f left after dpkg -r"
done
[ -e /etc/sluice/sluiced.toml ] || fail "dpkg -r removed a conffile (only purge should)"
dpkg -P sluice > "$work/dpkg-p.log" 2>&1 || { cat "$work/dpkg-p.log"; fail "dpkg -P"; }
[ ! -e /etc/sluice ] || fail "/etc/sluice left after dpkg -P"
! dpkg-query -W sluice 2>/dev/null | grep -q . || fail "dpkg still lists sluice"
echo "ok: built, installed, ran and removed $(basename "$deb")"
