#!/bin/sh
# Build mod_ferry.so with apxs and copy it to build/apache/mod_ferry.so (the
# stable path the tests and `ferry apache` use).
#
#   sh apache-module/build.sh               build; fail if apxs is missing
#   sh apache-module/build.sh --if-present  build if apxs is there, else say so and exit 0
#
# APXS=/path/to/apxs overrides the lookup.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
if_present=0
[ "${1:-}" = "--if-present" ] && if_present=1

apxs=${APXS:-$(command -v apxs 2>/dev/null || command -v apxs2 2>/dev/null || true)}
if [ -z "$apxs" ]; then
  if [ "$if_present" = 1 ]; then
    echo "ferry: apxs not found; skipping the Apache module (install apache2-dev, then npm run build:apache)"
    exit 0
  fi
  echo "ferry: apxs not found: install apache2-dev (Debian/Ubuntu) or httpd-devel (RHEL)" >&2
  exit 1
fi

incdir=$("$apxs" -q INCLUDEDIR 2>/dev/null || true)
if ! printf '#include <msgpack.h>\nint main(void){return 0;}\n' \
     | "$("$apxs" -q CC 2>/dev/null || echo cc)" -x c -o /dev/null - -lmsgpackc >/dev/null 2>&1; then
  if [ "$if_present" = 1 ]; then
    echo "ferry: msgpack-c not found; skipping the Apache module (install libmsgpack-dev, then npm run build:apache)"
    exit 0
  fi
  echo "ferry: msgpack-c not found: install libmsgpack-dev (Debian/Ubuntu) or msgpack-devel (RHEL)" >&2
  exit 1
fi

echo "ferry: building mod_ferry.so with $apxs (headers in $incdir)"
make -s -C "$here" APXS="$apxs"
mkdir -p "$root/build/apache"
# Copy then rename: a running Apache has the old file mapped, and writing
# into that inode would crash its children.
cp "$here/.libs/mod_ferry.so" "$root/build/apache/mod_ferry.so.tmp.$$"
mv -f "$root/build/apache/mod_ferry.so.tmp.$$" "$root/build/apache/mod_ferry.so"
echo "ferry: built $root/build/apache/mod_ferry.so"
