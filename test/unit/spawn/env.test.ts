import test from "ava";
import { makeAppOptions } from "../../../core/src/config/schema.js";
import { buildAppEnv, DEFAULT_PATH } from "../../../core/src/spawn/env.js";

const user = { name: "alice", home: "/home/alice", shell: "/bin/bash" };

test("buildAppEnv() passes only PATH, LANG, LC_* and TZ through from the core", (t) => {
  const env = buildAppEnv({
    app: makeAppOptions("/srv/app"),
    user,
    coreEnv: { PATH: "/bin", LANG: "C.UTF-8", LC_ALL: "C", TZ: "UTC", SECRET_TOKEN: "x", HOME: "/root", NODE_OPTIONS: "--inspect" },
    port: 3000,
  });
  t.is(env["PATH"], "/bin");
  t.is(env["LANG"], "C.UTF-8");
  t.is(env["LC_ALL"], "C");
  t.is(env["TZ"], "UTC");
  t.is(env["SECRET_TOKEN"], undefined);
  t.is(env["NODE_OPTIONS"], undefined);
  t.is(env["HOME"], "/home/alice");
});

test("buildAppEnv() sets the user, app env and PORT, and a default PATH", (t) => {
  const env = buildAppEnv({ app: makeAppOptions("/srv/app", { appEnv: "staging" }), user, coreEnv: {}, port: 4567 });
  t.like(env, {
    PATH: DEFAULT_PATH, USER: "alice", LOGNAME: "alice", SHELL: "/bin/bash", NODE_ENV: "staging",
    PASSENGER_APP_ENV: "staging", RAILS_ENV: "staging", RACK_ENV: "staging", PORT: "4567",
  });
  t.is(env["PASSENGER_BASE_URI"], undefined);
});

test("buildAppEnv() sets base URI variables only for a base URI other than /", (t) => {
  const sub = buildAppEnv({ app: makeAppOptions("/srv/app", { baseURI: "/blog" }), user, coreEnv: {}, port: 1 });
  t.is(sub["PASSENGER_BASE_URI"], "/blog");
  t.is(sub["RAILS_RELATIVE_URL_ROOT"], "/blog");
  const rootUri = buildAppEnv({ app: makeAppOptions("/srv/app", { baseURI: "/" }), user, coreEnv: {}, port: 1 });
  t.is(rootUri["PASSENGER_BASE_URI"], undefined);
});

test("buildAppEnv() lets SetEnv variables win and drops invalid names", (t) => {
  const env = buildAppEnv({
    app: makeAppOptions("/srv/app", { env: { NODE_ENV: "custom", GREETING: "hi", "BAD=NAME": "x", "": "y" } }),
    user, coreEnv: {}, port: 1,
  });
  t.is(env["NODE_ENV"], "custom");
  t.is(env["GREETING"], "hi");
  t.is(env["BAD=NAME"], undefined);
  t.is(env[""], undefined);
});
