import test from "ava";
import { existsSync } from "node:fs";
import { mkdir, mkdtemp, readFile, readdir, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { run } from "../../../core/src/cli/commands/nginx.js";
import {
  nginxQuote,
  renderNginxDevConfig,
  renderNginxHttpSnippet,
  renderNginxLoadSnippet,
  renderNginxSiteSnippet,
} from "../../../core/src/cli/nginx/nginx-conf.js";

function captureIo(cwd = "/"): { io: { cwd: string; stdout: { write(s: string): boolean }; stderr: { write(s: string): boolean } }; out: () => string; err: () => string } {
  let out = "";
  let err = "";
  return {
    io: {
      cwd,
      stdout: { write: (s: string) => ((out += s), true) },
      stderr: { write: (s: string) => ((err += s), true) },
    },
    out: () => out,
    err: () => err,
  };
}

/** A temp prefix with Debian's empty /etc/nginx (as the nginx package leaves it). */
async function debianPrefix(): Promise<string> {
  const prefix = await mkdtemp(path.join(os.tmpdir(), "ferry-nginx-install-"));
  await mkdir(path.join(prefix, "etc", "nginx", "modules-enabled"), { recursive: true });
  await mkdir(path.join(prefix, "etc", "nginx", "sites-available"), { recursive: true });
  return prefix;
}

test("nginxQuote() leaves plain paths alone and quotes spaces and quotes", (t) => {
  t.is(nginxQuote("/opt/ferry/build"), "/opt/ferry/build");
  t.is(nginxQuote("/srv/my app"), '"/srv/my app"');
  t.is(nginxQuote('a"b;'), '"a\\"b;"');
});

test("renderNginxDevConfig() renders one server for the app on the given address and port", (t) => {
  const conf = renderNginxDevConfig({
    dir: "/tmp/x", port: 8123, address: "127.0.0.1", appDir: "/srv/app", documentRoot: "/srv/app/public",
    environment: "development", modulePath: "/opt/ferry/build/nginx/ngx_http_ferry_module.so",
    root: "/opt/ferry", nodejs: "/usr/bin/node", runAs: "user www-data www-data;", mimeTypes: "/etc/nginx/mime.types",
  });
  t.regex(conf, /^load_module \/opt\/ferry\/build\/nginx\/ngx_http_ferry_module\.so;$/m);
  t.regex(conf, /^user www-data www-data;$/m);
  t.regex(conf, /^daemon off;$/m);
  t.regex(conf, /^pid \/tmp\/x\/run\/nginx\.pid;$/m);
  t.regex(conf, /^error_log \/tmp\/x\/logs\/error\.log notice;$/m);
  t.regex(conf, /^ {4}passenger_root \/opt\/ferry;$/m);
  t.regex(conf, /^ {4}passenger_nodejs \/usr\/bin\/node;$/m);
  t.regex(conf, /server \{\n\s+listen 127\.0\.0\.1:8123;[\s\S]*root \/srv\/app\/public;[\s\S]*passenger_enabled on;[\s\S]*passenger_app_root \/srv\/app;[\s\S]*passenger_app_env development;/);
});

test("renderNginxDevConfig() brackets an IPv6 listen address", (t) => {
  const conf = renderNginxDevConfig({
    dir: "/tmp/x", port: 8080, address: "::1", appDir: "/a", documentRoot: "/a/public", environment: "production",
    modulePath: "/m.so", root: "/r", nodejs: "/n", runAs: "# not root",
  });
  t.regex(conf, /listen \[::1\]:8080;/);
  t.regex(conf, /# no mime\.types found/);
});

test("the install snippets: load_module, passenger_root/passenger_nodejs, a site serving the app's public/", (t) => {
  t.regex(renderNginxLoadSnippet("/opt/ferry"), /^load_module \/opt\/ferry\/build\/nginx\/ngx_http_ferry_module\.so;$/m);
  const http = renderNginxHttpSnippet("/opt/ferry", "/usr/local/bin/node");
  t.regex(http, /^passenger_root \/opt\/ferry;$/m);
  t.regex(http, /^passenger_nodejs \/usr\/local\/bin\/node;$/m);
  const site = renderNginxSiteSnippet({ serverName: "blog.example.com", appDir: "/srv/blog", port: 80 });
  t.regex(site, /server \{\n\s+listen 80;\n\s+server_name blog\.example\.com;[\s\S]*root \/srv\/blog\/public;[\s\S]*passenger_enabled on;/);
});

test("run() without a subcommand prints usage and exits 2", async (t) => {
  const c = captureIo();
  t.is(await run([], c.io), 2);
  t.regex(c.err(), /ferry nginx start/);
});

test("run() rejects an unknown subcommand, a bad --port and an unknown flag with exit 2", async (t) => {
  const c = captureIo();
  t.is(await run(["launch"], c.io), 2);
  t.regex(c.err(), /unknown subcommand "launch"/);
  t.is(await run(["start", "--port", "0"], c.io), 2);
  t.regex(c.err(), /--port must be an integer 1-65535/);
  t.is(await run(["install", "--bogus"], c.io), 2);
  t.is(await run(["install", "--server-name", "a b"], c.io), 2);
  t.regex(c.err(), /--server-name must be a host name/);
});

test("run(install --prefix) writes the three snippets of Debian's layout under the prefix", async (t) => {
  const prefix = await debianPrefix();
  try {
    const c = captureIo();
    t.is(await run(["install", "--prefix", prefix, "--app", "/srv/blog", "--server-name", "blog.test"], c.io), 0, c.err());
    const etc = path.join(prefix, "etc", "nginx");
    t.regex(await readFile(path.join(etc, "modules-enabled", "50-mod-http-ferry.conf"), "utf8"), /^load_module .*ngx_http_ferry_module\.so;$/m);
    t.regex(await readFile(path.join(etc, "conf.d", "ferry.conf"), "utf8"), /^passenger_root /m);
    t.regex(await readFile(path.join(etc, "sites-available", "ferry"), "utf8"), /server_name blog\.test;[\s\S]*root \/srv\/blog\/public;/);
    t.false(existsSync(path.join(etc, "sites-enabled")), "the site is not enabled");
    t.regex(c.out(), /Wrote .*50-mod-http-ferry\.conf/);
    t.regex(c.out(), /Nothing was reloaded or restarted/);
    t.regex(c.out(), /nginx -t/);
    // A second install updates the same files.
    const again = captureIo();
    t.is(await run(["install", "--prefix", prefix], again.io), 0);
    t.regex(again.out(), /Updated .*conf\.d\/ferry\.conf/);
  } finally {
    await rm(prefix, { recursive: true, force: true });
  }
});

test("run(install --dry-run) prints every file and writes nothing", async (t) => {
  const prefix = await debianPrefix();
  try {
    const c = captureIo();
    t.is(await run(["install", "--prefix", prefix, "--dry-run"], c.io), 0);
    t.regex(c.out(), /--- would write .*modules-enabled\/50-mod-http-ferry\.conf ---\n# Written by "ferry nginx install"[\s\S]*load_module /);
    t.regex(c.out(), /--- would write .*conf\.d\/ferry\.conf ---[\s\S]*passenger_root /);
    t.regex(c.out(), /Dry run: nothing was written/);
    t.deepEqual(await readdir(path.join(prefix, "etc", "nginx", "modules-enabled")), []);
    t.deepEqual(await readdir(path.join(prefix, "etc", "nginx", "sites-available")), []);
    t.false(existsSync(path.join(prefix, "etc", "nginx", "conf.d")));
  } finally {
    await rm(prefix, { recursive: true, force: true });
  }
});

test("run(install) fails with exit 1 when the prefix has no etc/nginx", async (t) => {
  const c = captureIo();
  t.is(await run(["install", "--prefix", "/nonexistent/ferry-prefix"], c.io), 1);
  t.regex(c.err(), /Cannot install: \/nonexistent\/ferry-prefix\/etc\/nginx does not exist/);
});

test("run(stop) fails with exit 1 when nothing runs from the dir", async (t) => {
  const c = captureIo();
  t.is(await run(["stop", "--dir", "/nonexistent/ferry-nginx"], c.io), 1);
  t.regex(c.err(), /Cannot stop nginx: none is running from \/nonexistent\/ferry-nginx/);
});
