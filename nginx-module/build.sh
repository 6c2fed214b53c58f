#!/bin/sh
# Build ngx_http_ferry_module.so, a dynamic nginx module, against the nginx
# development files (Debian's nginx-dev: /usr/share/nginx/src, configured
# with the flags of Debian's nginx binary so the module's ABI signature
# matches it), and copy it to build/nginx/ngx_http_ferry_module.so (the
# stable path the tests and `load_module` use).
#
#   sh nginx-module/build.sh               build; fail if nginx-dev is missing
#   sh nginx-module/build.sh --if-present  build if nginx-dev is there, else say so and exit 0
#
# NGINX_SRC=/path/to/nginx/src overrides the lookup (a tree with configure
# and auto/; NGINX_CONF_FLAGS then gives its configure flags, default
# --with-compat).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
if_present=0
[ "${1:-}" = "--if-present" ] && if_present=1

skip() {
  if [ "$if_present" = 1 ]; then
    echo "ferry: $1; skipping the nginx module (install $2, then npm run build:nginx)"
    exit 0
  fi
  echo "ferry: $1: install $2" >&2
  exit 1
}

src=${NGINX_SRC:-/usr/share/nginx/src}
[ -x "$src/configure" ] && [ -d "$src/auto" ] || skip "nginx development files not found in $src" "nginx-dev"
if ! printf '#include <msgpack.h>\nint main(void){return 0;}\n' \
     | cc -x c -o /dev/null - -lmsgpackc >/dev/null 2>&1; then
  skip "msgpack-c not found" "libmsgpack-dev"
fi

# Debian records the flags of its nginx binary as a bash array in conf_flags.
if [ -z "${NGINX_CONF_FLAGS:-}" ]; then
  if [ -f "$src/conf_flags" ]; then
    NGINX_CONF_FLAGS=$(sed -n 's/^NGX_CONF_FLAGS=(\(.*\))$/\1/p' "$src/conf_flags")
  else
    NGINX_CONF_FLAGS=--with-compat
  fi
fi

# nginx builds in its source tree: work on a copy in build/nginx/src, and
# configure it again only when the flags, the addon config or the nginx
# sources changed.
work="$root/build/nginx"
stamp=$(printf '%s\n%s\n' "$NGINX_CONF_FLAGS" "$(cat "$here/config")" \
        "$(ls -l --time-style=+%s "$src/configure")" | cksum | cut -d' ' -f1)
if [ ! -f "$work/src/objs/Makefile" ] || [ "$(cat "$work/src/.ferry-stamp" 2>/dev/null)" != "$stamp" ]; then
  echo "ferry: configuring nginx $(sed -n 's/^#define NGINX_VERSION *"\(.*\)"/\1/p' "$src/src/core/nginx.h") from $src for the module"
  rm -rf "$work/src"
  mkdir -p "$work"
  cp -a "$src" "$work/src"
  # shellcheck disable=SC2086
  (cd "$work/src" && eval "./configure $NGINX_CONF_FLAGS --add-dynamic-module=\"$here\"" \
     > "$work/configure.log" 2>&1) \
    || { rm -rf "$work/src"; tail -5 "$work/configure.log" >&2
         skip "nginx's configure failed (log: $work/configure.log)" "nginx-dev with its build dependencies"; }
  echo "$stamp" > "$work/src/.ferry-stamp"
fi
echo "ferry: building ngx_http_ferry_module.so"
make -s -C "$work/src" -f objs/Makefile modules >"$work/make.log" 2>&1 \
  || { cat "$work/make.log" >&2; echo "ferry: nginx module build failed" >&2; exit 1; }
# Copy then rename: a running nginx has the old file mapped.
cp "$work/src/objs/ngx_http_ferry_module.so" "$work/ngx_http_ferry_module.so.tmp.$$"
mv -f "$work/ngx_http_ferry_module.so.tmp.$$" "$work/ngx_http_ferry_module.so"
echo "ferry: built $work/ngx_http_ferry_module.so"
