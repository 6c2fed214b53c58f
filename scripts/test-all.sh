#!/bin/sh
# Install what the tests need (Debian packages, npm dependencies, the builds) and
# run every test. This is the README's test line and all that .ci/run runs.
set -eu
cd "$(dirname "$0")/.."
sh scripts/install-deps.sh
npm install --no-audit --no-fund
npm test
