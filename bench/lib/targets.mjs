// The targets. Each start() brings up a whole server side from nothing
// and times the first 200 from the app (the cold start); stop() tears it all
// down. A target that cannot run here says why in unavailable().
import { existsSync, mkdirSync, writeFileSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { APACHE_BIN, MODULES, apacheArgs, apacheMissing, appVhost, errorLogTail, writeApacheConfig } from "./apache.mjs";
import { freePort, waitListening, waitOk } from "./http.mjs";
import { NGINX_BIN, nginxArgs, nginxErrorLogTail, nginxMissing, writeNginxConfig } from "./nginx.mjs";
import { alive, pidsMatching, startChild, stopChild, treeStats, waitGone } from "./proc.mjs";

const run = promisify(execFile);
const PASSENGER_SO = `${MODULES}/mod_passenger.so`;
const PASSENGER_ROOT = "/usr/lib/ruby/vendor_ruby/phusion_passenger/locations.ini";
const START_DEADLINE_MS = 90000;

function dead(child) {
  return () => child.exitCode !== null || child.signalCode !== null;
}

/** How a web server in front is configured, started and read. */
const APACHE = {
  missing: apacheMissing,
  write: (dir, port, text) => writeApacheConfig(dir, port, text),
  bin: APACHE_BIN,
  args: apacheArgs,
  logTail: errorLogTail,
};
const NGINX = {
  missing: nginxMissing,
  write: (dir, _port, text) => writeNginxConfig(dir, text),
  bin: NGINX_BIN,
  args: nginxArgs,
  logTail: nginxErrorLogTail,
};

/**
 * A target with a web server in front (Apache unless `front` says nginx):
 * `body(port, dir, appDir)` is its part of the config.
 */
function frontTarget({ id, label, check, body, extra, front = APACHE }) {
  return {
    id,
    label,
    expectPids: 2,
    unavailable: () => front.missing() ?? check(),
    async start(ctx, n) {
      const dir = join(ctx.runDir, `${id}-${n}`);
      const appDir = ctx.appDir(id);
      const port = await freePort();
      const conf = front.write(dir, port, body(port, dir, appDir, ctx));
      const t0 = performance.now();
      // Backends first (as an init system would order them): a balancer member
      // that refuses the first request is put in error state for 60 s.
      const backends = extra ? await extra.start(ctx, appDir) : [];
      try {
        for (const [i, b] of backends.entries()) await waitListening(extra.ports[i], START_DEADLINE_MS, dead(b));
      } catch (e) {
        for (const b of backends) await stopChild(b);
        throw new Error(`${e.message}\n${backends.map((b) => b.output.trim()).join("\n")}`.trim());
      }
      const child = startChild(front.bin, front.args(dir, conf), { env: { ...process.env, LANG: "C" } });
      let coldMs;
      let firstRequestMs;
      try {
        ({ ms: coldMs, requestMs: firstRequestMs } = await waitOk(port, START_DEADLINE_MS, dead(child), t0));
      } catch (e) {
        await stopChild(child, 15000);
        for (const b of backends) await stopChild(b);
        throw new Error(`${e.message}\n${child.output.trim()}\n${front.logTail(dir)}`.trim());
      }
      return {
        port,
        coldMs,
        firstRequestMs,
        appDir,
        dir,
        roots: () => [child.pid, ...backends.map((b) => b.pid), ...pidsMatching(appDir)],
        logTail: () => front.logTail(dir),
        async stop() {
          const tree = [...treeStats([child.pid, ...pidsMatching(appDir)]).keys()];
          await stopChild(child, 20000);
          for (const b of backends) await stopChild(b);
          await waitGone(tree, 10000);
        },
      };
    },
  };
}

function nodeApp(ctx, appDir, port) {
  return startChild(ctx.node, [join(appDir, "app.js")], {
    cwd: appDir,
    env: { ...process.env, PORT: String(port), BENCH_HOST: "127.0.0.1", NODE_ENV: "production" },
  });
}

/**
 * The mod_proxy target's Apache config body: a balancer (bybusyness,
 * connection reuse, WebSocket upgrade) on `port` to the node processes on
 * `backends` (bench/profile-datapath.sh uses it too).
 */
export function modProxyBody(port, backends) {
  return `LoadModule proxy_module ${MODULES}/mod_proxy.so
LoadModule proxy_http_module ${MODULES}/mod_proxy_http.so
LoadModule proxy_balancer_module ${MODULES}/mod_proxy_balancer.so
LoadModule slotmem_shm_module ${MODULES}/mod_slotmem_shm.so
LoadModule lbmethod_bybusyness_module ${MODULES}/mod_lbmethod_bybusyness.so
<VirtualHost 127.0.0.1:${port}>
  ServerName 127.0.0.1
  <Proxy "balancer://app">
    BalancerMember "http://127.0.0.1:${backends[0]}" keepalive=On upgrade=websocket
    BalancerMember "http://127.0.0.1:${backends[1]}" keepalive=On upgrade=websocket
    ProxySet lbmethod=bybusyness
  </Proxy>
  <Location "/">
    Require all granted
  </Location>
  ProxyPass "/" "balancer://app/"
  ProxyPassReverse "/" "balancer://app/"
</VirtualHost>
`;
}

/**
 * The nginx_proxy target's http{} part: proxy_pass on `port` to an upstream
 * of the node processes on `backends` (least_conn, keep-alive, WebSocket
 * upgrade; bench/profile-datapath.sh uses it too).
 */
export function nginxProxyHttp(port, backends) {
  return `    upstream app {
        least_conn;
        server 127.0.0.1:${backends[0]};
        server 127.0.0.1:${backends[1]};
        keepalive 64;
    }
    map $http_upgrade $connection_upgrade {
        default upgrade;
        "" "";
    }
    server {
        listen 127.0.0.1:${port};
        server_name 127.0.0.1;
        location / {
            proxy_pass http://app;
            proxy_http_version 1.1;
            proxy_set_header Host $host;
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection $connection_upgrade;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_read_timeout 3600s;
        }
    }`;
}

export function makeTargets(ctx) {
  const modFerrySo = join(ctx.repo, "build/apache/mod_ferry.so");
  const coreMain = join(ctx.repo, "build/core/src/main.js");
  const cliMain = join(ctx.repo, "build/core/src/cli/main.js");

  const modFerry = frontTarget({
    id: "mod_ferry",
    label: "Apache + mod_ferry",
    check: () => {
      if (!existsSync(modFerrySo)) return `not built: ${modFerrySo} is missing (sh apache-module/build.sh)`;
      if (!existsSync(coreMain)) return `not built: ${coreMain} is missing (npx tsc -p tsconfig.json)`;
      return null;
    },
    body: (port, dir, appDir) => `LoadModule ferry_module ${modFerrySo}
PassengerRoot "${ctx.repo}"
PassengerInstanceRegistryDir "${dir}/registry"
PassengerNodejs ${ctx.node}
PassengerMaxPoolSize 2
PassengerMinInstances 2
${appVhost(port, appDir, ctx.sticky === true)}
`,
  });
  const passenger = frontTarget({
    id: "passenger",
    label: "Apache + Passenger",
    check: () => (existsSync(PASSENGER_SO) ? null : `not installed: ${PASSENGER_SO} (Debian libapache2-mod-passenger)`),
    body: (port, dir, appDir) => {
      mkdirSync(join(dir, "registry"), { recursive: true });
      return `LoadModule passenger_module ${PASSENGER_SO}
PassengerRoot ${PASSENGER_ROOT}
PassengerDefaultRuby /usr/bin/ruby
PassengerInstanceRegistryDir "${dir}/registry"
PassengerNodejs ${ctx.node}
PassengerMaxPoolSize 2
PassengerMinInstances 2
PassengerDisableSecurityUpdateCheck on
PassengerDisableAnonymousTelemetry on
${appVhost(port, appDir, ctx.sticky === true)}
`;
    },
  });
  const ports = [];
  const modProxy = frontTarget({
    id: "mod_proxy",
    label: "Apache + mod_proxy_balancer",
    check: () => (existsSync(`${MODULES}/mod_proxy_balancer.so`) ? null : "not installed: mod_proxy_balancer"),
    body: (port) => modProxyBody(port, ports),
    extra: {
      ports,
      async start(c, appDir) {
        return [nodeApp(c, appDir, ports[0]), nodeApp(c, appDir, ports[1])];
      },
    },
  });
  // Backend ports are picked before the config is written.
  const proxyStart = modProxy.start;
  modProxy.start = async (c, n) => {
    ports[0] = await freePort();
    ports[1] = await freePort();
    return proxyStart(c, n);
  };

  const nginxFerrySo = join(ctx.repo, "build/nginx/ngx_http_ferry_module.so");
  const nginxFerry = frontTarget({
    id: "nginx_ferry",
    label: "nginx + Ferry",
    front: NGINX,
    check: () => {
      if (!existsSync(nginxFerrySo)) return `not built: ${nginxFerrySo} is missing (npm run build:nginx, needs nginx-dev)`;
      if (!existsSync(coreMain)) return `not built: ${coreMain} is missing (npx tsc -p tsconfig.json)`;
      return null;
    },
    body: (port, dir, appDir) => {
      mkdirSync(join(dir, "registry"), { recursive: true });
      return {
        main: `load_module ${nginxFerrySo};`,
        http: `    passenger_root ${ctx.repo};
    passenger_nodejs ${ctx.node};
    passenger_instance_registry_dir ${dir}/registry;
    passenger_max_pool_size 2;
    server {
        listen 127.0.0.1:${port};
        server_name 127.0.0.1;
        root ${appDir}/public;
        passenger_enabled on;
        passenger_app_type node;${ctx.sticky === true ? "\n        passenger_sticky_sessions on;" : ""}
        passenger_startup_file app.js;
        passenger_min_instances 2;
    }`,
      };
    },
  });
  const nginxPorts = [];
  const nginxProxy = frontTarget({
    id: "nginx_proxy",
    label: "nginx + proxy_pass",
    front: NGINX,
    check: () => null,
    body: (port) => ({ http: nginxProxyHttp(port, nginxPorts) }),
    extra: {
      ports: nginxPorts,
      async start(c, appDir) {
        return [nodeApp(c, appDir, nginxPorts[0]), nodeApp(c, appDir, nginxPorts[1])];
      },
    },
  });
  const nginxProxyStart = nginxProxy.start;
  nginxProxy.start = async (c, n) => {
    nginxPorts[0] = await freePort();
    nginxPorts[1] = await freePort();
    return nginxProxyStart(c, n);
  };

  // `ferry start` as people run it (connection handoff, the default), and with
  // --no-connection-handoff (every request relayed through the core) for comparison.
  const ferryStart = (id, label, flags) => ({
    id,
    label,
    expectPids: 2,
    unavailable: () => (existsSync(cliMain) ? null : `not built: ${cliMain} is missing (npx tsc -p tsconfig.json)`),
    async start(c, n) {
      const appDir = c.appDir(id);
      const port = await freePort();
      const registry = join(c.runDir, `${id}-${n}`);
      mkdirSync(registry, { recursive: true, mode: 0o755 });
      const t0 = performance.now();
      const child = startChild(
        c.node,
        [join(c.repo, "bin/ferry.js"), "start", appDir, "--port", String(port), "--address", "127.0.0.1",
          "--min-instances", "2", "--max-pool-size", "2", "--environment", "production",
          "--instance-registry-dir", registry, ...flags],
        { cwd: appDir, env: { ...process.env } },
      );
      let coldMs;
      let firstRequestMs;
      try {
        ({ ms: coldMs, requestMs: firstRequestMs } = await waitOk(port, START_DEADLINE_MS, dead(child), t0));
      } catch (e) {
        await stopChild(child, 15000);
        throw new Error(`${e.message}\n${child.output.trim().split("\n").slice(-15).join("\n")}`.trim());
      }
      return {
        port,
        coldMs,
        firstRequestMs,
        appDir,
        roots: () => [child.pid, ...pidsMatching(appDir)],
        logTail: () => child.output.trim().split("\n").slice(-15).join("\n"),
        async stop() {
          const tree = [...treeStats([child.pid, ...pidsMatching(appDir)]).keys()];
          await stopChild(child, 20000);
          await waitGone(tree, 10000);
        },
      };
    },
  });
  const ferry = ferryStart("ferry", "ferry start (standalone)", []);
  const ferryRelay = ferryStart("ferry_relay", "ferry start --no-connection-handoff", ["--no-connection-handoff"]);

  const pm2 = {
    id: "pm2",
    label: "PM2 cluster (2)",
    expectPids: 2,
    unavailable: () => (existsSync(pm2Bin(ctx)) ? null : `not installed: ${pm2Bin(ctx)} (npm install --prefix bench/.tools pm2)`),
    async start(c, n) {
      const appDir = c.appDir("pm2");
      const home = join(c.runDir, `pm2-${n}`);
      mkdirSync(home, { recursive: true });
      const port = await freePort();
      const eco = join(home, "ecosystem.json");
      writeFileSync(
        eco,
        JSON.stringify({
          apps: [{
            name: "bench", script: join(appDir, "app.js"), cwd: appDir, instances: 2, exec_mode: "cluster",
            autorestart: true, env: { PORT: String(port), BENCH_HOST: "127.0.0.1", NODE_ENV: "production" },
          }],
        }),
      );
      const env = { ...process.env, PM2_HOME: home, PM2_DISCRETE_MODE: "true" };
      const pm2Cmd = async (args, timeout) =>
        run(c.node, [pm2Bin(c), ...args], { env, timeout, maxBuffer: 1 << 20 });
      const t0 = performance.now();
      const daemonPids = () => {
        try {
          const p = Number(readFileSync(join(home, "pm2.pid"), "utf8").trim());
          return Number.isInteger(p) && p > 0 ? [p] : [];
        } catch {
          return [];
        }
      };
      const stop = async () => {
        const tree = [...treeStats([...daemonPids(), ...pidsMatching(appDir), ...pidsMatching(home)]).keys()];
        await pm2Cmd(["kill"], 30000).catch(() => {});
        if (!(await waitGone(tree, 10000))) for (const p of tree) if (alive(p)) try { process.kill(p, "SIGKILL"); } catch {}
      };
      let coldMs;
      let firstRequestMs;
      try {
        await pm2Cmd(["start", eco], 60000);
        ({ ms: coldMs, requestMs: firstRequestMs } = await waitOk(port, START_DEADLINE_MS, () => false, t0));
      } catch (e) {
        await stop();
        throw new Error(`Cannot start PM2: ${e.message}`);
      }
      return {
        port,
        coldMs,
        firstRequestMs,
        appDir,
        roots: () => [...daemonPids(), ...pidsMatching(appDir)],
        logTail: () => "",
        stop,
      };
    },
  };

  const node = {
    id: "node",
    label: "node alone (1 process)",
    expectPids: 1,
    unavailable: () => null,
    async start(c) {
      const appDir = c.appDir("node");
      const port = await freePort();
      const t0 = performance.now();
      const child = nodeApp(c, appDir, port);
      let coldMs;
      let firstRequestMs;
      try {
        ({ ms: coldMs, requestMs: firstRequestMs } = await waitOk(port, START_DEADLINE_MS, dead(child), t0));
      } catch (e) {
        await stopChild(child);
        throw new Error(`${e.message}\n${child.output}`.trim());
      }
      return {
        port,
        coldMs,
        firstRequestMs,
        appDir,
        roots: () => [child.pid],
        logTail: () => child.output.trim().split("\n").slice(-15).join("\n"),
        stop: () => stopChild(child),
      };
    },
  };

  return [modFerry, passenger, modProxy, nginxFerry, nginxProxy, ferry, ferryRelay, pm2, node];
}

function pm2Bin(ctx) {
  return join(ctx.repo, "bench/.tools/node_modules/pm2/bin/pm2");
}

