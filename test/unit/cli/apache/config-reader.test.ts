/** readApacheConfig() (core/src/cli/apache/config-reader.ts): Includes, sections, apps and where they were configured. */
import test from "ava";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { readApacheConfig, splitArgs } from "../../../../core/src/cli/apache/config-reader.js";

test("splitArgs() splits on blanks and keeps quoted words whole", (t) => {
  t.deepEqual(splitArgs('SetEnv A "b c"  d'), ["SetEnv", "A", "b c", "d"]);
  t.deepEqual(splitArgs("LoadModule ferry_module /x/mod_ferry.so"), ["LoadModule", "ferry_module", "/x/mod_ferry.so"]);
});

test("readApacheConfig() follows Include globs and finds vhost and sub-URI apps with their settings", async (t) => {
  const dir = await mkdtemp(path.join(os.tmpdir(), "ferry-apache-config-"));
  try {
    await mkdir(path.join(dir, "sites-enabled"));
    await writeFile(path.join(dir, "apache2.conf"), [
      "LoadModule ferry_module ${MODS}/mod_ferry.so", "PassengerNodejs /usr/bin/node", "IncludeOptional sites-enabled/*.conf", "",
    ].join("\n"));
    await writeFile(path.join(dir, "sites-enabled", "a.conf"), [
      "<VirtualHost *:80>", "    ServerName a.test", "    DocumentRoot /srv/a/public", "    PassengerUser alice",
      "    <Location /sub>", "        PassengerAppRoot /srv/sub", "    </Location>", "</VirtualHost>", "",
    ].join("\n"));
    await writeFile(path.join(dir, "sites-enabled", "b.txt"), "<VirtualHost *:80>\nDocumentRoot /nope\n</VirtualHost>\n");
    const cfg = readApacheConfig(path.join(dir, "apache2.conf"), dir, { MODS: "/mods" });
    t.deepEqual(cfg.modules.map((m) => [m.name, m.path]), [["ferry_module", "/mods/mod_ferry.so"]]);
    t.is(cfg.global["PassengerNodejs"], "/usr/bin/node");
    t.deepEqual(cfg.apps.map((a) => [a.vhost, a.appRoot, a.explicit, a.line, a.settings["PassengerUser"], a.settings["PassengerNodejs"]]), [
      ["a.test", "/srv/a", false, 1, "alice", "/usr/bin/node"],
      ["a.test", "/srv/sub", true, 6, "alice", "/usr/bin/node"],
    ]);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
