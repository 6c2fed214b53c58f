#!/bin/sh
# Install the Debian packages Ferry's build and tests use, when missing:
# Apache 2.4 with its dev files (apxs), msgpack-c, redis-server, and Prometheus
# (the metrics e2e test scrapes Ferry with a real server and runs promtool),
# logrotate (conf/logrotate.d/ferry is tested with it), clang with its runtime
# libraries (the C tests run under AddressSanitizer/UBSan, and libFuzzer), nginx
# with its dev files (nginx-dev: the nginx module's build; nginx: its e2e tests).
# Installing a package here does not start its service; tests start their own.
set -eu
need=""
for pkg in apache2 apache2-dev libmsgpack-dev redis-server prometheus logrotate clang libclang-rt-14-dev nginx nginx-dev; do
  if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
    need="$need $pkg"
  fi
done
if [ -n "$need" ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "ferry: missing Debian packages:$need (run this script as root to install them)" >&2
    exit 1
  fi
  echo "ferry: installing Debian packages:$need"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  # shellcheck disable=SC2086
  apt-get install -y -qq --no-install-recommends $need >/dev/null
  # Debian's postinst may start services when a policy allows it; ours never need them.
  for svc in apache2 redis-server prometheus nginx; do
    if command -v service >/dev/null 2>&1; then service "$svc" stop >/dev/null 2>&1 || true; fi
  done
fi
