/**
 * `ferry status --json` of the core a private Apache or nginx started, as an operator
 * runs it (the CLI, through the instance's control socket).
 */
import { execFile as execFileCb } from "node:child_process";
import path from "node:path";
import { promisify } from "node:util";
import { REPO_ROOT } from "./apache.js";

const execFile = promisify(execFileCb);

export interface StatusProcess {
  readonly pid: number;
  /** Its sticky-session id (the route cookie's value). */
  readonly stickyId: string;
  readonly state: string;
  readonly inFlight: number;
  readonly processed: number;
}

export interface StatusGroup {
  readonly name: string;
  readonly appRoot: string;
  readonly appEnv: string;
  readonly processes: readonly StatusProcess[];
  /** LEASEs sent, those of them with a pass, requests served without the core (undefined: the core does not say). */
  readonly leases?: number | undefined;
  readonly passes?: number | undefined;
  readonly directRequests?: number | undefined;
}

export interface Status {
  readonly maxPoolSize: number;
  readonly processCount: number;
  readonly groups: readonly StatusGroup[];
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function num(v: unknown, what: string): number {
  if (typeof v !== "number") throw new Error(`Cannot read status: ${what} is not a number`);
  return v;
}

function str(v: unknown, what: string): string {
  if (typeof v !== "string") throw new Error(`Cannot read status: ${what} is not a string`);
  return v;
}

function parseStatus(raw: unknown): Status {
  if (!isRecord(raw) || !Array.isArray(raw.groups)) throw new Error("Cannot read status: no groups");
  const groups = raw.groups.map((g: unknown): StatusGroup => {
    if (!isRecord(g) || !Array.isArray(g.processes)) throw new Error("Cannot read status: bad group");
    return {
      name: str(g.name, "group name"),
      appRoot: str(g.appRoot, "appRoot"),
      appEnv: str(g.appEnv, "appEnv"),
      leases: g.leases === undefined ? undefined : num(g.leases, "leases"),
      passes: g.passes === undefined ? undefined : num(g.passes, "passes"),
      directRequests: g.directRequests === undefined ? undefined : num(g.directRequests, "directRequests"),
      processes: g.processes.map((p: unknown): StatusProcess => {
        if (!isRecord(p)) throw new Error("Cannot read status: bad process");
        return {
          pid: num(p.pid, "pid"),
          stickyId: str(p.stickyId, "stickyId"),
          state: str(p.state, "state"),
          inFlight: num(p.inFlight, "inFlight"),
          processed: num(p.processed, "processed"),
        };
      }),
    };
  });
  return { maxPoolSize: num(raw.maxPoolSize, "maxPoolSize"), processCount: num(raw.processCount, "processCount"), groups };
}

export async function ferryStatus(server: { readonly instanceDir: string }): Promise<Status> {
  const { stdout } = await execFile(
    process.execPath,
    [path.join(REPO_ROOT, "bin/ferry.js"), "status", "--instance", server.instanceDir, "--json"],
    { timeout: 15_000 },
  );
  return parseStatus(JSON.parse(stdout));
}

/** The group serving `appRoot` (any env), if any. */
export function groupOf(status: Status, appRoot: string): StatusGroup | undefined {
  return status.groups.find((g) => g.appRoot === appRoot);
}
