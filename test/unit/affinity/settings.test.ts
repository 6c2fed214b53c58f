import test from "ava";
import { promises as fsp } from "node:fs";
import os from "node:os";
import path from "node:path";
import { affinitySettings, parseListen, readSecretFile } from "../../../core/src/affinity/service.js";
import { ConfigError } from "../../../core/src/errors.js";
import { SERVER_DEFAULTS } from "../../../core/src/config/schema.js";

test("affinitySettings() is undefined (off) without a Redis URL", (t) => {
  t.is(affinitySettings(SERVER_DEFAULTS), undefined);
  t.is(affinitySettings({ ...SERVER_DEFAULTS, affinityRedis: "" }), undefined);
});

test("affinitySettings() applies the documented defaults", (t) => {
  const s = affinitySettings({ ...SERVER_DEFAULTS, affinityRedis: "redis://r:6379/0", affinitySecretFile: "/s" });
  t.is(s?.nodeName, os.hostname());
  t.is(s?.ttlMs, 1_800_000);
  t.is(s?.redisTimeoutMs, 50);
  t.is(s?.listen, "");
  t.is(s?.tlsCertFile, "");
});

test("parseListen() takes ADDR:PORT and [v6]:PORT, names the directive otherwise", (t) => {
  t.deepEqual(parseListen("10.0.0.5:7400"), { host: "10.0.0.5", port: 7400 });
  t.deepEqual(parseListen("127.0.0.1:0"), { host: "127.0.0.1", port: 0 });
  t.deepEqual(parseListen("[::1]:7400"), { host: "::1", port: 7400 });
  for (const bad of ["7400", "host", ":7400", "h:99999"]) {
    t.throws(() => parseListen(bad), { instanceOf: ConfigError, message: /PassengerAffinityListen/ }, bad);
  }
});

test("readSecretFile() requires a file of at least 16 bytes", async (t) => {
  const dir = await fsp.mkdtemp(path.join(os.tmpdir(), "ferry-secret-"));
  try {
    await t.throwsAsync(() => readSecretFile(""), { instanceOf: ConfigError, message: /PassengerAffinitySecretFile is required/ });
    await t.throwsAsync(() => readSecretFile(path.join(dir, "missing")), { instanceOf: ConfigError, message: /Cannot read PassengerAffinitySecretFile/ });
    await fsp.writeFile(path.join(dir, "short"), "too short\n", { mode: 0o600 });
    await t.throwsAsync(() => readSecretFile(path.join(dir, "short")), { instanceOf: ConfigError, message: /at least 16 are required/ });
    await fsp.writeFile(path.join(dir, "ok"), "  0123456789abcdef0123  \n", { mode: 0o600 });
    t.is((await readSecretFile(path.join(dir, "ok"))).toString(), "0123456789abcdef0123");
  } finally {
    await fsp.rm(dir, { recursive: true, force: true });
  }
});
