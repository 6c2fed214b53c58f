/**
 * `ferry nginx start|stop|install`: a private nginx with Ferry's module for
 * development and tests, and the snippets of Debian's nginx layout for a
 * real server.
 *
 *   ferry nginx start [--port 8080] [--address 127.0.0.1] [--dir DIR]
 *                     [--environment development] [--module PATH] [APP_DIR]
 *   ferry nginx stop [--dir DIR | --port N]
 *   ferry nginx install [--prefix /] [--dry-run] [--app DIR] [--server-name NAME]
 *
 * `start`/`stop` run the private nginx of cli/nginx/dev-server.ts (DIR
 * defaults to $TMPDIR/ferry-nginx-<port>). `install` only writes files (or,
 * with --dry-run, prints them) and says what to run next: it never reloads
 * or restarts the system's nginx. The text of every file comes from
 * cli/nginx/nginx-conf.ts.
 */
import { existsSync } from "node:fs";
import { mkdir, writeFile } from "node:fs/promises";
import path from "node:path";
import { parseArgs } from "node:util";

import { UsageError, parseDevStartArgs, parseDevStopDir, runSubcommands } from "../args.js";
import { EXIT_OK, type CliIo } from "../io.js";
import { startDevNginx, stopDevNginx } from "../nginx/dev-server.js";
import { nginxModulePath, renderNginxHttpSnippet, renderNginxLoadSnippet, renderNginxSiteSnippet } from "../nginx/nginx-conf.js";
import { packageRoot, startedText } from "../private-server.js";

type CommandIO = Pick<CliIo, "stdout" | "stderr"> & Partial<Pick<CliIo, "cwd" | "env">>;

const USAGE = `Usage:
  ferry nginx start [--port 8080] [--address 127.0.0.1] [--dir DIR]
                    [--environment development] [--module PATH] [APP_DIR]
  ferry nginx stop [--dir DIR | --port N]
  ferry nginx install [--prefix /] [--dry-run] [--app DIR] [--server-name NAME]

start    run a private nginx with Ferry's module serving APP_DIR (default: .)
stop     stop the private nginx started from DIR
install  write the load_module line (etc/nginx/modules-enabled), the server-wide
         settings (etc/nginx/conf.d) and an example site (etc/nginx/sites-available)
         under PREFIX for Debian's nginx; --dry-run prints them instead (and the
         next steps). Nothing is reloaded or restarted
`;

const DEFAULT_PORT = 8080;
const DEFAULT_ADDRESS = "127.0.0.1";

function say(io: CommandIO, text: string): void {
  io.stdout.write(text.endsWith("\n") ? text : `${text}\n`);
}

export function run(args: readonly string[], io: CommandIO): Promise<number> {
  return runSubcommands("nginx", USAGE, { start: (a) => start(a, io), stop: (a) => stop(a, io), install: (a) => install(a, io) }, args, io);
}

// ---------------------------------------------------------------------------
// start

async function start(args: readonly string[], io: CommandIO): Promise<number> {
  const { port, address, environment, appDir, dir, module } = parseDevStartArgs("nginx", args, io.cwd ?? process.cwd(), { port: DEFAULT_PORT, address: DEFAULT_ADDRESS });
  const root = packageRoot();
  const modulePath = module ?? path.resolve(nginxModulePath(root));
  const started = { dir, port, address, appDir, environment, modulePath, root };
  io.stdout.write(startedText("nginx with Ferry's module", "nginx", started, await startDevNginx(started)));
  return EXIT_OK;
}

// ---------------------------------------------------------------------------
// stop

async function stop(args: readonly string[], io: CommandIO): Promise<number> {
  const dir = parseDevStopDir("nginx", args, DEFAULT_PORT);
  const pid = await stopDevNginx(dir);
  say(io, `Stopped nginx (pid ${pid}) from ${dir}; the module stopped the core and its apps`);
  return EXIT_OK;
}

// ---------------------------------------------------------------------------
// install

async function install(args: readonly string[], io: CommandIO): Promise<number> {
  const { values, positionals } = parseArgs({
    args: [...args],
    allowPositionals: true,
    options: {
      prefix: { type: "string" },
      "dry-run": { type: "boolean" },
      app: { type: "string" },
      "server-name": { type: "string" },
    },
  });
  if (positionals.length > 0) throw new UsageError("install takes no positional arguments");
  const cwd = io.cwd ?? process.cwd();
  const prefix = path.resolve(cwd, values.prefix ?? "/");
  const dryRun = values["dry-run"] === true;
  const appDir = path.resolve(cwd, values.app ?? "/srv/app");
  const serverName = values["server-name"] ?? "app.example.com";
  if (!/^[A-Za-z0-9*_.-]+$/.test(serverName)) throw new UsageError(`--server-name must be a host name, got "${serverName}"`);
  const root = packageRoot();
  const etc = path.join(prefix, "etc", "nginx");
  if (!existsSync(etc)) {
    throw new Error(`Cannot install: ${etc} does not exist (is nginx installed? use --prefix DIR)`);
  }
  const files: Array<[string, string]> = [
    [path.join(etc, "modules-enabled", "50-mod-http-ferry.conf"), renderNginxLoadSnippet(root)],
    [path.join(etc, "conf.d", "ferry.conf"), renderNginxHttpSnippet(root, process.execPath)],
    [path.join(etc, "sites-available", "ferry"), renderNginxSiteSnippet({ serverName, appDir, port: 80 })],
  ];
  for (const [file, text] of files) {
    if (dryRun) {
      say(io, `--- would write ${file} ---`);
      io.stdout.write(text);
      continue;
    }
    await mkdir(path.dirname(file), { recursive: true, mode: 0o755 });
    const verb = existsSync(file) ? "Updated" : "Wrote";
    await writeFile(file, text, { mode: 0o644 });
    say(io, `${verb} ${file}`);
  }
  say(io, `passenger_root is ${root}`);
  const modulePath = nginxModulePath(root);
  if (!existsSync(modulePath)) {
    say(io, `Warning: ${modulePath} does not exist yet; build it with "npm run build:nginx" first (needs nginx-dev)`);
  }
  say(io, dryRun ? "Dry run: nothing was written." : "Nothing was reloaded or restarted. Next steps:");
  if (dryRun) say(io, "Next steps after a real install:");
  say(io, "  ln -s ../sites-available/ferry /etc/nginx/sites-enabled/ferry   # after editing it");
  say(io, "  nginx -t");
  say(io, "  systemctl reload nginx       # or: nginx -s reload (starts Ferry's core)");
  say(io, "See docs/nginx.md for every directive.");
  return EXIT_OK;
}
