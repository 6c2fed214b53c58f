import test from "ava";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { run } from "../../../core/src/cli/commands/apache.js";
import { renderConfFile, renderLoadFile } from "../../../core/src/cli/apache/debian-snippets.js";
import { renderDevConfig } from "../../../core/src/cli/apache/dev-server.js";
import { packageRoot } from "../../../core/src/cli/private-server.js";

function captureIo(): { io: { stdout: { write(s: string): boolean }; stderr: { write(s: string): boolean } }; out: () => string; err: () => string } {
  let out = "";
  let err = "";
  return {
    io: {
      stdout: { write: (s: string) => ((out += s), true) },
      stderr: { write: (s: string) => ((err += s), true) },
    },
    out: () => out,
    err: () => err,
  };
}

test("renderLoadFile() points LoadModule at this install's mod_ferry.so", (t) => {
  t.regex(renderLoadFile("/opt/ferry"), /^LoadModule ferry_module \/opt\/ferry\/build\/apache\/mod_ferry\.so$/m);
});

test("renderLoadFile() replaces the LoadModule line of a conf/ferry.load template", (t) => {
  const out = renderLoadFile("/opt/ferry", "# keep me\nLoadModule ferry_module /somewhere/else.so\n");
  t.is(out, "# keep me\nLoadModule ferry_module /opt/ferry/build/apache/mod_ferry.so\n");
});

test("renderConfFile() sets PassengerRoot and PassengerNodejs", (t) => {
  const out = renderConfFile("/opt/ferry", "/usr/local/bin/node");
  t.regex(out, /^\s*PassengerRoot "\/opt\/ferry"$/m);
  t.regex(out, /^\s*PassengerNodejs "\/usr\/local\/bin\/node"$/m);
  t.regex(out, /<IfModule ferry_module>/);
});

test("renderConfFile() replaces PassengerRoot in a template and adds PassengerNodejs", (t) => {
  const out = renderConfFile("/opt/ferry", "/usr/bin/node", "<IfModule ferry_module>\n    # PassengerRoot /path\n    PassengerMaxPoolSize 6\n</IfModule>\n");
  t.regex(out, /^    PassengerRoot "\/opt\/ferry"\n    PassengerNodejs "\/usr\/bin\/node"$/m);
  t.regex(out, /PassengerMaxPoolSize 6/);
});

test("renderDevConfig() renders one VirtualHost for the app on the given address and port", (t) => {
  const conf = renderDevConfig({
    dir: "/tmp/x", port: 8123, address: "127.0.0.1", appDir: "/srv/app", documentRoot: "/srv/app/public",
    environment: "development", modulePath: "/opt/ferry/build/apache/mod_ferry.so", modulesDir: "/usr/lib/apache2/modules",
    root: "/opt/ferry", nodejs: "/usr/bin/node", runAs: "User www-data\nGroup www-data",
  });
  t.regex(conf, /^Listen 127\.0\.0\.1:8123$/m);
  t.regex(conf, /^LoadModule mpm_event_module "\/usr\/lib\/apache2\/modules\/mod_mpm_event\.so"$/m);
  t.regex(conf, /^LoadModule ferry_module "\/opt\/ferry\/build\/apache\/mod_ferry\.so"$/m);
  t.regex(conf, /^PassengerRoot "\/opt\/ferry"$/m);
  t.regex(conf, /^PidFile "\/tmp\/x\/run\/httpd\.pid"$/m);
  t.regex(conf, /<VirtualHost 127\.0\.0\.1:8123>[\s\S]*DocumentRoot "\/srv\/app\/public"[\s\S]*PassengerAppRoot "\/srv\/app"[\s\S]*PassengerAppEnv development[\s\S]*<\/VirtualHost>/);
  t.regex(conf, /^User www-data$/m);
});

test("packageRoot() is the directory holding build/", (t) => {
  t.true(path.isAbsolute(packageRoot()));
  t.notRegex(packageRoot(), /build/);
});

test("run() without a subcommand prints usage and exits 2", async (t) => {
  const c = captureIo();
  t.is(await run([], c.io), 2);
  t.regex(c.err(), /ferry apache start/);
});

test("run() rejects an unknown subcommand and a bad --port with exit 2", async (t) => {
  const c = captureIo();
  t.is(await run(["launch"], c.io), 2);
  t.regex(c.err(), /unknown subcommand "launch"/);
  t.is(await run(["start", "--port", "99999"], c.io), 2);
  t.regex(c.err(), /--port must be an integer 1-65535/);
  t.is(await run(["start", "--bogus"], c.io), 2);
});

test("run(install --dest) writes ferry.load and ferry.conf and enables nothing", async (t) => {
  const dest = await mkdtemp(path.join(os.tmpdir(), "ferry-install-"));
  try {
    const c = captureIo();
    t.is(await run(["install", "--dest", dest], c.io), 0);
    t.regex(await readFile(path.join(dest, "ferry.load"), "utf8"), /LoadModule ferry_module .*mod_ferry\.so/);
    t.regex(await readFile(path.join(dest, "ferry.conf"), "utf8"), /PassengerRoot "/);
    t.regex(c.out(), /Wrote .*ferry\.load/);
    t.regex(c.out(), /a2enmod ferry/);
    t.regex(c.out(), /Nothing was enabled or restarted/);
  } finally {
    await rm(dest, { recursive: true, force: true });
  }
});

test("run(install) fails with exit 1 when the destination does not exist", async (t) => {
  const c = captureIo();
  t.is(await run(["install", "--dest", "/nonexistent/ferry-dest"], c.io), 1);
  t.regex(c.err(), /Cannot install: \/nonexistent\/ferry-dest does not exist/);
});
