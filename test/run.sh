#!/bin/sh
# Run every test: the C protocol test, then the TypeScript suites (unit,
# integration, end-to-end) under ava. Ends with one line "N passed, N failed".
set -u
cd "$(dirname "$0")/.."
# Compiled tests of files that were moved or removed must not run: start from a clean build/test.
rm -rf build/test
npx tsc -p tsconfig.json || { echo "0 passed, 1 failed"; exit 1; }
cpass=0; cfail=0
if [ -f apache-module/Makefile ] && command -v apxs >/dev/null 2>&1; then
  if out=$(make -s -C apache-module test 2>&1); then
    echo "$out"
  else
    echo "$out"
  fi
  cpass=$(printf '%s\n' "$out" | sed -n 's/^C tests: \([0-9]*\) passed, \([0-9]*\) failed$/\1/p' | tail -1)
  cfail=$(printf '%s\n' "$out" | sed -n 's/^C tests: \([0-9]*\) passed, \([0-9]*\) failed$/\2/p' | tail -1)
  [ -n "$cpass" ] || { cpass=0; cfail=1; echo "C tests did not report a result"; }
fi
tap=$(mktemp)
npx ava --tap "$@" | tee "$tap"
rc=$?
pass=$(sed -n 's/^# pass \([0-9]*\)$/\1/p' "$tap" | tail -1)
fail=$(sed -n 's/^# fail \([0-9]*\)$/\1/p' "$tap" | tail -1)
rm -f "$tap"
pass=${pass:-0}; fail=${fail:-0}
if [ "$rc" != 0 ] && [ "$fail" = 0 ]; then fail=1; fi
total_pass=$((pass + cpass)); total_fail=$((fail + cfail))
echo "$total_pass passed, $total_fail failed"
[ "$total_fail" = 0 ] && [ "$total_pass" -gt 0 ]
