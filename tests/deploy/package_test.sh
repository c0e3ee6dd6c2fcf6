#!/usr/bin/env bash
# scripts/package, then the .deb as an operator meets it: dpkg -i, the files in their FHS
# places, the sluice user, `systemd-analyze verify` on the installed unit, sluiced
# --version, sluicectl --help, the unit's ExecStart run by hand as the unit would (no
# systemd here) serving a capture's events on hugepages with Prometheus scraping it, then
# dpkg -r and dpkg -P leaving no file behind.
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
work=$(mktemp -d); pid="" prom="" created_dirs="" huge_mounted="" leased=""
chmod 0755 "$work" # the sluice user reads the capture and the hugepage mount in here
cleanup() {
  [ -n "$prom" ] && kill "$prom" 2>/dev/null || true
  if [ -n "$pid" ]; then kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; fi
  [ -n "$huge_mounted" ] && umount "$work/huge"
  [ -n "$leased" ] && "$src/tests/hugepage_lease" release $$
  [ -n "$created_dirs" ] && rm -rf /run/sluice /var/lib/sluice
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

# The unit's ExecStart, by hand (no systemd runs here), as the unit runs it: user sluice
# with the unit's ambient capabilities, its RuntimeDirectory and StateDirectory, its
# XDG_RUNTIME_DIR and the EAL options an operator puts in /etc/default/sluiced. It replays
# a sluice-gen capture through net_pcap on 2 MB hugepages, leased for this test
# (tests/hugepage_lease) and mounted for group sluice by the packaged sluice-hugepages;
# where none can be had it says so and runs with --no-huge. A real Prometheus then scrapes
# the packaged config's /metrics and must count every event accepted.
for d in /run/sluice /var/lib/sluice; do
  [ ! -e "$d" ] || fail "$d exists already: remove it first (this test creates the unit's directories and removes them)"
done
created_dirs=1
install -d -o sluice -g sluice -m 0750 /run/sluice /var/lib/sluice

huge=""
if lease=$("$src/tests/hugepage_lease" take $$ 256); then
  leased=1
  mkdir "$work/huge"
  # The pool already holds the lease: sluice-hugepages keeps the count and mounts (under
  # the leases' lock, so that no other lease changes the count in between).
  pages=/sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages
  flock "${SLUICE_HUGEPAGE_LEASES:-/run/sluice-test-hugepages}/lock" sh -c \
    "/usr/sbin/sluice-hugepages --size 2M --count \$(cat $pages) --mount '$work/huge' --group sluice" \
    > "$work/hugepages.log" 2>&1 || { cat "$work/hugepages.log"; fail "sluice-hugepages"; }
  grep -q "mounted $work/huge" "$work/hugepages.log" || { cat "$work/hugepages.log"; fail "sluice-hugepages did not mount $work/huge"; }
  huge_mounted=1
  huge="--huge-dir $work/huge"
  mode=hugepages
else
  echo "SKIP hugepages: ${lease#hugepage_lease: } (the package runs with --no-huge instead)"
  huge="--no-huge -m 1024"
  mode=no-huge
fi

/usr/bin/sluice-gen --events 3000 --seed 17 --out "$work/gen" > "$work/gen.log" 2>&1 || { cat "$work/gen.log"; fail "sluice-gen"; }
chmod -R a+rX "$work/gen"
expected=$(/usr/bin/python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["events_accepted"])' "$work/gen/expected/counters.json")
cpus=($(/usr/bin/python3 -c 'import os; print(" ".join(map(str, sorted(os.sched_getaffinity(0)))))'))
c0=${cpus[0]} c1=${cpus[1]:-${cpus[0]}}
eal="$huge --no-pci --vdev net_pcap0,rx_pcap=$work/gen/events.pcap --lcores 0@$c0,1@$c0,2@$c1 --file-prefix sluiced-pkgtest"
sed -i "s|^SLUICED_EAL_ARGS=.*|SLUICED_EAL_ARGS=\"$eal\"|" /etc/default/sluiced
unit=/usr/lib/systemd/system/sluiced.service
exec_start=$(sed -n 's/^ExecStart=//p' "$unit")
caps=$(sed -n 's/^AmbientCapabilities=//p' "$unit" | tr 'A-Z' 'a-z' | sed 's/cap_/+/g; s/ /,/g')
[ -n "$exec_start" ] && [ -n "$caps" ] || fail "no ExecStart= or AmbientCapabilities= in $unit"
(
  cd /
  set -a; . /etc/default/sluiced; set +a
  exec setpriv --reuid=sluice --regid=sluice --init-groups --inh-caps="$caps" \
    --ambient-caps="$caps" env XDG_RUNTIME_DIR=/run/sluice sh -c "exec $exec_start"
) > "$work/sluiced.log" 2>&1 &
pid=$!
ctl() { /usr/bin/sluicectl --socket /run/sluice/sluiced.sock "$@"; }
deadline=$((SECONDS + 180))
until ctl status > "$work/status" 2>/dev/null; do
  kill -0 "$pid" 2>/dev/null || { cat "$work/sluiced.log"; fail "sluiced as user sluice exited"; }
  [ $SECONDS -lt $deadline ] || { cat "$work/sluiced.log"; fail "no status within 180 s"; }
  sleep 0.2
done
[ "$(stat -c %U /run/sluice/sluiced.sock)" = sluice ] || fail "the control socket is not sluice's"
grep -q "memory.mode: $mode" "$work/status" || { cat "$work/status"; fail "status does not say memory.mode: $mode"; }
grep -q "sluiced: memory: ${mode/no-huge/no hugepages}" "$work/sluiced.log" || { cat "$work/sluiced.log"; fail "no start line naming the memory mode"; }
# The packaged config serves Prometheus' /metrics on 127.0.0.1:9464 (docs/DEPLOY.md §9).
grep -q "metrics_url: http://127.0.0.1:9464/metrics" "$work/status" ||
  { cat "$work/status"; fail "status has no metrics_url from the packaged config"; }
accepted() { ctl stats --json | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["totals"]["events_accepted"])'; }
until [ "$(accepted)" = "$expected" ]; do
  kill -0 "$pid" 2>/dev/null || { cat "$work/sluiced.log"; fail "sluiced exited"; }
  [ $SECONDS -lt $deadline ] || { ctl stats; fail "events_accepted is not sluice-gen's $expected within 180 s"; }
  sleep 0.2
done

if command -v prometheus >/dev/null; then
  prom_port=$((30000 + $$ % 20000))
  printf 'global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\nscrape_configs:\n  - job_name: sluice\n    static_configs:\n      - targets: [127.0.0.1:9464]\n' > "$work/prometheus.yml"
  prometheus --config.file="$work/prometheus.yml" --storage.tsdb.path="$work/tsdb" \
    --web.listen-address="127.0.0.1:$prom_port" --log.level=warn > "$work/prometheus.log" 2>&1 &
  prom=$!
  promql() {
    /usr/bin/python3 - "$prom_port" "$1" <<'PY' 2>/dev/null
import json, sys, urllib.parse, urllib.request
url = f"http://127.0.0.1:{sys.argv[1]}/api/v1/query?" + urllib.parse.urlencode({"query": sys.argv[2]})
r = json.load(urllib.request.urlopen(url, timeout=5))["data"]["result"]
print(r[0]["value"][1] if len(r) == 1 else "")
PY
  }
  deadline=$((SECONDS + 90)) scraped=""
  until [ "$scraped" = "$expected" ]; do
    kill -0 "$prom" 2>/dev/null || { cat "$work/prometheus.log"; fail "prometheus exited"; }
    [ $SECONDS -lt $deadline ] || { cat "$work/prometheus.log"; fail "Prometheus' sum(sluice_events_accepted_total) is '$scraped', not $expected, after 90 s"; }
    sleep 0.5
    scraped=$(promql 'sum(sluice_events_accepted_total{job="sluice"})')
  done
  kill "$prom"; wait "$prom" || true
  echo "ok: Prometheus scraped sluice_events_accepted_total = $scraped"
else
  echo "SKIP prometheus: not installed (apt-get install prometheus; scripts/bootstrap installs it)"
  exec 3<>/dev/tcp/127.0.0.1/9464 || fail "nothing listens on 127.0.0.1:9464"
  printf 'GET /metrics HTTP/1.0\r\n\r\n' >&3
  grep -q "^sluice_events_accepted_total" <&3 || fail "GET /metrics on 127.0.0.1:9464 has no sluice_events_accepted_total"
  exec 3<&-
fi
ctl shutdown >/dev/null || fail "sluicectl shutdown"
wait "$pid" || { cat "$work/sluiced.log"; fail "sluiced exited $?"; }
pid=""
echo "ok: the unit's ExecStart served $expected events ($mode)"

dpkg -r sluice > "$work/dpkg-r.log" 2>&1 || { cat "$work/dpkg-r.log"; fail "dpkg -r"; }
for f in /usr/bin/sluiced /usr/bin/sluicectl /usr/lib/systemd/system/sluiced.service; do
  [ ! -e "$f" ] || fail "$f left after dpkg -r"
done
[ -e /etc/sluice/sluiced.toml ] || fail "dpkg -r removed a conffile (only purge should)"
dpkg -P sluice > "$work/dpkg-p.log" 2>&1 || { cat "$work/dpkg-p.log"; fail "dpkg -P"; }
[ ! -e /etc/sluice ] || fail "/etc/sluice left after dpkg -P"
! dpkg-query -W sluice 2>/dev/null | grep -q . || fail "dpkg still lists sluice"
echo "ok: built, installed, ran and removed $(basename "$deb")"
