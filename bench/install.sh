#!/bin/sh
# Install what the benchmark needs, when missing: Debian apache2,
# libapache2-mod-passenger and wrk (as root), and PM2 from npm into
# bench/.tools (git-ignored). Never starts or enables a system service: a
# service a package's postinst started is stopped again.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
need=""
for pkg in apache2 libapache2-mod-passenger wrk; do
  if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
    need="$need $pkg"
  fi
done
if [ -n "$need" ]; then
  if [ "$(id -u)" != 0 ]; then
    # Not fatal: the targets that need them are reported as unavailable.
    echo "bench: missing Debian packages:$need (run as root to install them)" >&2
    exit 0
  fi
  echo "bench: installing Debian packages:$need"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  # shellcheck disable=SC2086
  apt-get install -y -qq --no-install-recommends $need >/dev/null
  if command -v service >/dev/null 2>&1; then service apache2 stop >/dev/null 2>&1 || true; fi
  # Debian's postinst enables Passenger in the system Apache's config; the
  # bench loads it only into its private instances, so undo that.
  case "$need" in
    *libapache2-mod-passenger*) if command -v a2dismod >/dev/null 2>&1; then a2dismod -q passenger >/dev/null 2>&1 || true; fi ;;
  esac
fi
if [ ! -f "$here/.tools/node_modules/pm2/bin/pm2" ]; then
  echo "bench: installing pm2 into bench/.tools"
  mkdir -p "$here/.tools"
  npm install --prefix "$here/.tools" --no-audit --no-fund --loglevel=error pm2@7 >/dev/null
fi
if [ ! -f "$here/../node_modules/ws/package.json" ]; then
  echo "bench: the ws package is missing: run npm install at the repository root first" >&2
  exit 1
fi
