/**
 * `ferry apache check`: what a control panel runs before a graceful. First
 * Apache's own configtest, then every Ferry app the configuration serves:
 * the app root exists and belongs to the app's owner, the startup file is
 * there, the user (and group) resolve, Node.js is found; and the classic
 * migration trap, Passenger's module enabled next to Ferry's. One readable
 * line per problem (docs/apache.md "Checking a configuration").
 */
import { execFile } from "node:child_process";
import { accessSync, constants as fsConstants, existsSync, readFileSync, statSync, type Stats } from "node:fs";
import path from "node:path";
import { readApacheConfig, type ApacheConfig, type ConfiguredApp } from "./config-reader.js";

export interface Problem {
  /** "blog.example.com (sites-enabled/blog.conf:3)" or "Apache". */
  readonly where: string;
  readonly what: string;
}

export interface CheckResult {
  readonly problems: readonly Problem[];
  /** Apps found and checked. */
  readonly apps: readonly ConfiguredApp[];
  readonly configtest: string;
}

/** The PATH Apache (and so the core) usually runs with under systemd. */
const APACHE_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/** `name:x:uid:gid:…` lines of /etc/passwd or /etc/group. */
function entries(file: string): Array<{ name: string; id: number }> {
  try {
    return readFileSync(file, "utf8").split("\n").filter((l) => l !== "" && !l.startsWith("#")).map((l) => {
      const f = l.split(":");
      return { name: f[0] ?? "", id: Number(f[2]) };
    });
  } catch {
    return [];
  }
}

export interface CheckOptions {
  /** Debian's configuration dir (APACHE_CONFDIR); default /etc/apache2. */
  readonly confdir: string;
  readonly env: Readonly<Record<string, string | undefined>>;
  /** /etc/passwd and /etc/group (tests). */
  readonly passwd?: string;
  readonly group?: string;
}

/** Apache's environment from the confdir's envvars (APACHE_LOG_DIR …), as apache2ctl sources it. */
function envvars(confdir: string, env: Readonly<Record<string, string | undefined>>): Promise<Record<string, string | undefined>> {
  const file = path.join(confdir, "envvars");
  if (!existsSync(file)) return Promise.resolve({ ...env });
  return new Promise((resolve) => {
    execFile("/bin/sh", ["-c", '. "$1" && env', "sh", file], { env: { ...env, APACHE_CONFDIR: confdir }, timeout: 10_000 }, (err, stdout) => {
      if (err !== null) {
        resolve({ ...env });
        return;
      }
      const out: Record<string, string> = {};
      for (const l of stdout.split("\n")) {
        const i = l.indexOf("=");
        if (i > 0) out[l.slice(0, i)] = l.slice(i + 1);
      }
      resolve(out);
    });
  });
}

/** `apache2ctl -t` for this confdir: "" when it passes, else its output. */
export function configtest(confdir: string, env: Readonly<Record<string, string | undefined>>): Promise<string> {
  const ctl = ["/usr/sbin/apache2ctl", "/usr/bin/apache2ctl", "/usr/sbin/apachectl"].find((f) => existsSync(f));
  if (ctl === undefined) return Promise.resolve("Cannot run Apache's configtest: apache2ctl is not installed");
  return new Promise((resolve) => {
    execFile(ctl, ["-t"], { env: { ...env, APACHE_CONFDIR: confdir, PATH: env["PATH"] ?? APACHE_PATH }, timeout: 60_000 }, (err, stdout, stderr) => {
      const out = `${stdout}${stderr}`.trim();
      resolve(err === null ? "" : out || err.message);
    });
  });
}

function where(app: ConfiguredApp, confdir: string): string {
  const rel = path.relative(confdir, app.file);
  return `${app.vhost} (${rel.startsWith("..") ? app.file : rel}:${app.line})`;
}

function statOf(p: string): Stats | undefined {
  try {
    return statSync(p);
  } catch {
    return undefined;
  }
}

function executable(file: string): boolean {
  try {
    accessSync(file, fsConstants.X_OK);
    return statSync(file).isFile();
  } catch {
    return false;
  }
}

/** The node an app would run: PassengerNodejs (absolute, or looked up on Apache's PATH), else `node`. */
function findNode(cmd: string, pathVar: string): string | undefined {
  if (cmd.includes("/")) return executable(cmd) ? cmd : undefined;
  for (const dir of pathVar.split(":")) {
    const f = path.join(dir, cmd);
    if (executable(f)) return f;
  }
  return undefined;
}

/** Passengerfile.json's app_start_command (a generic app), if any. */
function passengerfileCommand(appRoot: string): string | undefined {
  try {
    const v: unknown = JSON.parse(readFileSync(path.join(appRoot, "Passengerfile.json"), "utf8"));
    const c = typeof v === "object" && v !== null ? Reflect.get(v, "app_start_command") : undefined;
    return typeof c === "string" && c !== "" ? c : undefined;
  } catch {
    return undefined;
  }
}

/** Whether an app root holds an app Ferry would serve (its autodetection), for vhosts without PassengerAppRoot. */
function looksLikeApp(app: ConfiguredApp): boolean {
  if (app.explicit || /^on$/i.test(app.settings["PassengerEnabled"] ?? "")) return true;
  const startup = app.settings["PassengerStartupFile"] ?? "app.js";
  return existsSync(path.join(app.appRoot, startup)) || passengerfileCommand(app.appRoot) !== undefined;
}

/** Check the apps of one configuration (no configtest). */
export function checkApps(cfg: ApacheConfig, opts: CheckOptions): { problems: Problem[]; apps: ConfiguredApp[] } {
  const problems: Problem[] = [];
  const users = entries(opts.passwd ?? "/etc/passwd");
  const groups = entries(opts.group ?? "/etc/group");
  const userByName = (n: string): { name: string; id: number } | undefined => users.find((u) => u.name === n);
  const passenger = cfg.modules.find((m) => m.name === "passenger_module");
  if (passenger !== undefined) {
    problems.push({
      where: `Apache (${path.relative(opts.confdir, passenger.file)}:${passenger.line})`,
      what: "Passenger's module (passenger_module) is enabled next to Ferry: both claim the Passenger* directives and Passenger's PassengerRoot wins, so Apache cannot start Ferry's core. Disable it with \"a2dismod passenger\" and keep your VirtualHosts as they are (Ferry reads the same directives)",
    });
  }
  const ferry = cfg.modules.find((m) => m.name === "ferry_module");
  if (ferry !== undefined && !existsSync(ferry.path)) {
    problems.push({ where: `Apache (${path.relative(opts.confdir, ferry.file)}:${ferry.line})`, what: `mod_ferry ${ferry.path} does not exist (run "ferry apache install" again, or build it with "npm run build:apache")` });
  }
  const apps = cfg.apps.filter((a) => /^off$/i.test(a.settings["PassengerEnabled"] ?? "") === false && looksLikeApp(a));
  if (apps.length > 0 && ferry === undefined) {
    problems.push({ where: "Apache", what: 'mod_ferry is not loaded: enable it with "a2enmod ferry" (after "ferry apache install")' });
  }
  for (const app of apps) {
    const at = where(app, opts.confdir);
    const s = app.settings;
    const st = statOf(app.appRoot);
    if (st === undefined || !st.isDirectory()) {
      problems.push({ where: at, what: `app root ${app.appRoot} does not exist` });
      continue;
    }
    // The startup file (Node apps) or the start command (generic apps).
    const generic = /^generic$/i.test(s["PassengerAppType"] ?? "") || s["PassengerAppStartCommand"] !== undefined || passengerfileCommand(app.appRoot) !== undefined;
    const startup = path.resolve(app.appRoot, s["PassengerStartupFile"] ?? "app.js");
    const sf = generic ? undefined : statOf(startup);
    if (!generic && (sf === undefined || !sf.isFile())) {
      problems.push({ where: at, what: `startup file ${startup} not found (set PassengerStartupFile, or put app.js in the app root)` });
    }
    // Who the app runs as: PassengerUser, else the startup file's owner.
    const userName = s["PassengerUser"];
    let ownerUid: number | undefined;
    if (userName !== undefined) {
      const u = userByName(userName);
      if (u === undefined) problems.push({ where: at, what: `PassengerUser ${userName} does not exist` });
      else ownerUid = u.id;
    } else if (sf !== undefined) {
      ownerUid = sf.uid;
      if (!users.some((u) => u.id === sf.uid)) problems.push({ where: at, what: `startup file ${startup} is owned by uid ${sf.uid}, which is no user (the app could not be started as its owner)` });
    }
    const groupName = s["PassengerGroup"];
    if (groupName !== undefined && groupName !== "!STARTUP_FILE!" && !groups.some((g) => g.name === groupName)) {
      problems.push({ where: at, what: `PassengerGroup ${groupName} does not exist` });
    }
    if (ownerUid !== undefined && ownerUid !== 0 && st.uid !== 0 && st.uid !== ownerUid) {
      const name = (uid: number): string => users.find((u) => u.id === uid)?.name ?? `uid ${uid}`;
      problems.push({ where: at, what: `app root ${app.appRoot} belongs to ${name(st.uid)}, but the app runs as ${name(ownerUid)}` });
    }
    if (!generic) {
      const nodeCmd = s["PassengerNodejs"] ?? cfg.global["PassengerNodejs"] ?? "node";
      if (findNode(nodeCmd, opts.env["PATH"] ?? APACHE_PATH) === undefined) {
        problems.push({ where: at, what: `Node.js not found: "${nodeCmd}" is not an executable${nodeCmd.includes("/") ? "" : " on Apache's PATH"} (set PassengerNodejs to its absolute path)` });
      }
    }
  }
  return { problems, apps };
}

/** The whole check: configtest, then the apps. */
export async function checkApache(opts: CheckOptions): Promise<CheckResult> {
  const env = await envvars(opts.confdir, opts.env);
  const problems: Problem[] = [];
  const test = await configtest(opts.confdir, opts.env);
  if (test !== "") problems.push({ where: "Apache", what: `configtest failed: ${test.split("\n").filter((l) => l.trim() !== "").slice(-3).join(" / ")}` });
  const main = path.join(opts.confdir, "apache2.conf");
  if (!existsSync(main)) {
    problems.push({ where: "Apache", what: `${main} does not exist (pass --confdir)` });
    return { problems, apps: [], configtest: test };
  }
  const cfg = readApacheConfig(main, opts.confdir, env);
  for (const f of cfg.unreadable) problems.push({ where: "Apache", what: `Cannot read ${f}` });
  const apps = checkApps(cfg, opts);
  return { problems: [...problems, ...apps.problems], apps: apps.apps, configtest: test };
}

/** Passenger's module enabled in a Debian confdir (for `ferry apache install`). */
export function passengerEnabled(confdir: string): boolean {
  return existsSync(path.join(confdir, "mods-enabled", "passenger.load"));
}
