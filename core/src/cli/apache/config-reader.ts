/**
 * A reader of Apache's configuration tree for `ferry apache check`: from the
 * main file it follows Include/IncludeOptional (globs in the last path
 * component, relative to ServerRoot), keeps the sections open at each line,
 * and collects what the check needs: the modules loaded, server-wide Passenger
 * settings, and every app a VirtualHost (or a Location/Directory in it) serves
 * with its settings and where it was configured. It does not evaluate
 * <IfModule>/<IfDefine>: their bodies count (a check should see every app).
 */
import { existsSync, readFileSync, readdirSync, statSync } from "node:fs";
import path from "node:path";

export interface ConfigPlace {
  readonly file: string;
  readonly line: number;
}

export interface LoadedModule extends ConfigPlace {
  readonly name: string;
  readonly path: string;
}

/** Per-app directives the check looks at, as written (last one wins). */
export type AppSettings = Readonly<Record<string, string>>;

export interface ConfiguredApp extends ConfigPlace {
  /** ServerName of the VirtualHost, or "the main server". */
  readonly vhost: string;
  readonly appRoot: string;
  /** PassengerAppRoot was set (else the app root is the DocumentRoot's parent). */
  readonly explicit: boolean;
  readonly settings: AppSettings;
}

export interface ApacheConfig {
  readonly modules: readonly LoadedModule[];
  /** Server-wide directives (outside any VirtualHost). */
  readonly global: AppSettings;
  /** Candidate apps: every VirtualHost with a DocumentRoot or PassengerAppRoot, and every section with PassengerAppRoot. */
  readonly apps: readonly ConfiguredApp[];
  /** Files that could not be read. */
  readonly unreadable: readonly string[];
}

/** The directives whose values are kept per scope. */
const KEPT = new Set([
  "DocumentRoot", "ServerName", "PassengerEnabled", "PassengerAppRoot", "PassengerStartupFile", "PassengerUser", "PassengerGroup",
  "PassengerNodejs", "PassengerAppType", "PassengerAppStartCommand", "PassengerDefaultUser", "PassengerDefaultGroup", "PassengerRoot",
  "PassengerUserSwitching",
]);

/** Split one directive line into words (double quotes group, backslash escapes inside them). */
export function splitArgs(line: string): string[] {
  const out: string[] = [];
  let i = 0;
  while (i < line.length) {
    while (i < line.length && /\s/.test(line[i] ?? "")) i++;
    if (i >= line.length) break;
    let word = "";
    if (line[i] === '"' || line[i] === "'") {
      const q = line[i];
      i++;
      while (i < line.length && line[i] !== q) {
        if (line[i] === "\\" && i + 1 < line.length) i++;
        word += line[i];
        i++;
      }
      i++;
    } else {
      while (i < line.length && !/\s/.test(line[i] ?? "")) word += line[i++];
    }
    out.push(word);
  }
  return out;
}

function expand(s: string, env: Readonly<Record<string, string | undefined>>): string {
  return s.replace(/\$\{([A-Za-z_][A-Za-z0-9_]*)\}/g, (m, k: string) => env[k] ?? m);
}

/** Files an Include pattern names: a file, a directory (its files), or a glob in the last component. */
function includeFiles(pattern: string): string[] {
  if (!/[*?[]/.test(pattern)) {
    if (!existsSync(pattern)) return [];
    if (statSync(pattern).isDirectory()) return readdirSync(pattern).sort().map((f) => path.join(pattern, f)).filter((f) => statSync(f).isFile());
    return [pattern];
  }
  const dir = path.dirname(pattern);
  if (/[*?[]/.test(dir) || !existsSync(dir)) return [];
  const re = new RegExp(`^${path.basename(pattern).replace(/[.+^${}()|\\]/g, "\\$&").replace(/\*/g, "[^/]*").replace(/\?/g, "[^/]")}$`);
  return readdirSync(dir).filter((f) => re.test(f)).sort().map((f) => path.join(dir, f)).filter((f) => {
    try {
      return statSync(f).isFile();
    } catch {
      return false;
    }
  });
}

interface Scope {
  readonly kind: string;
  readonly place: ConfigPlace;
  readonly settings: Record<string, string>;
  readonly appRootPlace?: ConfigPlace;
}

/** Read the tree under `mainFile` (ServerRoot `serverRoot`, `${VAR}`s from `env`). */
export function readApacheConfig(mainFile: string, serverRoot: string, env: Readonly<Record<string, string | undefined>>): ApacheConfig {
  const modules: LoadedModule[] = [];
  const apps: ConfiguredApp[] = [];
  const unreadable: string[] = [];
  const root: Scope = { kind: "server", place: { file: mainFile, line: 0 }, settings: {} };
  const stack: Scope[] = [root];
  const vhostApps: Array<{ scope: Scope; appRootPlace: ConfigPlace }> = [];
  let depth = 0;

  const visit = (file: string): void => {
    if (++depth > 32) return;
    let text: string;
    try {
      text = readFileSync(file, "utf8");
    } catch {
      unreadable.push(file);
      depth--;
      return;
    }
    const lines = text.split("\n");
    for (let n = 0; n < lines.length; n++) {
      let line = lines[n] ?? "";
      const first = n + 1;
      while (line.endsWith("\\") && n + 1 < lines.length) line = line.slice(0, -1) + (lines[++n] ?? "");
      line = line.trim();
      if (line === "" || line.startsWith("#")) continue;
      const place = { file, line: first };
      const close = /^<\/([A-Za-z]+)\s*>$/.exec(line);
      if (close !== null) {
        const scope = stack.pop();
        if (scope?.kind === "VirtualHost") closeVhost(scope);
        if (stack.length === 0) stack.push(root);
        continue;
      }
      const open = /^<([A-Za-z]+)(.*)>$/.exec(line);
      if (open !== null) {
        const parent = stack[stack.length - 1] ?? root;
        const kind = open[1] ?? "";
        // Sections that are not scopes of their own share their parent's settings.
        const own = kind === "VirtualHost" || kind === "Location" || kind === "LocationMatch" || kind === "Directory" || kind === "DirectoryMatch";
        stack.push(own ? { kind, place, settings: kind === "VirtualHost" ? {} : { ...parent.settings } } : { kind, place, settings: parent.settings });
        continue;
      }
      const [name = "", ...args] = splitArgs(line);
      const scope = stack[stack.length - 1] ?? root;
      if (/^Include(Optional)?$/i.test(name) && args[0] !== undefined) {
        const pattern = path.resolve(serverRoot, expand(args[0], env));
        for (const f of includeFiles(pattern)) visit(f);
        continue;
      }
      if (name === "LoadModule" && args.length >= 2) {
        modules.push({ name: args[0] ?? "", path: path.resolve(serverRoot, expand(args[1] ?? "", env)), ...place });
        continue;
      }
      if (KEPT.has(name) && args[0] !== undefined) {
        scope.settings[name] = expand(args.join(" "), env);
        if (name === "PassengerAppRoot" && scope.kind !== "VirtualHost" && scope.kind !== "server") vhostApps.push({ scope, appRootPlace: place });
      }
    }
    depth--;
  };

  const closeVhost = (vh: Scope): void => {
    const s = vh.settings;
    const vhost = s["ServerName"] ?? `the VirtualHost at ${path.basename(vh.place.file)}:${vh.place.line}`;
    const inherit = (extra: Record<string, string>): Record<string, string> => ({ ...root.settings, ...s, ...extra });
    if (s["PassengerAppRoot"] !== undefined || s["DocumentRoot"] !== undefined) {
      const explicit = s["PassengerAppRoot"] !== undefined;
      const appRoot = explicit ? (s["PassengerAppRoot"] ?? "") : path.dirname(s["DocumentRoot"] ?? "/");
      apps.push({ vhost, appRoot: path.resolve(serverRoot, appRoot), explicit, settings: inherit({}), ...vh.place });
    }
    for (const inner of vhostApps.splice(0)) {
      const appRoot = inner.scope.settings["PassengerAppRoot"] ?? "";
      if (appRoot === s["PassengerAppRoot"]) continue;
      apps.push({ vhost, appRoot: path.resolve(serverRoot, appRoot), explicit: true, settings: inherit(inner.scope.settings), ...inner.appRootPlace });
    }
  };

  visit(mainFile);
  // Sections with PassengerAppRoot outside any VirtualHost: apps of the main server.
  for (const inner of vhostApps.splice(0)) {
    apps.push({ vhost: "the main server", appRoot: path.resolve(serverRoot, inner.scope.settings["PassengerAppRoot"] ?? ""), explicit: true, settings: { ...root.settings, ...inner.scope.settings }, ...inner.appRootPlace });
  }
  return { modules, global: root.settings, apps, unreadable };
}
