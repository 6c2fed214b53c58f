/**
 * Readable log lines from pino's JSON records (docs/logging.md). Two shapes:
 *
 *   terminal (`ferry start`):
 *     2026-12-06 04:05:59.123 INFO  blog: Process spawned (pid=1771 reason=demand)
 *     2026-12-06 04:05:59.200       blog[1771]: listening on 3000          (app output)
 *   apache (the core under mod_ferry, Apache's error-log shape):
 *     [Sun Dec 06 04:05:59.123456 2026] [ferry:notice] [pid 812] FERRY0301: blog: Process spawned (pid=1771 reason=demand)
 *     [Sun Dec 06 04:05:59.200000 2026] [ferry:notice] [pid 812] blog[1771]: listening on 3000
 *
 * Pure: one record in, one line out. Only records that are logged are
 * formatted; requests that log nothing cost nothing here.
 */
import path from "node:path";

export type LineStyle = "terminal" | "apache";

/** Fields shown elsewhere in the line, or noise for a reader. */
const SHOWN = new Set(["level", "time", "msg", "pid", "app", "corePid", "name", "component", "hostname", "v", "stream", "logno", "err"]);

const TERMINAL_LEVELS: Readonly<Record<number, string>> = { 10: "TRACE", 20: "DEBUG", 30: "INFO ", 40: "WARN ", 50: "ERROR", 60: "FATAL" };
/** pino levels → Apache's (Passenger's notice is pino's info). */
const APACHE_LEVELS: Readonly<Record<number, string>> = { 10: "trace1", 20: "debug", 30: "notice", 40: "warn", 50: "error", 60: "crit" };

const DAYS = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

const p2 = (n: number): string => String(n).padStart(2, "0");

/** `2026-12-06 04:05:59.123` in local time. */
function terminalTime(ms: number): string {
  const d = new Date(ms);
  return `${d.getFullYear()}-${p2(d.getMonth() + 1)}-${p2(d.getDate())} ${p2(d.getHours())}:${p2(d.getMinutes())}:${p2(d.getSeconds())}.${String(d.getMilliseconds()).padStart(3, "0")}`;
}

/** Apache's `%{cu}t`: `Sun Dec 06 04:05:59.123456 2026` in local time. */
function apacheTime(ms: number): string {
  const d = new Date(ms);
  const micros = String(Math.round((ms % 1000) * 1000)).padStart(6, "0");
  return `${DAYS[d.getDay()] ?? ""} ${MONTHS[d.getMonth()] ?? ""} ${p2(d.getDate())} ${p2(d.getHours())}:${p2(d.getMinutes())}:${p2(d.getSeconds())}.${micros} ${d.getFullYear()}`;
}

/** "blog" for the default group name "/srv/blog (production)", else the name as configured. */
export function shortAppName(group: string): string {
  const m = /^(\/.*) \([^()]*\)$/.exec(group);
  return m?.[1] !== undefined ? path.basename(m[1]) || m[1] : group;
}

function shown(v: unknown): string {
  if (typeof v === "string") return /^[^\s"=]+$/.test(v) ? v : JSON.stringify(v);
  if (typeof v === "number" || typeof v === "boolean" || v === null) return String(v);
  return JSON.stringify(v) ?? String(v);
}

/** "Cannot …" of an error field (pino serialises errors as { type, message, stack, code }). */
function errorText(err: unknown): string {
  if (typeof err !== "object" || err === null) return shown(err);
  const msg: unknown = Reflect.get(err, "message");
  const code: unknown = Reflect.get(err, "code");
  return `${typeof msg === "string" ? msg : shown(err)}${typeof code === "string" ? ` [${code}]` : ""}`;
}

type Rec = Readonly<Record<string, unknown>>;

/** One readable line (with "\n") for a pino JSON record; the input line itself when it is not JSON. */
export function formatRecord(json: string, style: LineStyle): string {
  let rec: Rec;
  try {
    const v: unknown = JSON.parse(json);
    if (typeof v !== "object" || v === null || Array.isArray(v)) return json.endsWith("\n") ? json : `${json}\n`;
    rec = v as Rec;
  } catch {
    return json.endsWith("\n") ? json : `${json}\n`;
  }
  const level = typeof rec["level"] === "number" ? rec["level"] : 30;
  const time = typeof rec["time"] === "number" ? rec["time"] : Date.now();
  const msg = typeof rec["msg"] === "string" ? rec["msg"] : "";
  const app = typeof rec["app"] === "string" ? shortAppName(rec["app"]) : "";
  const pid = typeof rec["pid"] === "number" ? rec["pid"] : undefined;
  const isOutput = rec["stream"] === "stdout" || rec["stream"] === "stderr";

  let body: string;
  if (isOutput) {
    body = `${app || "app"}[${pid ?? "?"}]: ${msg}`;
  } else {
    const extras: string[] = [];
    if (pid !== undefined) extras.push(`pid=${pid}`);
    for (const [k, v] of Object.entries(rec)) if (!SHOWN.has(k) && v !== undefined) extras.push(`${k}=${shown(v)}`);
    const et = rec["err"] !== undefined ? errorText(rec["err"]) : "";
    const err = et !== "" && !msg.includes(et.replace(/ \[[A-Z_]+\]$/, "")) ? `: ${et}` : "";
    body = `${app !== "" ? `${app}: ` : ""}${msg}${err}${extras.length > 0 ? ` (${extras.join(" ")})` : ""}`;
  }
  const logno = typeof rec["logno"] === "number" ? `FERRY${String(rec["logno"]).padStart(4, "0")}: ` : "";
  if (style === "apache") {
    const corePid = typeof rec["corePid"] === "number" ? rec["corePid"] : process.pid;
    return `[${apacheTime(time)}] [ferry:${APACHE_LEVELS[level] ?? "notice"}] [pid ${corePid}] ${logno}${body}\n`;
  }
  const lv = isOutput ? (rec["stream"] === "stderr" ? "ERR  " : "     ") : (TERMINAL_LEVELS[level] ?? "INFO ");
  return `${terminalTime(time)} ${lv} ${logno}${body}\n`;
}
