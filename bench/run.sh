#!/bin/sh
# Ferry's benchmark: installs what is missing, then runs the harness.
#   sh bench/run.sh                       full run: 2 rounds × 10 s per scenario
#   sh bench/run.sh --duration 2 --rounds 1 --only passenger,node --scenarios small,mixed
# See bench/README.md.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
sh "$here/install.sh"
exec node "$here/run.mjs" "$@"
