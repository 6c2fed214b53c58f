#!/bin/sh
# Build mod_ferry.so with apxs (placeholder until the module lands).
set -eu
if [ "${1:-}" = "--if-present" ] && ! command -v apxs >/dev/null 2>&1; then
  echo "ferry: apxs not found; skipping the Apache module (install apache2-dev, then npm run build:apache)"
  exit 0
fi
echo "ferry: the Apache module is not written yet"
