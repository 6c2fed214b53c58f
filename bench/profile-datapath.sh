#!/bin/sh
# bench/profile-datapath.sh: server-side CPU per request of Ferry's data path.
#
# Starts a private Apache (event MPM, loopback port, generated config in a temp
# dir) with build/apache/mod_ferry.so and a tiny app (PassengerMinInstances 2),
# then `ferry start` on the same app, and prints for small GET / 100 KiB GET /
# 64 KiB POST: req/s and server CPU µs per request (utime+stime read from /proc
# for the front (Apache or nginx), the core and the apps, before/after a wrk
# run), split by process kind. CPU per request is robust to other load on a
# shared machine; req/s is not.
#
#   sh bench/profile-datapath.sh [seconds per scenario (5)] [connections (16)]
#   TARGETS="apache" sh bench/profile-datapath.sh      # only mod_ferry (also: standalone, node,
#                      nginx = nginx + Ferry, nginx_proxy = nginx proxy_pass to 2 node processes,
#                      least_conn + keepalive 64, as bench/run.mjs's targets; 2 workers;
#                      mod_proxy = Apache + mod_proxy_balancer (bybusyness) to 2 node processes)
#   STRACE=1 ...    # then a second run of each scenario with `strace -c -f` on the front's
#                   # workers: system calls per request by name (strace slows them: that run's
#                   # req/s and CPU are not printed)
#   SCENARIOS="small get100k post64k"  # a subset (also: pipelined, small GETs 16 deep;
#                                      # slow, a 50 ms handler: give it connections, e.g. 64)
#   FERRY_ROOT=/other/checkout ...  # measure another built tree (A/B comparisons)
#   NGINX_SO=/path/to/ngx_http_ferry_module.so ...  # target nginx: another build of the module
#   CPU_PROF=1 ...  # also writes a `node --cpu-prof` profile of the core (standalone: of ferry start)
#   CPU_PROF=1 APP_PROF=1 ...  # also of each app process (apache, standalone, node)
#   APACHE_APP_EXTRA="PassengerStickySessions on" ...   # more directives in mod_ferry's app
#   NGINX_APP_EXTRA="passenger_sticky_sessions on;" ...  # VirtualHost / nginx's server block
#
# Needs: apache2, wrk (apt-get install wrk), the built module and core
# (sh apache-module/build.sh; npx tsc -p tsconfig.json). Not part of the tests.
set -eu

HERE=$(cd "$(dirname "$0")" && pwd)
REPO=${FERRY_ROOT:-$(cd "$HERE/.." && pwd)}
DUR=${1:-5}
CONNS=${2:-16}
TARGETS=${TARGETS:-"apache standalone"}
NODE=$(command -v node)
TICK=$(getconf CLK_TCK)
DIR=$(mktemp -d /tmp/ferry-prof-XXXXXX)
chmod 755 "$DIR"
ROOT_PID=""

cleanup() {
    if [ -n "$ROOT_PID" ] && kill -0 "$ROOT_PID" 2>/dev/null; then
        kill -TERM "$ROOT_PID" 2>/dev/null || true
        i=0
        while kill -0 "$ROOT_PID" 2>/dev/null && [ $i -lt 100 ]; do
            sleep 0.1; i=$((i + 1))
        done
    fi
    ROOT_PID=""
}
trap 'cleanup; rm -rf "$DIR"' EXIT INT TERM

free_port() {
    "$NODE" -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})'
}

# pids of $1 and all its descendants
tree() {
    ps -e -o pid=,ppid= | awk -v root="$1" '
        { parent[$1] = $2; pids[NR] = $1 }
        END {
            keep[root] = 1; changed = 1
            while (changed) {
                changed = 0
                for (i in pids) { p = pids[i]; if (!(p in keep) && (parent[p] in keep)) { keep[p] = 1; changed = 1 } }
            }
            for (p in keep) print p
        }'
}

# "front core apps" CPU ticks of the tree under $1
ticks() {
    a=0; c=0; x=0
    for p in $(tree "$1"); do
        [ -r /proc/$p/stat ] || continue
        t=$(sed 's/^.*) //' /proc/$p/stat 2>/dev/null | awk '{print $12 + $13}') || continue
        [ -n "$t" ] || continue
        cmd=$(tr '\0' ' ' < /proc/$p/cmdline 2>/dev/null || true)
        case "$cmd" in
            *apache2*|nginx:*) a=$((a + t)) ;;
            *core/src/main.js*|*bin/ferry.js*) c=$((c + t)) ;;
            *) x=$((x + t)) ;;
        esac
    done
    echo "$a $c $x"
}

wait_ok() {
    i=0
    while [ $i -lt 300 ]; do
        if curl -fsS -o /dev/null "http://127.0.0.1:$1/" 2>/dev/null; then return 0; fi
        sleep 0.1; i=$((i + 1))
    done
    echo "target on port $1 did not answer" >&2
    return 1
}

# The app: plain node:http, / (3 bytes), /100k, /slow (3 bytes after 50 ms),
# POST /echo (streamed back).
mkdir -p "$DIR/app/public"
cat > "$DIR/app/app.js" <<'EOF'
"use strict";
const http = require("node:http");
const BIG = Buffer.alloc(100 * 1024, "x");
const SMALL = Buffer.from("ok\n");
http.createServer((req, res) => {
  if (req.method === "POST") {
    res.setHeader("Content-Type", "application/octet-stream");
    if (req.headers["content-length"] !== undefined) res.setHeader("Content-Length", req.headers["content-length"]);
    req.pipe(res);
    return;
  }
  req.resume();
  res.setHeader("Content-Type", "text/plain");
  if (req.url === "/slow") {
    setTimeout(() => { res.setHeader("Content-Length", SMALL.length); res.end(SMALL); }, 50);
    return;
  }
  const body = req.url === "/100k" ? BIG : SMALL;
  res.setHeader("Content-Length", body.length);
  res.end(body);
}).listen(process.env.PORT || 3000);
EOF
chmod -R a+rX "$DIR/app"
head -c 65536 /dev/zero | tr '\0' 'x' > "$DIR/body64k"
cat > "$DIR/post.lua" <<EOF
local f = io.open("$DIR/body64k", "rb")
wrk.method = "POST"
wrk.body = f:read("*a")
f:close()
wrk.headers["Content-Type"] = "application/octet-stream"
EOF

# Small GETs pipelined 16 deep: each read brings the app a batch, so the
# per-request work (parsing, the loader's per-request steps) dominates and the
# figure depends less on how other load on the machine batches the wakeups.
cat > "$DIR/pipeline.lua" <<'EOF2'
init = function(args)
  local r = {}
  for i = 1, 16 do r[i] = wrk.format("GET", "/") end
  req = table.concat(r)
end
request = function() return req end
EOF2

# run_one LABEL PORT PATH [wrk args...]
run_one() {
    label=$1; port=$2; path=$3; shift 3
    wrkargs="$*"    # (no spaces in them: set -- reuses $@ below)
    wrk -t2 -c"$CONNS" -d1s "$@" "http://127.0.0.1:$port$path" > /dev/null 2>&1 || true
    set -- $(ticks "$ROOT_PID") "$@"
    a0=$1; c0=$2; x0=$3; shift 3
    out=$(wrk -t2 -c"$CONNS" -d"${DUR}s" --latency "$@" "http://127.0.0.1:$port$path" 2>&1)
    set -- $(ticks "$ROOT_PID")
    n=$(echo "$out" | awk '/requests in/ {print $1}')
    rps=$(echo "$out" | awk '/Requests\/sec/ {print $2}')
    p99=$(echo "$out" | awk '$1 == "50%" {p50 = $2} $1 == "99%" {print p50 "/" $2}')
    errs=$(echo "$out" | awk '/Non-2xx|Socket errors/ {printf "%s ", $0}')
    echo "$n $rps $p99 $a0 $c0 $x0 $1 $2 $3 $TICK" | awk -v label="$label" -v errs="$errs" '{
        n = $1; f = 1e6 / $10 / (n > 0 ? n : 1)
        a = ($7 - $4) * f; c = ($8 - $5) * f; x = ($9 - $6) * f
        printf "%-26s %9s req/s  p50/p99 %-16s  CPU %6.1f us/req  (front %5.1f  core %5.1f  apps %5.1f)  n=%d %s\n",
            label, $2, $3, a + c + x, a, c, x, n, errs }'
    if [ "${STRACE:-}" = 1 ]; then
        # shellcheck disable=SC2086
        strace_one "$label" "$port" "$path" $wrkargs
    fi
}

# The front's worker processes (nginx workers, Apache children) under $1.
front_workers() {
    for p in $(tree "$1"); do
        cmd=$(tr '\0' ' ' < /proc/$p/cmdline 2>/dev/null || true)
        case "$cmd" in
            "nginx: worker"*) echo "$p" ;;
            *apache2*) [ "$p" != "$1" ] && echo "$p" ;;
        esac
    done
}

# strace_one LABEL PORT PATH [wrk args...]: system calls per request of the front's workers.
strace_one() {
    label=$1; port=$2; path=$3; shift 3
    pids=$(front_workers "$ROOT_PID" | sed 's/^/-p /' | tr '\n' ' ')
    [ -n "$pids" ] || { echo "$label: no front workers to strace"; return 0; }
    # shellcheck disable=SC2086
    strace -c -f -q -o "$DIR/strace.out" $pids &
    spid=$!
    sleep 0.5
    out=$(wrk -t2 -c"$CONNS" -d"${DUR}s" "$@" "http://127.0.0.1:$port$path" 2>&1)
    kill -INT "$spid" 2>/dev/null || true
    wait "$spid" 2>/dev/null || true
    n=$(echo "$out" | awk '/requests in/ {print $1}')
    awk -v label="$label" -v n="$n" '
        $1 ~ /^[0-9.]+$/ && NF >= 5 && $NF != "total" { c[$NF] = $4; total += $4 }
        END {
            printf "%-26s syscalls/req %.2f (strace run, n=%d):", label, total / (n > 0 ? n : 1), n
            for (k in c) if (c[k] / n >= 0.01) printf " %s %.2f", k, c[k] / n
            printf "\n"
        }' "$DIR/strace.out"
}

SCENARIOS=${SCENARIOS:-"small get100k post64k"}
scenarios() {
    for sc in $SCENARIOS; do
        case "$sc" in
        small) run_one "$1 small GET" "$2" / ;;
        pipelined) run_one "$1 small GET x16 pipelined" "$2" / -s "$DIR/pipeline.lua" ;;
        get100k) run_one "$1 100KiB GET" "$2" /100k ;;
        post64k) run_one "$1 64KiB POST" "$2" /echo -s "$DIR/post.lua" ;;
        slow) run_one "$1 slow GET (50 ms)" "$2" /slow ;;
        esac
    done
}

for target in $TARGETS; do
    case "$target" in
    apache)
        port=$(free_port)
        d="$DIR/apache"
        mkdir -p "$d/run" "$d/logs" "$d/registry"
        extra=""
        if [ "${CPU_PROF:-}" = 1 ]; then
            # PassengerNodejs may carry flags? No: wrap node in a script.
            appflags=""
            if [ "${APP_PROF:-}" = 1 ]; then appflags="--cpu-prof --cpu-prof-dir=$DIR/prof"; fi
            printf '#!/bin/sh\ncase "$*" in *core/src/main.js*) exec %s --cpu-prof --cpu-prof-dir=%s "$@";; esac\nexec %s %s "$@"\n' \
                "$NODE" "$DIR/prof" "$NODE" "$appflags" > "$DIR/node-prof"
            chmod 755 "$DIR/node-prof"; mkdir -p "$DIR/prof"; chmod 777 "$DIR/prof"
            extra="PassengerNodejs $DIR/node-prof"
        fi
        # The server part is bench/lib/apache.mjs's (the one httpd.conf renderer); this is mod_ferry's.
        cat > "$d/body.conf" <<EOF
LoadModule ferry_module $REPO/build/apache/mod_ferry.so
PassengerRoot "$REPO"
PassengerInstanceRegistryDir "$d/registry"
PassengerNodejs ${NODE}
$extra
PassengerMaxPoolSize 2
PassengerMinInstances 2
<VirtualHost 127.0.0.1:$port>
  ServerName 127.0.0.1
  DocumentRoot "$DIR/app/public"
  PassengerAppRoot "$DIR/app"
  PassengerAppType node
  PassengerStartupFile app.js
  PassengerMinInstances 2
  ${APACHE_APP_EXTRA:-}
  <Directory "$DIR/app/public">
    Require all granted
  </Directory>
</VirtualHost>
EOF
        "$NODE" "$HERE/lib/apache.mjs" "$d" "$port" "$d/body.conf" >/dev/null
        /usr/sbin/apache2 -d "$d" -f "$d/httpd.conf" -DFOREGROUND > "$d/logs/stdout.log" 2>&1 &
        ROOT_PID=$!
        wait_ok "$port" || { tail -20 "$d/logs/error.log" >&2; exit 1; }
        scenarios "mod_ferry" "$port"
        cleanup
        if [ -s "$d/logs/error.log" ]; then
            n=$(grep -c -i 'error\|warn' "$d/logs/error.log" || true)
            [ "$n" = 0 ] || { echo "error.log ($n warn/error lines):"; grep -i 'error\|warn' "$d/logs/error.log" | tail -5; }
        fi
        ;;
    mod_proxy)
        # Apache + mod_proxy_balancer to 2 node processes: bench/lib/targets.mjs's mod_proxy
        port=$(free_port); p1=$(free_port); p2=$(free_port)
        d="$DIR/mod_proxy"
        mkdir -p "$d/run" "$d/logs"
        "$NODE" --input-type=module -e "import { modProxyBody } from '$HERE/lib/targets.mjs';
            process.stdout.write(modProxyBody($port, [$p1, $p2]))" > "$d/body.conf"
        "$NODE" "$HERE/lib/apache.mjs" "$d" "$port" "$d/body.conf" >/dev/null
        nodeprof=""
        if [ "${CPU_PROF:-}" = 1 ] && [ "${APP_PROF:-}" = 1 ]; then
            mkdir -p "$DIR/prof"
            echo 'process.on("SIGTERM", () => process.exit(0));' > "$DIR/exit-on-term.cjs"
            nodeprof="--cpu-prof --cpu-prof-dir=$DIR/prof -r $DIR/exit-on-term.cjs"
        fi
        # the apps (each in its own session, as bench/run.mjs starts them) under a shell that runs Apache: one tree to measure
        sh -c "PORT=$p1 setsid '$NODE' $nodeprof '$DIR/app/app.js' & PORT=$p2 setsid '$NODE' $nodeprof '$DIR/app/app.js' &
               exec /usr/sbin/apache2 -d '$d' -f '$d/httpd.conf' -DFOREGROUND" > "$d/logs/stdout.log" 2>&1 &
        ROOT_PID=$!
        wait_ok "$port" || { tail -20 "$d/logs/error.log" >&2; exit 1; }
        scenarios "mod_proxy_balancer" "$port"
        apps=$(tree "$ROOT_PID" | while read -r p; do case "$(tr '\0' ' ' < /proc/$p/cmdline 2>/dev/null)" in *app/app.js*) echo "$p";; esac; done)
        cleanup
        # shellcheck disable=SC2086
        [ -z "$apps" ] || kill $apps 2>/dev/null || true
        # until they are gone (with CPU_PROF, each writes its profile as it exits)
        for p in $apps; do
            i=0
            while [ $i -lt 50 ] && [ -d /proc/$p ] && ! grep -q '^State:.*Z' /proc/$p/status 2>/dev/null; do
                sleep 0.1; i=$((i + 1))
            done
        done
        ;;
    nginx|nginx_proxy)
        port=$(free_port)
        d="$DIR/$target"
        mkdir -p "$d/registry"
        if [ "$target" = nginx ]; then
            echo "load_module ${NGINX_SO:-$REPO/build/nginx/ngx_http_ferry_module.so};" > "$d/main.conf"
            # the server block is bench/lib/targets.mjs's nginx_ferry
            cat > "$d/http.conf" <<EOF
    passenger_root $REPO;
    passenger_nodejs $NODE;
    passenger_instance_registry_dir $d/registry;
    passenger_max_pool_size 2;
    server {
        listen 127.0.0.1:$port;
        server_name 127.0.0.1;
        root $DIR/app/public;
        passenger_enabled on;
        passenger_app_type node;
        passenger_startup_file app.js;
        passenger_min_instances 2;
        ${NGINX_APP_EXTRA:-}
    }
EOF
        else
            : > "$d/main.conf"
            p1=$(free_port); p2=$(free_port)
            # the upstream is bench/lib/targets.mjs's nginx_proxy
            "$NODE" --input-type=module -e "import { nginxProxyHttp } from '$HERE/lib/targets.mjs';
                process.stdout.write(nginxProxyHttp($port, [$p1, $p2]))" > "$d/http.conf"
        fi
        conf=$("$NODE" "$HERE/lib/nginx.mjs" "$d" "$d/main.conf" "$d/http.conf")
        if [ "$target" = nginx ]; then
            /usr/sbin/nginx -p "$d" -c "$conf" > "$d/stdout.log" 2>&1 &
            ROOT_PID=$!
        else
            # the apps under a shell that also runs nginx: one tree to measure;
            # each app in its own session, as bench/run.mjs starts them and as
            # Ferry's spawner does (with the kernel's autogroup scheduling, a
            # session shares the CPU as one group)
            sh -c "PORT=$p1 setsid '$NODE' '$DIR/app/app.js' & PORT=$p2 setsid '$NODE' '$DIR/app/app.js' &
                   exec /usr/sbin/nginx -p '$d' -c '$conf'" > "$d/stdout.log" 2>&1 &
            ROOT_PID=$!
            wait_port() { i=0; while ! curl -fsS -o /dev/null "http://127.0.0.1:$1/" 2>/dev/null; do
                i=$((i + 1)); [ $i -lt 300 ] || return 1; sleep 0.1; done; }
            wait_port "$p1" && wait_port "$p2" || { echo "the proxy's apps did not answer" >&2; exit 1; }
        fi
        wait_ok "$port" || { tail -20 "$d/logs/error.log" >&2; exit 1; }
        if [ "$target" = nginx ]; then label="nginx + Ferry"; else label="nginx proxy_pass"; fi
        scenarios "$label" "$port"
        # the apps of nginx_proxy are the shell's children, nginx is exec'ed in it
        apps=$(tree "$ROOT_PID" | while read -r p; do case "$(tr '\0' ' ' < /proc/$p/cmdline 2>/dev/null)" in *app/app.js*) echo "$p";; esac; done)
        cleanup
        # shellcheck disable=SC2086
        [ -z "$apps" ] || kill $apps 2>/dev/null || true
        if [ -s "$d/logs/error.log" ]; then
            n=$(grep -c -i '\[error\]\|\[warn\]\|\[crit\]\|\[alert\]' "$d/logs/error.log" || true)
            [ "$n" = 0 ] || { echo "error.log ($n warn/error lines):"; grep -i '\[error\]\|\[warn\]\|\[crit\]\|\[alert\]' "$d/logs/error.log" | tail -5; }
        fi
        ;;
    node)
        # Calibration: the app alone (one process, TCP, wrk's keep-alive).
        port=$(free_port)
        nodeprof=""
        if [ "${CPU_PROF:-}" = 1 ] && [ "${APP_PROF:-}" = 1 ]; then
            # A profile is written on a clean exit: make SIGTERM one.
            mkdir -p "$DIR/prof"
            echo 'process.on("SIGTERM", () => process.exit(0));' > "$DIR/exit-on-term.cjs"
            nodeprof="--cpu-prof --cpu-prof-dir=$DIR/prof -r $DIR/exit-on-term.cjs"
        fi
        # shellcheck disable=SC2086
        PORT=$port "$NODE" $nodeprof "$DIR/app/app.js" > /dev/null 2>&1 &
        ROOT_PID=$!
        wait_ok "$port" || exit 1
        scenarios "node alone" "$port"
        cleanup
        ;;
    standalone)
        port=$(free_port)
        mkdir -p "$DIR/standalone-reg"
        prof=""
        appnode=""
        if [ "${CPU_PROF:-}" = 1 ]; then
            mkdir -p "$DIR/prof"; chmod 777 "$DIR/prof"; prof="--cpu-prof --cpu-prof-dir=$DIR/prof"
            if [ "${APP_PROF:-}" = 1 ]; then
                # The app processes run this wrapper (ferry start --nodejs).
                printf '#!/bin/sh\nexec %s --cpu-prof --cpu-prof-dir=%s "$@"\n' "$NODE" "$DIR/prof" > "$DIR/node-prof-app"
                chmod 755 "$DIR/node-prof-app"
                appnode="--nodejs $DIR/node-prof-app"
            fi
        fi
        # shellcheck disable=SC2086
        "$NODE" $prof "$REPO/bin/ferry.js" start "$DIR/app" --port "$port" --address 127.0.0.1 \
            --min-instances 2 --max-pool-size 2 --environment production $appnode \
            --instance-registry-dir "$DIR/standalone-reg" > "$DIR/standalone.log" 2>&1 &
        ROOT_PID=$!
        wait_ok "$port" || { tail -20 "$DIR/standalone.log" >&2; exit 1; }
        scenarios "ferry start" "$port"
        cleanup
        ;;
    esac
done

if [ "${CPU_PROF:-}" = 1 ] && [ -d "$DIR/prof" ]; then
    mkdir -p "$REPO/bench/results"
    for f in "$DIR"/prof/*.cpuprofile; do
        [ -e "$f" ] && cp "$f" "$REPO/bench/results/" && echo "profile: $REPO/bench/results/$(basename "$f")"
    done
fi
