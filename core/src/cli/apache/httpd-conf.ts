/**
 * The one renderer of a private Apache's httpd.conf: `ferry apache start`'s
 * development instance, the end-to-end tests' servers (test/helpers/apache.ts)
 * and the benchmarks' (bench/lib/apache.mjs, bench/profile-datapath.sh) all
 * write theirs with renderHttpdConf(). Everything lives under one ServerRoot
 * (run/ for the pid file, the runtime dir and the core's instance registry,
 * logs/), on a given address and port, with absolute paths only: neither the
 * system's Apache config nor Debian's envvars is read. Also the facts such a
 * config needs from this machine: where Apache's modules are, who the
 * children run as.
 */
import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
import net from "node:net";
import path from "node:path";
import { unprivilegedUser } from "../private-server.js";

export interface HttpdConf {
  /** The first line's comment: what this instance is for. */
  readonly title: string;
  readonly serverRoot: string;
  readonly address: string;
  readonly port: number;
  /** Default: the address (bracketed when IPv6). */
  readonly serverName?: string;
  /** Default `logs/error_log` in the ServerRoot. */
  readonly errorLog?: string;
  /** Default "warn". */
  readonly logLevel?: string;
  /** Apache's module dir (apacheModulesDir()). */
  readonly modulesDir: string;
  /** Modules to load from modulesDir, by name without `mod_` (`mpm_event`, `authz_core`, …). */
  readonly modules: readonly string[];
  /** mod_ferry to load; absent: none (a target that loads its own). */
  readonly ferryModule?: string;
  /** `User`/`Group` lines (runAsLines()). */
  readonly runAs: string;
  /** Server settings after the modules (MPM sizing, timeouts, log formats). */
  readonly settings?: readonly string[];
  /** PassengerRoot (and PassengerNodejs) of mod_ferry; the instance registry is run/ of the ServerRoot. */
  readonly passenger?: { readonly root: string; readonly nodejs?: string };
  /** More server-wide directives, after `<Directory />`. */
  readonly global?: readonly string[];
  /** Rendered `<VirtualHost>` blocks (renderVhost()). */
  readonly vhosts?: readonly string[];
}

/** A quoted directive argument. */
export const q = (s: string): string => `"${s.replace(/\\/g, "\\\\").replace(/"/g, '\\"')}"`;

/** The address as Listen and VirtualHost write it (IPv6 in brackets). */
export function hostPart(address: string): string {
  return net.isIPv6(address) ? `[${address}]` : address;
}

/** httpd.conf text for a private instance. */
export function renderHttpdConf(c: HttpdConf): string {
  const host = hostPart(c.address);
  const run = path.join(c.serverRoot, "run");
  return [
    `# ${c.title} (generated; edits are overwritten).`,
    `ServerRoot ${q(c.serverRoot)}`,
    `DefaultRuntimeDir ${q(run)}`,
    `PidFile ${q(path.join(run, "httpd.pid"))}`,
    `ErrorLog ${q(c.errorLog ?? path.join(c.serverRoot, "logs", "error_log"))}`,
    `LogLevel ${c.logLevel ?? "warn"}`,
    `Listen ${host}:${c.port}`,
    `ServerName ${c.serverName ?? host}`,
    ...c.modules.map((m) => `LoadModule ${m}_module ${q(path.join(c.modulesDir, `mod_${m}.so`))}`),
    ...(c.ferryModule !== undefined ? [`LoadModule ferry_module ${q(c.ferryModule)}`] : []),
    c.runAs,
    ...(c.settings ?? []),
    ``,
    ...(c.passenger !== undefined
      ? [
        `PassengerRoot ${q(c.passenger.root)}`,
        ...(c.passenger.nodejs !== undefined ? [`PassengerNodejs ${q(c.passenger.nodejs)}`] : []),
        `PassengerInstanceRegistryDir ${q(run)}`,
        ``,
      ]
      : []),
    `<Directory />`,
    `    AllowOverride None`,
    `    Require all denied`,
    `</Directory>`,
    ``,
    ...(c.global ?? []),
    ``,
    ...(c.vhosts ?? []).flatMap((v) => [v, ``]),
  ].join("\n");
}

export interface VhostConf {
  readonly address: string;
  readonly port: number;
  readonly serverName: string;
  readonly documentRoot: string;
  /** Inside `<Directory documentRoot>` after `Require all granted`; default `AllowOverride All`. */
  readonly directoryLines?: readonly string[];
  /** More directives inside the `<VirtualHost>`. */
  readonly directives?: readonly string[];
}

/** A `<VirtualHost>` serving a DocumentRoot (an app's public/) to everyone. */
export function renderVhost(v: VhostConf): string {
  return [
    `<VirtualHost ${hostPart(v.address)}:${v.port}>`,
    `    ServerName ${v.serverName}`,
    `    DocumentRoot ${q(v.documentRoot)}`,
    `    <Directory ${q(v.documentRoot)}>`,
    ...(v.directoryLines ?? [`AllowOverride All`]).map((l) => `        ${l}`),
    `        Require all granted`,
    `    </Directory>`,
    ...(v.directives ?? []).map((d) => `    ${d}`),
    `</VirtualHost>`,
  ].join("\n");
}

const MODULE_DIRS = ["/usr/lib/apache2/modules", "/usr/lib64/httpd/modules", "/usr/lib/httpd/modules", "/usr/libexec/apache2"];

/** Apache's module dir: `apxs -q LIBEXECDIR`, else the usual places; Error when none has mod_mpm_event.so. */
export function apacheModulesDir(): string {
  try {
    const dir = execFileSync("apxs", ["-q", "LIBEXECDIR"], { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] }).trim();
    if (dir !== "" && existsSync(path.join(dir, "mod_mpm_event.so"))) return dir;
  } catch {
    /* no apxs: try the usual places */
  }
  for (const dir of MODULE_DIRS) {
    if (existsSync(path.join(dir, "mod_mpm_event.so"))) return dir;
  }
  throw new Error("Cannot find Apache's modules (mod_mpm_event.so): install apache2 (Debian) or httpd, or apxs");
}

/** When root, Apache's children need an unprivileged User/Group: www-data (Debian), apache, else nobody. */
export function runAsLines(): string {
  const u = unprivilegedUser("apache");
  return u === undefined ? "# not started as root: Apache's children keep the current user" : `User ${u.user}\nGroup ${u.group}`;
}
