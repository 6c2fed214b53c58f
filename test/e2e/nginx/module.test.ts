/**
 * ngx_http_ferry_module.so (nginx-module/, built by nginx-module/build.sh
 * against Debian's nginx-dev) loads into a private nginx with
 * `load_module`, and nginx's config test applies its directive table.
 */
import test from "ava";
import { mkdir, writeFile } from "node:fs/promises";
import path from "node:path";
import { makeTempRoot } from "../../helpers/apache.js";
import { NginxServer, nginxConfigTest, nginxStarted, stopAndRemoveNginx } from "../../helpers/nginx.js";

let root = "";
let nginx: NginxServer | undefined;

test.before(async () => {
  root = await makeTempRoot("nginx-module");
  const pub = path.join(root, "site");
  await mkdir(pub, { recursive: true });
  await writeFile(path.join(pub, "hello.txt"), "static hello\n");
  nginx = await NginxServer.start({
    root,
    servers: [{ serverName: "site.test", root: pub, directives: ["location /app/ { passenger_enabled off; }"] }],
  });
});

test.after.always(async () => {
  await stopAndRemoveNginx(nginx, root);
});

test("nginx loads ngx_http_ferry_module.so and serves a static file", async (t) => {
  const res = await fetch(`${nginxStarted(nginx).baseUrl}/hello.txt`);
  t.is(res.status, 200);
  t.is(await res.text(), "static hello\n");
});

test("nginx -t refuses a passenger_enabled value that is not on/off", async (t) => {
  const r = await nginxConfigTest({
    root: path.join(root, "bad"),
    servers: [{ serverName: "bad.test", root, directives: ["passenger_enabled maybe;"] }],
  });
  t.false(r.ok);
  t.regex(r.output, /passenger_enabled/);
});
