#!/bin/sh
# A long libFuzzer run over mod_ferry's frame decoder and HTTP head parser
# (apache-module/test/fuzz_proto.c), under ASan + UBSan. The test command runs
# the same target for one minute; this runs it for longer (default 30 min):
#   sh bench/fuzz.sh [SECONDS]
# The corpus grows in apache-module/test/.fuzz-corpus (kept between runs). A
# crash leaves its input in apache-module/test/fuzz-artifacts/: turn it into a
# golden vector in test/fixtures/protocol/ (a *.bad.hex when it must be refused).
set -eu
cd "$(dirname "$0")/.."
exec make -s -C apache-module fuzz FUZZ_SECONDS="${1:-1800}"
