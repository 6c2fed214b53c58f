/**
 * `ferry apache start|stop|install|check`: a private Apache with mod_ferry for
 * development and tests (cli/apache/dev-server.ts), the Debian a2enmod
 * snippets for a real server (cli/apache/debian-snippets.ts), and the check a
 * control panel runs before a graceful (cli/apache/check.ts).
 *
 *   ferry apache start [--port 8080] [--address 127.0.0.1] [--dir DIR]
 *                      [--environment development] [APP_DIR]
 *   ferry apache stop [--dir DIR | --port N]
 *   ferry apache install [--dest /etc/apache2/mods-available]
 *
 * `install` only writes files and says what to run next: it never enables,
 * reloads or restarts the system's Apache.
 */
import { existsSync } from "node:fs";
import { readFile, writeFile } from "node:fs/promises";
import path from "node:path";
import { parseArgs } from "node:util";

import { UsageError, parseDevStartArgs, parseDevStopDir, runSubcommands } from "../args.js";
import { EXIT_FAILURE, EXIT_OK, type CliIo } from "../io.js";
import { packageRoot, startedText } from "../private-server.js";
import { checkApache, passengerEnabled } from "../apache/check.js";
import { renderConfFile, renderLoadFile } from "../apache/debian-snippets.js";
import { startDevApache, stopDevApache } from "../apache/dev-server.js";

type CommandIO = Pick<CliIo, "stdout" | "stderr"> & Partial<Pick<CliIo, "cwd" | "env">>;

const USAGE = `Usage:
  ferry apache start [--port 8080] [--address 127.0.0.1] [--dir DIR]
                     [--environment development] [--module PATH] [APP_DIR]
  ferry apache stop [--dir DIR | --port N]
  ferry apache install [--dest /etc/apache2/mods-available]
  ferry apache check [--confdir /etc/apache2]

start    run a private Apache with mod_ferry serving APP_DIR (default: .)
stop     stop the private Apache started from DIR
install  write ferry.load and ferry.conf for Debian's a2enmod (prints next steps)
check    Apache's configtest, then every app: app root, owner, startup file,
         user, Node.js; Passenger's module enabled too. One line per problem,
         exit status 1 when any (run it before a graceful)
`;

const DEFAULT_PORT = 8080;
const DEFAULT_ADDRESS = "127.0.0.1";
const DEFAULT_INSTALL_DEST = "/etc/apache2/mods-available";

function say(io: CommandIO, text: string): void {
  io.stdout.write(text.endsWith("\n") ? text : `${text}\n`);
}

export function run(args: readonly string[], io: CommandIO): Promise<number> {
  return runSubcommands("apache", USAGE, { start: (a) => start(a, io), stop: (a) => stop(a, io), install: (a) => install(a, io), check: (a) => check(a, io) }, args, io);
}

// ---------------------------------------------------------------------------
// start

async function start(args: readonly string[], io: CommandIO): Promise<number> {
  const { port, address, environment, appDir, dir, module } = parseDevStartArgs("apache", args, io.cwd ?? process.cwd(), { port: DEFAULT_PORT, address: DEFAULT_ADDRESS });
  const root = packageRoot();
  const modulePath = module ?? path.resolve(path.join(root, "build", "apache", "mod_ferry.so"));
  const started = { dir, port, address, appDir, environment, modulePath, root };
  io.stdout.write(startedText("Apache with mod_ferry", "apache", started, await startDevApache(started)));
  return EXIT_OK;
}

// ---------------------------------------------------------------------------
// stop

async function stop(args: readonly string[], io: CommandIO): Promise<number> {
  const dir = parseDevStopDir("apache", args, DEFAULT_PORT);
  const pid = await stopDevApache(dir);
  say(io, `Stopped Apache (pid ${pid}) from ${dir}; mod_ferry stopped the core and its apps`);
  return EXIT_OK;
}

// ---------------------------------------------------------------------------
// install

async function install(args: readonly string[], io: CommandIO): Promise<number> {
  const { values, positionals } = parseArgs({
    args: [...args],
    allowPositionals: true,
    options: { dest: { type: "string" } },
  });
  if (positionals.length > 0) throw new UsageError("install takes no positional arguments");
  const root = packageRoot();
  const dest = path.resolve(values.dest ?? DEFAULT_INSTALL_DEST);
  const modulePath = path.join(root, "build", "apache", "mod_ferry.so");
  if (!existsSync(dest)) {
    throw new Error(`Cannot install: ${dest} does not exist (is Apache installed? use --dest DIR)`);
  }
  const readTemplate = async (name: string): Promise<string | undefined> => {
    const file = path.join(root, "conf", name);
    return existsSync(file) ? readFile(file, "utf8") : undefined;
  };
  const files: Array<[string, string]> = [
    ["ferry.load", renderLoadFile(root, await readTemplate("ferry.load"))],
    ["ferry.conf", renderConfFile(root, process.execPath, await readTemplate("ferry.conf"))],
  ];
  for (const [name, text] of files) {
    const file = path.join(dest, name);
    const verb = existsSync(file) ? "Updated" : "Wrote";
    await writeFile(file, text, { mode: 0o644 });
    say(io, `${verb} ${file}`);
  }
  say(io, `PassengerRoot is ${root}`);
  if (!existsSync(modulePath)) {
    say(io, `Warning: ${modulePath} does not exist yet; build it with "npm run build:apache" first`);
  }
  const confdir = path.dirname(dest);
  if (passengerEnabled(confdir)) {
    say(io, "");
    say(io, `Warning: Passenger's module is enabled (${path.join(confdir, "mods-enabled", "passenger.load")}).`);
    say(io, "  Both modules claim the Passenger* directives and Passenger's PassengerRoot wins: Apache would");
    say(io, "  refuse to start Ferry's core. Disable it first, keeping your VirtualHosts as they are:");
    say(io, "    a2dismod passenger");
    say(io, "");
  }
  say(io, "Nothing was enabled or restarted. Next steps:");
  say(io, "  a2enmod ferry");
  say(io, "  ferry apache check           # Apache's configtest, then every app");
  say(io, "  systemctl reload apache2     # or: apachectl graceful");
  say(io, "Then add PassengerAppRoot/PassengerEnabled to a VirtualHost (docs/apache.md).");
  return EXIT_OK;
}

// ---------------------------------------------------------------------------
// check

async function check(args: readonly string[], io: CommandIO): Promise<number> {
  const { values, positionals } = parseArgs({
    args: [...args],
    allowPositionals: true,
    options: { confdir: { type: "string" } },
  });
  if (positionals.length > 0) throw new UsageError("check takes no positional arguments");
  const env = io.env ?? {};
  const confdir = path.resolve(io.cwd ?? "/", values.confdir ?? env["APACHE_CONFDIR"] ?? "/etc/apache2");
  const r = await checkApache({ confdir, env });
  for (const p of r.problems) io.stdout.write(`${p.where}: ${p.what}\n`);
  if (r.problems.length > 0) {
    io.stdout.write(`${r.problems.length} problem${r.problems.length === 1 ? "" : "s"} found (${r.apps.length} app${r.apps.length === 1 ? "" : "s"} checked in ${confdir})\n`);
    return EXIT_FAILURE;
  }
  io.stdout.write(`OK: configtest passed, ${r.apps.length} app${r.apps.length === 1 ? "" : "s"} checked in ${confdir}, no problems\n`);
  return EXIT_OK;
}
