#!/usr/bin/env bash
# systemd-analyze verify on the unit meson renders, with ExecStart pointed at the built
# sluiced (the installed unit is verified again, man pages included, by package_test).
# Any warning fails the test. Usage: unit_verify_test.sh UNIT SLUICED
set -euo pipefail
unit=$1 sluiced=$2
command -v systemd-analyze >/dev/null || { echo "FAIL: systemd-analyze missing (scripts/bootstrap installs systemd)"; exit 1; }
dir=$(mktemp -d); trap 'rm -rf "$dir"' EXIT
sed "s|^ExecStart=[^ ]*sluiced|ExecStart=$sluiced|" "$unit" > "$dir/sluiced.service"
out=$(systemd-analyze verify --man=no "$dir/sluiced.service" 2>&1) || { echo "$out"; echo "FAIL: verify"; exit 1; }
[ -z "$out" ] || { echo "$out"; echo "FAIL: verify printed warnings"; exit 1; }
grep -q '^Type=notify$' "$dir/sluiced.service"
grep -q '^ExecReload=/bin/kill -HUP \$MAINPID$' "$dir/sluiced.service"
echo "ok: systemd-analyze verify $unit"
